package node

import (
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"time"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
)

// ClockProtocol answers "what time is it?": the asker opens a stream and
// reads 8 bytes, the answerer's Unix time in nanoseconds (big endian),
// then the stream ends. `parley doctor` uses it to find clock skew, which
// matters because room messages sent more than 5 minutes off the
// receiver's clock are refused.
const ClockProtocol = "/parley/clock/1.0.0"

const clockTimeout = 5 * time.Second

// handleClock is the thin handler of ClockProtocol.
func handleClock(s network.Stream) {
	s.SetDeadline(time.Now().Add(clockTimeout))
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], uint64(time.Now().UnixNano()))
	if _, err := s.Write(b[:]); err != nil {
		s.Reset()
		return
	}
	s.Close()
}

// ClockOffset asks p for its time: offset is how far p's clock is ahead of
// this node's (negative: behind), within ±rtt/2.
func (n *Node) ClockOffset(ctx context.Context, p peer.ID) (offset, rtt time.Duration, err error) {
	ctx, cancel := context.WithTimeout(ctx, clockTimeout)
	defer cancel()
	s, err := n.host.NewStream(network.WithAllowLimitedConn(ctx, "clock"), p, ClockProtocol)
	if err != nil {
		return 0, 0, fmt.Errorf("ask %s for its time: %w", p, err)
	}
	defer s.Close()
	s.SetDeadline(time.Now().Add(clockTimeout))
	start := time.Now()
	var b [8]byte
	if _, err := io.ReadFull(s, b[:]); err != nil {
		s.Reset()
		return 0, 0, fmt.Errorf("read %s's time: %w", p, err)
	}
	end := time.Now()
	rtt = end.Sub(start)
	theirs := time.Unix(0, int64(binary.BigEndian.Uint64(b[:])))
	return theirs.Sub(start.Add(rtt / 2)), rtt, nil
}

package chat

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"
	"github.com/libp2p/go-msgio/pbio"

	"github.com/parley-chat/parley/chat/pb"
	"github.com/parley-chat/parley/internal/store"
)

// DMProtocol is the stream protocol for direct messages.
const DMProtocol protocol.ID = "/parley/dm/1.0.0"

// MaxDMFrameBytes bounds one DM frame on the wire.
const MaxDMFrameBytes = 8 << 10

const dmWriteTimeout = 10 * time.Second

// SendDM queues text for a peer (peer ID or nick) on disk and returns the
// message ID at once. Delivery happens in the background: a Delivered
// event follows the receiver's ack. If the peer cannot be reached, a Queued
// event says so and the DM stays in the outbox, retried when the peer
// connects and on a backoff schedule, also after a restart.
func (s *Service) SendDM(to, text string) (string, error) {
	if err := ValidateText(text); err != nil {
		return "", fmt.Errorf("dm: %w", err)
	}
	pid, err := s.ResolvePeer(to)
	if err != nil {
		return "", fmt.Errorf("dm: %w", err)
	}
	if pid == s.h.ID() {
		return "", errors.New("dm: that is you")
	}
	if s.isClosed() {
		return "", ErrClosed
	}
	m := store.DM{ID: newID(), Peer: pid.String(), Nick: s.Nick(), Text: text, SentAt: time.Now().UnixMilli()}
	if err := s.store.QueueDM(m); err != nil {
		return "", fmt.Errorf("dm: %w", err)
	}
	s.outbox.queued(pid)
	s.outbox.flush(pid, true)
	return m.ID, nil
}

// dmConn is the outbound DM stream to one peer, reused while it works.
// Messages to one peer are sent one at a time, each waiting for its ack.
type dmConn struct {
	s    *Service
	peer peer.ID

	mu     sync.Mutex // held while sending
	stream network.Stream
	r      pbio.Reader
	w      pbio.Writer

	flushing bool // a flush goroutine runs (guarded by outbox.mu)
	again    bool // another flush was asked for meanwhile (guarded by outbox.mu)
	force    bool // ... ignoring the retry schedule (guarded by outbox.mu)
}

func (c *dmConn) send(ctx context.Context, msg *pb.DirectMessage) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.stream != nil && c.stream.Conn().Stat().Limited && c.hasDirectConn() {
		// Hole punching made a direct connection since the stream was
		// opened over the relay: move to it.
		c.stream.Close()
		c.stream = nil
	}
	err := c.exchange(ctx, msg)
	var unreachable *errUnreachable
	if err != nil && !errors.As(err, &unreachable) && ctx.Err() == nil {
		// The stream broke: the peer idle-reset a cached stream, or the
		// connection under it was replaced (a relayed one closed for a
		// direct one). One retry on a fresh stream; the receiver drops
		// the duplicate if the first attempt did arrive.
		err = c.exchange(ctx, msg)
	}
	return err
}

// errUnreachable means no stream could be opened to the peer at all.
type errUnreachable struct{ err error }

func (e *errUnreachable) Error() string { return "peer unreachable: " + e.err.Error() }
func (e *errUnreachable) Unwrap() error { return e.err }

func (c *dmConn) exchange(ctx context.Context, msg *pb.DirectMessage) error {
	if c.stream == nil {
		octx, cancel := context.WithTimeout(ctx, c.s.cfg.openTimeout)
		// A relayed (limited) connection is fine for DMs: they are small.
		st, err := c.s.h.NewStream(network.WithAllowLimitedConn(octx, "dm"), c.peer, DMProtocol)
		cancel()
		if err != nil {
			return &errUnreachable{err}
		}
		if err := st.Scope().SetService(DMServiceName); err != nil {
			st.Reset()
			return &errUnreachable{err}
		}
		c.stream, c.r, c.w = st, pbio.NewDelimitedReader(st, MaxDMFrameBytes), pbio.NewDelimitedWriter(st)
	}
	fail := func(err error) error {
		c.stream.Reset()
		c.stream = nil
		return err
	}
	c.stream.SetWriteDeadline(time.Now().Add(dmWriteTimeout))
	if err := c.w.WriteMsg(&pb.DMFrame{Body: &pb.DMFrame_Message{Message: msg}}); err != nil {
		return fail(fmt.Errorf("write: %w", err))
	}
	c.stream.SetReadDeadline(time.Now().Add(c.s.cfg.ackTimeout))
	var f pb.DMFrame
	if err := c.r.ReadMsg(&f); err != nil {
		return fail(fmt.Errorf("no ack: %w", err))
	}
	if ack := f.GetAck(); ack == nil || ack.GetId() != msg.Id {
		return fail(errors.New("peer answered with something other than the ack"))
	}
	return nil
}

func (c *dmConn) hasDirectConn() bool {
	for _, conn := range c.s.h.Network().ConnsToPeer(c.peer) {
		if !conn.Stat().Limited {
			return true
		}
	}
	return false
}

func (c *dmConn) reset() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.stream != nil {
		c.stream.Reset()
		c.stream = nil
	}
}

// DMServiceName names the DM protocol's resource-manager scope.
const DMServiceName = "parley.dm"

// handleDM serves one inbound DM stream: it resets the stream on any
// protocol error and closes it when the peer does.
func (s *Service) handleDM(st network.Stream) {
	if err := st.Scope().SetService(DMServiceName); err != nil {
		st.Reset()
		return
	}
	if err := st.Scope().ReserveMemory(2*MaxDMFrameBytes, network.ReservationPriorityAlways); err != nil {
		st.Reset()
		return
	}
	defer st.Scope().ReleaseMemory(2 * MaxDMFrameBytes)
	if !s.track() {
		st.Reset()
		return
	}
	defer s.wg.Done()
	// Stop reading when the service closes, not only at the deadline.
	stop := context.AfterFunc(s.ctx, func() { st.Reset() })
	defer stop()
	if err := s.serveDM(st); err != nil {
		s.log.Debug("dm stream reset", "peer", st.Conn().RemotePeer(), "err", err)
		st.Reset()
		return
	}
	st.Close()
}

func (s *Service) serveDM(st network.Stream) error {
	from := st.Conn().RemotePeer()
	r := pbio.NewDelimitedReader(st, MaxDMFrameBytes)
	w := pbio.NewDelimitedWriter(st)
	for {
		// A stream held open in silence is dropped after the idle timeout.
		st.SetReadDeadline(time.Now().Add(s.cfg.dmIdle))
		var f pb.DMFrame
		if err := r.ReadMsg(&f); err != nil {
			if errors.Is(err, io.EOF) {
				return nil
			}
			return fmt.Errorf("read frame: %w", err)
		}
		m := f.GetMessage()
		if m == nil {
			return errors.New("frame is not a message")
		}
		if err := validateDM(m, time.Now()); err != nil {
			return fmt.Errorf("invalid message: %w", err)
		}
		// Stored (durably) before the ack: an acknowledged DM is never
		// lost, and one that arrives again is acked but shown once.
		added, err := s.store.AddReceivedDM(store.DM{ID: m.GetId(), Peer: from.String(), Nick: m.GetNick(), Text: m.GetText(), SentAt: m.GetSentAtMs()})
		if err != nil {
			s.emit(Error{Err: fmt.Errorf("dm from %s not stored, not acknowledged: %w", from, err)})
			return err
		}
		st.SetWriteDeadline(time.Now().Add(dmWriteTimeout))
		ackErr := w.WriteMsg(&pb.DMFrame{Body: &pb.DMFrame_Ack{Ack: &pb.DMAck{Id: m.GetId()}}})
		if added {
			// Shown whether or not the ack got out: it is stored.
			s.nicks.set(from, m.GetNick())
			s.emit(DirectMessage{
				ID:     m.GetId(),
				From:   from,
				Nick:   m.GetNick(),
				Text:   m.GetText(),
				SentAt: time.UnixMilli(m.GetSentAtMs()).UTC(),
			})
		}
		if ackErr != nil {
			return fmt.Errorf("write ack: %w", ackErr)
		}
	}
}

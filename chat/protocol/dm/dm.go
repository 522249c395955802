// Package dm is Parley's direct-message protocol: /parley/dm/1.0.0.
//
// # Wire
//
// Frames are unsigned-varint length-prefixed protobuf pb.DMFrame messages
// of at most MaxFrameBytes:
//
//	opener → DMFrame{message: DirectMessage{id, nick, text, sent_at_ms}}
//	other  → DMFrame{ack: DMAck{id}}
//	... repeated on the same stream while both keep it open
//
// The opener sends one message at a time and waits for its ack; the stream
// is reused for the next message to the same peer. The receiver stores a
// message durably before it acks it, and resets the stream on anything
// else: a bad length prefix, an oversized frame, invalid protobuf, an ack
// where a message belongs, an invalid message, or silence longer than its
// idle timeout. A message that arrives again (a resend after a lost ack)
// is acked again and shown once. The secure channel (Noise or TLS)
// authenticates the sender; DMs may use a relayed connection.
package dm

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"
	"github.com/libp2p/go-msgio/pbio"

	"github.com/parley-chat/parley/chat/content"
	"github.com/parley-chat/parley/chat/pb"
)

// ID is the DM protocol.
const ID protocol.ID = "/parley/dm/1.0.0"

// ServiceName names the protocol's resource-manager scope.
const ServiceName = "parley.dm"

// Bounds of the protocol.
const (
	MaxFrameBytes = 8 << 10
	// MaxAge is how old a DM may be when it arrives: it may wait in the
	// sender's outbox for a week.
	MaxAge       = 7*24*time.Hour + time.Hour
	writeTimeout = 10 * time.Second
)

// Validate checks a received message. Its nick is not checked: a bad one
// is dropped by the receiver (content.PeerNick), like a room message's.
func Validate(m *pb.DirectMessage, now time.Time) error {
	if err := content.ValidateID(m.GetId()); err != nil {
		return err
	}
	if err := content.ValidateSentAt(m.GetSentAtMs(), now, MaxAge); err != nil {
		return err
	}
	return content.ValidateText(m.GetText())
}

// Handler serves inbound DM streams.
type Handler struct {
	// Idle is how long a stream may stay silent before it is reset.
	Idle time.Duration
	// Store keeps a valid message durably before it is acked and reports
	// whether it is new; an error resets the stream without an ack.
	Store func(from peer.ID, m *pb.DirectMessage) (added bool, err error)
	// Show is called for a new message once its ack is written (or failed:
	// it is stored either way), so a slow front end never delays acks.
	Show func(from peer.ID, m *pb.DirectMessage)
}

// Handle serves one stream: a thin handler that resets the stream on any
// protocol error and closes it when the peer does.
func (h Handler) Handle(st network.Stream) {
	if err := st.Scope().SetService(ServiceName); err != nil {
		st.Reset()
		return
	}
	if err := st.Scope().ReserveMemory(2*MaxFrameBytes, network.ReservationPriorityAlways); err != nil {
		st.Reset()
		return
	}
	defer st.Scope().ReleaseMemory(2 * MaxFrameBytes)
	if err := h.serve(st); err != nil {
		st.Reset()
		return
	}
	st.Close()
}

func (h Handler) serve(st network.Stream) error {
	from := st.Conn().RemotePeer()
	r := pbio.NewDelimitedReader(st, MaxFrameBytes)
	w := pbio.NewDelimitedWriter(st)
	for {
		st.SetReadDeadline(time.Now().Add(h.Idle))
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
		if err := Validate(m, time.Now()); err != nil {
			return fmt.Errorf("invalid message: %w", err)
		}
		m.Nick = content.PeerNick(m.GetNick())
		added, err := h.Store(from, m)
		if err != nil {
			return err
		}
		st.SetWriteDeadline(time.Now().Add(writeTimeout))
		ackErr := w.WriteMsg(&pb.DMFrame{Body: &pb.DMFrame_Ack{Ack: &pb.DMAck{Id: m.GetId()}}})
		if added {
			h.Show(from, m)
		}
		if ackErr != nil {
			return fmt.Errorf("write ack: %w", ackErr)
		}
	}
}

// Stream is an outbound DM stream.
type Stream struct {
	st network.Stream
	r  pbio.Reader
	w  pbio.Writer
}

// Open opens a DM stream to p, over a relayed (limited) connection too:
// DMs are small.
func Open(ctx context.Context, h host.Host, p peer.ID) (*Stream, error) {
	st, err := h.NewStream(network.WithAllowLimitedConn(ctx, "dm"), p, ID)
	if err != nil {
		return nil, err
	}
	if err := st.Scope().SetService(ServiceName); err != nil {
		st.Reset()
		return nil, err
	}
	return &Stream{st: st, r: pbio.NewDelimitedReader(st, MaxFrameBytes), w: pbio.NewDelimitedWriter(st)}, nil
}

// Send writes m and waits up to ackTimeout for its ack. On error the
// stream is reset and must not be used again.
func (s *Stream) Send(m *pb.DirectMessage, ackTimeout time.Duration) error {
	fail := func(err error) error {
		s.st.Reset()
		return err
	}
	s.st.SetWriteDeadline(time.Now().Add(writeTimeout))
	if err := s.w.WriteMsg(&pb.DMFrame{Body: &pb.DMFrame_Message{Message: m}}); err != nil {
		return fail(fmt.Errorf("write: %w", err))
	}
	s.st.SetReadDeadline(time.Now().Add(ackTimeout))
	var f pb.DMFrame
	if err := s.r.ReadMsg(&f); err != nil {
		return fail(fmt.Errorf("no ack: %w", err))
	}
	if ack := f.GetAck(); ack == nil || ack.GetId() != m.GetId() {
		return fail(errors.New("peer answered with something other than the ack"))
	}
	return nil
}

// Limited reports whether the stream runs over a relayed connection.
func (s *Stream) Limited() bool { return s.st.Conn().Stat().Limited }

// Close closes the stream.
func (s *Stream) Close() error { return s.st.Close() }

// Reset resets the stream.
func (s *Stream) Reset() error { return s.st.Reset() }

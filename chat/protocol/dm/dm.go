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
// The opener may send up to Window messages before their acks (one at a
// time is a window of one, which older senders use); the stream is reused
// for the next messages to the same peer. The receiver answers every
// message with its own ack, in the order the messages came, so the opener
// matches each ack to its oldest unacknowledged message. The receiver takes
// the messages that arrived together as one batch: it stores them durably
// in one transaction, then writes their acks in one write. It resets the
// stream on anything else: a bad length prefix, an oversized frame, invalid
// protobuf, an ack where a message belongs, an invalid message, a refused
// message, or silence longer than its idle timeout; when the messages of
// the same batch before the bad one were stored, it writes their acks and
// closes the stream instead (a reset would drop those acks at the
// opener). A message that arrives again (a resend after a lost ack) is
// acked again and shown once. The secure channel (Noise or TLS)
// authenticates the sender; DMs may use a relayed connection.
//
// The window changed nothing on the wire: a receiver that acks one message
// at a time serves a sender with a window, and the other way round.
package dm

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"
	"google.golang.org/protobuf/proto"

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
	MaxAge = 7*24*time.Hour + time.Hour
	// Window is how many messages a sender keeps unacknowledged on one
	// stream: at most Window×MaxFrameBytes in the receiver's buffers,
	// well inside a yamux stream's receive window.
	Window = 32
	// maxBatch bounds the messages a receiver stores and acks together.
	maxBatch     = Window
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

// DecodeFrame decodes one frame's body (without its length prefix).
func DecodeFrame(b []byte) (*pb.DMFrame, error) {
	var f pb.DMFrame
	if err := proto.Unmarshal(b, &f); err != nil {
		return nil, err
	}
	return &f, nil
}

// Handler serves inbound DM streams.
type Handler struct {
	// Idle is how long a stream may stay silent before it is reset.
	Idle time.Duration
	// Store keeps valid messages durably (in one transaction) before
	// they are acked and reports which are new. It may refuse the rest
	// of the batch from some message on: it then returns the results of
	// the messages before it (stored, and acked) and an error, and the
	// stream is reset without acking the others.
	Store func(from peer.ID, ms []*pb.DirectMessage) (added []bool, err error)
	// Show is called for each new message once its ack is written (or
	// failed: it is stored either way), so a slow front end never delays
	// acks.
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
		var acked *ackedError
		if errors.As(err, &acked) {
			// Acks written just before must still arrive: a reset would
			// drop them at the other end, and their DMs would come again.
			st.CloseRead()
			st.CloseWrite()
			return
		}
		st.Reset()
		return
	}
	st.Close()
}

// ackedError is a protocol error that came after acks were written in the
// same batch.
type ackedError struct{ error }

func (e *ackedError) Unwrap() error { return e.error }

func (h Handler) serve(st network.Stream) error {
	from := st.Conn().RemotePeer()
	r := newReader(st)
	var batch []*pb.DirectMessage
	var acks []byte
	var idle, wd deadline
	for {
		idle.extend(st.SetReadDeadline, h.Idle)
		// The first message of a batch is waited for; the others are the
		// whole frames already read with it.
		batch = batch[:0]
		var bad error
		for len(batch) < maxBatch && (len(batch) == 0 || r.frameBuffered()) {
			f, err := r.read()
			if err != nil {
				if errors.Is(err, io.EOF) && len(batch) == 0 {
					return nil
				}
				bad = fmt.Errorf("read frame: %w", err)
				break
			}
			m := f.GetMessage()
			if m == nil {
				bad = errors.New("frame is not a message")
				break
			}
			if err := Validate(m, time.Now()); err != nil {
				bad = fmt.Errorf("invalid message: %w", err)
				break
			}
			m.Nick = content.PeerNick(m.GetNick())
			batch = append(batch, m)
		}
		var added []bool
		if len(batch) > 0 {
			var err error
			added, err = h.Store(from, batch)
			if err != nil && bad == nil {
				bad = err
			}
		}
		// Ack what was stored, in one write, then show it.
		acks = acks[:0]
		for _, m := range batch[:len(added)] {
			acks = appendFrame(acks, &pb.DMFrame{Body: &pb.DMFrame_Ack{Ack: &pb.DMAck{Id: m.GetId()}}})
		}
		var ackErr error
		if len(acks) > 0 {
			wd.extend(st.SetWriteDeadline, writeTimeout)
			_, ackErr = st.Write(acks)
		}
		for i, m := range batch[:len(added)] {
			if added[i] {
				h.Show(from, m)
			}
		}
		if bad != nil {
			if len(acks) > 0 && ackErr == nil {
				return &ackedError{bad}
			}
			return bad
		}
		if ackErr != nil {
			return fmt.Errorf("write ack: %w", ackErr)
		}
	}
}

// deadline moves a stream's read or write deadline forward lazily: each
// move stops one timer and starts another (yamux), five times per DM
// between the two ends when done on every read and write. It moves only
// once less than 7/8 of d is left, so what runs out is still between 7/8
// of d and d after the last activity.
type deadline struct{ at time.Time }

func (dl *deadline) extend(set func(time.Time) error, d time.Duration) {
	now := time.Now()
	if dl.at.Sub(now) >= d-d/8 {
		return
	}
	dl.at = now.Add(d)
	set(dl.at)
}

// appendFrame appends f with its length prefix.
func appendFrame(b []byte, f *pb.DMFrame) []byte {
	n := proto.Size(f)
	b = binary.AppendUvarint(b, uint64(n))
	b, _ = proto.MarshalOptions{}.MarshalAppend(b, f)
	return b
}

// reader reads length-prefixed frames through a buffer, so that frames
// that arrived together are read without waiting.
type reader struct {
	br  *bufio.Reader
	buf []byte
}

func newReader(r io.Reader) *reader { return &reader{br: bufio.NewReaderSize(r, 2*MaxFrameBytes)} }

func (r *reader) read() (*pb.DMFrame, error) {
	n, err := binary.ReadUvarint(r.br)
	if err != nil {
		if errors.Is(err, io.EOF) {
			return nil, io.EOF
		}
		return nil, err
	}
	if n > MaxFrameBytes {
		return nil, fmt.Errorf("frame of %d bytes, more than %d", n, MaxFrameBytes)
	}
	if cap(r.buf) < int(n) {
		r.buf = make([]byte, n)
	}
	b := r.buf[:n]
	if _, err := io.ReadFull(r.br, b); err != nil {
		if errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF
		}
		return nil, err
	}
	return DecodeFrame(b)
}

// frameBuffered reports whether a whole frame is buffered already.
func (r *reader) frameBuffered() bool {
	k := r.br.Buffered()
	if k == 0 {
		return false
	}
	head, _ := r.br.Peek(min(k, binary.MaxVarintLen64))
	n, w := binary.Uvarint(head)
	return w > 0 && uint64(k-w) >= n
}

// Stream is an outbound DM stream. Its writes (Send) and its reads
// (ReadAck) may run in two goroutines; each of them in one at a time.
type Stream struct {
	st   network.Stream
	r    *reader
	wbuf []byte
	wd   deadline
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
	return &Stream{st: st, r: newReader(st)}, nil
}

// Send writes ms in one write, without waiting for their acks. On error
// the stream is reset and must not be used again.
func (s *Stream) Send(ms ...*pb.DirectMessage) error {
	s.wbuf = s.wbuf[:0]
	for _, m := range ms {
		s.wbuf = appendFrame(s.wbuf, &pb.DMFrame{Body: &pb.DMFrame_Message{Message: m}})
	}
	s.wd.extend(s.st.SetWriteDeadline, writeTimeout)
	if _, err := s.st.Write(s.wbuf); err != nil {
		s.st.Reset()
		return fmt.Errorf("write: %w", err)
	}
	return nil
}

// ReadAck waits for the next ack (see SetAckDeadline) and returns the ID
// it acknowledges. On error the stream is reset and must not be used
// again.
func (s *Stream) ReadAck() (string, error) {
	f, err := s.r.read()
	if err != nil {
		s.st.Reset()
		return "", fmt.Errorf("no ack: %w", err)
	}
	ack := f.GetAck()
	if ack == nil {
		s.st.Reset()
		return "", errors.New("peer answered with something other than an ack")
	}
	return ack.GetId(), nil
}

// AckBuffered reports whether a whole frame is already read from the
// network: ReadAck returns it without waiting.
func (s *Stream) AckBuffered() bool { return s.r.frameBuffered() }

// SetAckDeadline bounds the wait of ReadAck (the zero time: none).
func (s *Stream) SetAckDeadline(t time.Time) { s.st.SetReadDeadline(t) }

// Limited reports whether the stream runs over a relayed connection.
func (s *Stream) Limited() bool { return s.st.Conn().Stat().Limited }

// Close closes the stream.
func (s *Stream) Close() error { return s.st.Close() }

// Reset resets the stream.
func (s *Stream) Reset() error { return s.st.Reset() }

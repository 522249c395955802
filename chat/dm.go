package chat

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/parley-chat/parley/chat/content"
	"github.com/parley-chat/parley/chat/pb"
	"github.com/parley-chat/parley/chat/protocol/dm"
	"github.com/parley-chat/parley/chat/storage"
)

// DMProtocol is the stream protocol for direct messages (package dm).
const DMProtocol = dm.ID

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
		return "", fmt.Errorf("dm: %w", ErrSelf)
	}
	if s.isClosed() {
		return "", ErrClosed
	}
	if n, err := s.store.CountPendingDMs(pid.String()); err != nil {
		return "", fmt.Errorf("dm: %w", err)
	} else if n >= s.cfg.limits.OutboxPerPeer {
		return "", fmt.Errorf("dm: %w: %d DMs to %s are still waiting to be delivered; new ones can be sent once they are",
			ErrOutboxFull, n, s.displayName(pid))
	}
	m := storage.DM{ID: content.NewID(), Peer: pid.String(), Nick: s.Nick(), Text: text, SentAt: time.Now().UnixMilli()}
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
	stream *dm.Stream

	flushing bool // a flush goroutine runs (guarded by outbox.mu)
	again    bool // another flush was asked for meanwhile (guarded by outbox.mu)
	force    bool // ... ignoring the retry schedule (guarded by outbox.mu)
}

func (c *dmConn) send(ctx context.Context, msg *pb.DirectMessage) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.stream != nil && c.stream.Limited() && c.hasDirectConn() {
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
		st, err := dm.Open(octx, c.s.h, c.peer)
		cancel()
		if err != nil {
			return &errUnreachable{err}
		}
		c.stream = st
	}
	if err := c.stream.Send(msg, c.s.cfg.ackTimeout); err != nil {
		c.stream = nil
		return err
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

// dmHandler receives DMs: stored (durably) before the ack, so an
// acknowledged DM is never lost, and shown after it.
func (s *Service) dmHandler() dm.Handler {
	return dm.Handler{
		Idle: s.cfg.dmIdle,
		Store: func(from peer.ID, m *pb.DirectMessage) (bool, error) {
			// Refused: no ack, so the sender keeps it and retries.
			if _, _, ok := s.isRekey(from, m.GetText()); ok {
				// A room's new key is the room's business: taken (by
				// Show, after the ack), not kept in the inbox as a DM.
				return true, nil
			}
			size := int64(len(m.GetText()) + len(m.GetNick()))
			if err := s.admitDM(from, size); err != nil {
				s.refuseDM(from, err)
				return false, err
			}
			added, err := s.store.AddReceivedDM(storage.DM{ID: m.GetId(), Peer: from.String(), Nick: m.GetNick(), Text: m.GetText(), SentAt: m.GetSentAtMs()})
			if !added {
				s.limits.uncharge(from, size) // a copy of one stored before, or not stored
			}
			if err != nil {
				s.emit(Error{Err: s.tell(fmt.Sprintf("a DM from %s could not be stored, so it was not acknowledged (it will come again); see the log", short(from)), nil, err)})
			}
			return added, err
		},
		Show: func(from peer.ID, m *pb.DirectMessage) {
			s.nicks.seen(from, m.GetNick(), time.Now())
			if s.takeRekey(from, m.GetText()) {
				return
			}
			s.emit(DirectMessage{
				ID:     m.GetId(),
				From:   from,
				Nick:   m.GetNick(),
				Text:   m.GetText(),
				SentAt: time.UnixMilli(m.GetSentAtMs()).UTC(),
			})
		},
	}
}

// handleDM serves one inbound DM stream for as long as the service runs.
func (s *Service) handleDM(st network.Stream) {
	if !s.track() {
		st.Reset()
		return
	}
	defer s.wg.Done()
	// A peer needs one DM stream at a time: a few more are tolerated (a
	// stream being replaced); past that its oldest is closed, so silent
	// extras cannot pile up, nor keep the peer's next stream out.
	from := st.Conn().RemotePeer()
	if old := s.limits.openDMStream(from, st); old != nil {
		old.Reset()
	}
	defer s.limits.closeDMStream(from, st)
	// Stop reading when the service closes, not only at the deadline.
	stop := context.AfterFunc(s.ctx, func() { st.Reset() })
	defer stop()
	s.dmHandler().Handle(st)
}

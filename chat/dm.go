package chat

import (
	"context"
	"fmt"
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
//
// On a DM stream that is open and has nothing older waiting, the DM is
// written to it by SendDM itself (no hand-off to another goroutine), up
// to dm.Window DMs before their acks; past that it waits in memory for
// the acks to make room (it is on disk already).
func (s *Service) SendDM(to, text string) (string, error) {
	if err := ValidateText(text); err != nil {
		return "", fmt.Errorf("dm: %w", err)
	}
	pid, err := s.outbox.resolve(to)
	if err != nil {
		return "", fmt.Errorf("dm: %w", err)
	}
	if pid == s.h.ID() {
		return "", fmt.Errorf("dm: %w", ErrSelf)
	}
	if s.isClosed() {
		return "", ErrClosed
	}
	// The outbox keeps the count of each peer's pending DMs (read from
	// the store at start): no query per DM.
	if n := s.outbox.pendingTo(pid); n >= s.cfg.limits.OutboxPerPeer {
		return "", fmt.Errorf("dm: %w: %d DMs to %s are still waiting to be delivered; new ones can be sent once they are",
			ErrOutboxFull, n, s.displayName(pid))
	}
	c := s.outbox.conn(pid)
	if c == nil {
		return "", ErrClosed
	}
	c.order.Lock()
	// A DM's sent-at is after its predecessor's to the same peer, also
	// within one millisecond: both ends list a conversation by sent-at,
	// and DMs now follow each other faster than that.
	sentAt := max(time.Now().UnixMilli(), c.lastSentAt+1)
	c.lastSentAt = sentAt
	m := storage.DM{ID: content.NewID(), Peer: c.peerStr, Nick: s.Nick(), Text: text, SentAt: sentAt}
	if err := s.store.QueueDM(m); err != nil {
		c.order.Unlock()
		return "", fmt.Errorf("dm: %w", err)
	}
	s.outbox.queued(pid)
	sent := c.sendNow(&pb.DirectMessage{Id: m.ID, Nick: m.Nick, Text: m.Text, SentAtMs: m.SentAt})
	c.order.Unlock()
	if !sent {
		s.outbox.flush(pid, true)
	}
	return m.ID, nil
}

// errUnreachable means no stream could be opened to the peer at all.
type errUnreachable struct{ err error }

func (e *errUnreachable) Error() string { return "peer unreachable: " + e.err.Error() }
func (e *errUnreachable) Unwrap() error { return e.err }

// dmHandler receives DMs: stored (durably, the DMs that arrived together
// in one transaction) before the ack, so an acknowledged DM is never
// lost, and shown after it.
func (s *Service) dmHandler() dm.Handler {
	return dm.Handler{
		Idle: s.cfg.dmIdle,
		Store: func(from peer.ID, ms []*pb.DirectMessage) ([]bool, error) {
			// A refused DM gets no ack, nor do the ones after it, so the
			// sender keeps them and retries.
			var refused error
			sender := from.String() // base58: once a batch, not once a DM
			keep := make([]storage.DM, 0, len(ms))
			sizes := make([]int64, 0, len(ms))
			rekey := make([]bool, len(ms))
			for i, m := range ms {
				if _, _, ok := s.isRekey(from, m.GetText()); ok {
					// A room's new key is the room's business: taken (by
					// Show, after the ack), not kept in the inbox as a DM.
					rekey[i] = true
					continue
				}
				size := int64(len(m.GetText()) + len(m.GetNick()))
				if err := s.admitDM(from, size); err != nil {
					if i > 0 {
						// The notice names the sender as the DMs taken
						// before this one in the batch (shown after it).
						s.sawNicks([]sighting{{from, ms[i-1].GetNick(), time.Now(), sentTime(ms[i-1].GetSentAtMs())}})
					}
					s.refuseDM(from, err)
					refused, ms = err, ms[:i]
					break
				}
				keep = append(keep, storage.DM{ID: m.GetId(), Peer: sender, Nick: m.GetNick(), Text: m.GetText(), SentAt: m.GetSentAtMs()})
				sizes = append(sizes, size)
			}
			var stored []bool
			if len(keep) > 0 {
				var err error
				stored, err = s.store.AddReceivedDMs(keep)
				if err != nil {
					for _, size := range sizes {
						s.limits.uncharge(from, size)
					}
					s.emit(Error{Err: s.tell(fmt.Sprintf("DMs from %s could not be stored, so they were not acknowledged (they will come again); see the log", short(from)), nil, err)})
					return nil, err
				}
			}
			added := make([]bool, len(ms))
			j := 0
			for i := range ms {
				if rekey[i] {
					added[i] = true
					continue
				}
				added[i] = stored[j]
				if !stored[j] {
					s.limits.uncharge(from, sizes[j]) // a copy of one stored before
				}
				j++
			}
			return added, refused
		},
		Show: func(from peer.ID, m *pb.DirectMessage) {
			s.sawNicks([]sighting{{from, m.GetNick(), time.Now(), sentTime(m.GetSentAtMs())}})
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

package chat

import (
	"fmt"
	"time"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/parley-chat/parley/chat/pb"
)

// The DM outbox retry schedule. Retries are few and cheap: a peer that is
// gone (its DHT records live on for hours) costs one failed dial per step.
const (
	// OutboxExpiry is how long an undelivered DM is kept trying.
	OutboxExpiry   = 7 * 24 * time.Hour
	outboxCheck    = 2 * time.Second // how often due retries are looked for
	outboxMinDelay = 5 * time.Second
	outboxMaxDelay = time.Hour
)

// retryDelay is the wait after the n-th failed attempt: 5 s, 15 s, 45 s,
// ... up to an hour.
func retryDelay(attempts int) time.Duration {
	d := outboxMinDelay
	for i := 1; i < attempts && d < outboxMaxDelay; i++ {
		d *= 3
	}
	return min(d, outboxMaxDelay)
}

// Queued reports that DM ID could not be delivered yet: it stays in the
// outbox and is retried (when the peer connects, and on a schedule).
type Queued struct {
	ID  string
	To  peer.ID
	Err error
}

func (Queued) isEvent() {}

// PendingDM is a DM in the outbox.
type PendingDM struct {
	ID       string
	To       peer.ID
	Text     string
	SentAt   time.Time
	Attempts int
	Next     time.Time
}

// Outbox lists the DMs not yet acknowledged, oldest first.
func (s *Service) Outbox() ([]PendingDM, error) {
	dms, err := s.store.PendingDMs("")
	if err != nil {
		return nil, err
	}
	out := make([]PendingDM, 0, len(dms))
	for _, m := range dms {
		to, _ := peer.Decode(m.Peer)
		out = append(out, PendingDM{ID: m.ID, To: to, Text: m.Text, SentAt: time.UnixMilli(m.SentAt), Attempts: m.Attempts, Next: m.Next})
	}
	return out, nil
}

// startOutbox retries what the outbox holds: now (DMs left from before a
// restart), whenever a peer with pending DMs connects, and when a retry is
// due.
func (s *Service) startOutbox() {
	connected := &network.NotifyBundle{ConnectedF: func(_ network.Network, c network.Conn) {
		s.flushOutbox(c.RemotePeer(), true)
	}}
	s.h.Network().Notify(connected)
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		defer s.h.Network().StopNotify(connected)
		tick := time.NewTicker(outboxCheck)
		defer tick.Stop()
		for first := true; ; first = false {
			if !first {
				select {
				case <-s.ctx.Done():
					return
				case <-tick.C:
				}
			}
			pending, err := s.store.PendingDMs("")
			if err != nil {
				s.log.Warn("read dm outbox", "err", err)
				continue
			}
			now := time.Now()
			due := make(map[peer.ID]bool)
			for _, m := range pending {
				if !m.Next.After(now) {
					if p, err := peer.Decode(m.Peer); err == nil {
						due[p] = true
					}
				}
			}
			for p := range due {
				s.flushOutbox(p, false)
			}
		}
	}()
}

// flushOutbox delivers p's pending DMs in the background, one goroutine
// per peer; force ignores the retry schedule (the peer just connected, or
// the user just sent).
func (s *Service) flushOutbox(p peer.ID, force bool) {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return
	}
	c := s.dmConns[p]
	if c == nil {
		c = &dmConn{s: s, peer: p}
		s.dmConns[p] = c
	}
	if c.flushing {
		c.again, c.force = true, c.force || force
		s.mu.Unlock()
		return
	}
	c.flushing = true
	s.wg.Add(1)
	s.sends.Add(1)
	s.mu.Unlock()
	go func() {
		defer s.wg.Done()
		defer s.sends.Done()
		for {
			c.flush(force)
			s.mu.Lock()
			if !c.again || s.closed {
				c.flushing = false
				s.mu.Unlock()
				return
			}
			force = c.force
			c.again, c.force = false, false
			s.mu.Unlock()
		}
	}()
}

// flush sends the peer's due DMs in order until one fails.
func (c *dmConn) flush(force bool) {
	s := c.s
	pending, err := s.store.PendingDMs(c.peer.String())
	if err != nil {
		s.emit(Error{Err: fmt.Errorf("read dm outbox: %w", err)})
		return
	}
	for _, m := range pending {
		if s.ctx.Err() != nil {
			return
		}
		now := time.Now()
		if now.Sub(time.UnixMilli(m.SentAt)) > OutboxExpiry {
			err := fmt.Errorf("dm %s to %s not delivered within %v; giving up", m.ID, c.peer, OutboxExpiry)
			if s.store.GiveUp(m.ID, err.Error()) == nil {
				s.emit(Error{ID: m.ID, Err: err})
			}
			continue
		}
		if !force && m.Next.After(now) {
			return // keep the order: later DMs wait for this one
		}
		msg := &pb.DirectMessage{Id: m.ID, Nick: m.Nick, Text: m.Text, SentAtMs: m.SentAt}
		if err := c.send(s.ctx, msg); err != nil {
			if s.ctx.Err() != nil {
				return
			}
			attempts := m.Attempts + 1
			if err := s.store.Reschedule(m.ID, attempts, now.Add(retryDelay(attempts))); err != nil {
				s.log.Warn("reschedule dm", "err", err)
			}
			if attempts == 1 {
				s.emit(Queued{ID: m.ID, To: c.peer, Err: err})
			}
			return
		}
		if err := s.store.MarkDelivered(m.ID); err != nil {
			s.emit(Error{ID: m.ID, Err: err})
		}
		s.emit(Delivered{ID: m.ID, To: c.peer, Nick: s.nickOf(c.peer)})
	}
}

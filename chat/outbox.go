package chat

import (
	"errors"
	"fmt"
	"sync"
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
	ID   string
	To   peer.ID
	Nick string // the receiver's nick, when known
	Err  error  // ErrOffline or ErrNoAck (errors.Is), reading as one short sentence
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

// outbox owns the delivery state of queued DMs: how many each peer has
// pending, and the DM stream of each peer being delivered to. It keeps
// state only for peers with pending DMs or an open DM stream, and forgets
// a peer when it disconnects with nothing pending, so the thousands of
// peers a node meets (DHT servers, relays) cost nothing here.
type outbox struct {
	s    *Service
	busy activity // deliveries under way, for Drain

	mu      sync.Mutex
	closed  bool
	pending map[peer.ID]int // undelivered DMs per peer
	conns   map[peer.ID]*dmConn
}

func newOutbox(s *Service) *outbox {
	return &outbox{s: s, pending: make(map[peer.ID]int), conns: make(map[peer.ID]*dmConn)}
}

// start loads what the outbox holds and retries it: now (DMs left from
// before a restart), whenever a peer with pending DMs connects, and when
// a retry is due.
func (o *outbox) start() error {
	s := o.s
	pending, err := s.store.PendingDMs("")
	if err != nil {
		return fmt.Errorf("read dm outbox: %w", err)
	}
	o.mu.Lock()
	for _, m := range pending {
		if p, err := peer.Decode(m.Peer); err == nil {
			o.pending[p]++
		}
	}
	o.mu.Unlock()
	nb := &network.NotifyBundle{
		ConnectedF: func(_ network.Network, c network.Conn) {
			if o.hasPending(c.RemotePeer()) {
				o.flush(c.RemotePeer(), true)
			}
		},
		DisconnectedF: func(n network.Network, c network.Conn) {
			if n.Connectedness(c.RemotePeer()) != network.Connected && n.Connectedness(c.RemotePeer()) != network.Limited {
				o.forget(c.RemotePeer())
			}
		},
	}
	s.h.Network().Notify(nb)
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		defer s.h.Network().StopNotify(nb)
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
			for _, p := range o.due(time.Now()) {
				o.flush(p, false)
			}
		}
	}()
	return nil
}

// due lists the peers with a DM whose retry is due.
func (o *outbox) due(now time.Time) []peer.ID {
	o.mu.Lock()
	empty := len(o.pending) == 0
	o.mu.Unlock()
	if empty {
		return nil
	}
	pending, err := o.s.store.PendingDMs("")
	if err != nil {
		o.s.log.Warn("read dm outbox", "err", err)
		return nil
	}
	seen := make(map[peer.ID]bool)
	var out []peer.ID
	for _, m := range pending {
		p, err := peer.Decode(m.Peer)
		if err == nil && !m.Next.After(now) && !seen[p] {
			seen[p] = true
			out = append(out, p)
		}
	}
	return out
}

func (o *outbox) hasPending(p peer.ID) bool {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.pending[p] > 0
}

// queued notes a DM just written to the outbox for p.
func (o *outbox) queued(p peer.ID) {
	o.mu.Lock()
	o.pending[p]++
	o.mu.Unlock()
}

// settled notes that one of p's DMs left the outbox (delivered or given up).
func (o *outbox) settled(p peer.ID) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.pending[p]--; o.pending[p] <= 0 {
		delete(o.pending, p)
	}
}

// forget drops p's DM stream once p is gone and nothing is pending for it.
func (o *outbox) forget(p peer.ID) {
	o.mu.Lock()
	c := o.conns[p]
	if c == nil || c.flushing || o.pending[p] > 0 {
		o.mu.Unlock()
		return
	}
	delete(o.conns, p)
	o.mu.Unlock()
	c.reset()
}

// tracked counts the peers the outbox keeps state for (for tests).
func (o *outbox) tracked() int {
	o.mu.Lock()
	defer o.mu.Unlock()
	return len(o.conns) + len(o.pending)
}

func (o *outbox) close() {
	o.mu.Lock()
	o.closed = true
	conns := o.conns
	o.conns = make(map[peer.ID]*dmConn)
	o.mu.Unlock()
	for _, c := range conns {
		c.reset()
	}
}

// flush delivers p's pending DMs in the background, one goroutine per
// peer; force ignores the retry schedule (the peer just connected, or the
// user just sent).
func (o *outbox) flush(p peer.ID, force bool) {
	s := o.s
	o.mu.Lock()
	if o.closed || !s.track() {
		o.mu.Unlock()
		return
	}
	c := o.conns[p]
	if c == nil {
		c = &dmConn{s: s, peer: p}
		o.conns[p] = c
	}
	if c.flushing {
		c.again, c.force = true, c.force || force
		o.mu.Unlock()
		s.wg.Done()
		return
	}
	c.flushing = true
	o.busy.add()
	o.mu.Unlock()
	go func() {
		defer s.wg.Done()
		defer o.busy.done()
		for {
			o.deliver(c, force)
			o.mu.Lock()
			if !c.again || o.closed {
				c.flushing = false
				o.mu.Unlock()
				return
			}
			force = c.force
			c.again, c.force = false, false
			o.mu.Unlock()
		}
	}()
}

// deliver sends c's peer its due DMs in order until one fails.
func (o *outbox) deliver(c *dmConn, force bool) {
	s := o.s
	pending, err := s.store.PendingDMs(c.peer.String())
	if err != nil {
		s.emit(Error{Err: s.tell("the DM outbox could not be read; see the log", nil, err)})
		return
	}
	for i, m := range pending {
		if s.ctx.Err() != nil {
			return
		}
		now := time.Now()
		if now.Sub(time.UnixMilli(m.SentAt)) > OutboxExpiry {
			err := fmt.Errorf("DM %.8s to %s not delivered within %v; given up", m.ID, short(c.peer), OutboxExpiry)
			if s.store.GiveUp(m.ID, err.Error()) == nil {
				o.settled(c.peer)
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
			kind := ErrNoAck
			var unreachable *errUnreachable
			if errors.As(err, &unreachable) {
				kind = ErrOffline
			}
			// The person sees one sentence per DM, once; the dial error
			// is logged. DMs queued behind this one (never tried: it goes
			// first) are told about too, or a second DM to an offline
			// peer would say nothing.
			s.log.Info("dm not delivered yet", "id", m.ID, "peer", c.peer, "attempts", attempts, "err", err)
			for j, w := range pending[i:] {
				if j > 0 && w.Attempts > 0 {
					continue
				}
				if j == 0 && attempts > 1 {
					continue
				}
				if j > 0 {
					if err := s.store.Reschedule(w.ID, 1, now.Add(retryDelay(attempts))); err != nil {
						s.log.Warn("reschedule dm", "err", err)
					}
				}
				s.emit(Queued{ID: w.ID, To: c.peer, Nick: s.nicks.get(c.peer), Err: &shortError{msg: kind.Error(), kind: kind, detail: err}})
			}
			return
		}
		if err := s.store.MarkDelivered(m.ID); err != nil {
			s.emit(Error{ID: m.ID, Err: s.tell("a delivered DM could not be marked so; it may be sent again", nil, err)})
		} else {
			o.settled(c.peer)
		}
		s.emit(Delivered{ID: m.ID, To: c.peer, Nick: s.nicks.get(c.peer)})
	}
}

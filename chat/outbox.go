package chat

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/parley-chat/parley/chat/pb"
	"github.com/parley-chat/parley/chat/protocol/dm"
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
	acked := s.outbox.unmarked()
	out := make([]PendingDM, 0, len(dms))
	for _, m := range dms {
		if acked[m.ID] {
			continue // delivered; its mark is being written
		}
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
	// The peer ID string SendDM was last given and what it decodes to:
	// decoding (base58, multihash) was ~7 % of a DM's CPU when the same
	// peer gets DM after DM.
	lastTo  string
	lastPID peer.ID
}

// resolve is s.ResolvePeer, remembering the last full peer ID decoded (an
// ID always decodes the same; a nick may come to mean another peer, so
// nicks are resolved every time).
func (o *outbox) resolve(to string) (peer.ID, error) {
	o.mu.Lock()
	if to == o.lastTo && to != "" {
		p := o.lastPID
		o.mu.Unlock()
		return p, nil
	}
	o.mu.Unlock()
	p, err := o.s.ResolvePeer(to)
	if err != nil {
		return "", err
	}
	if p.String() == to {
		o.mu.Lock()
		o.lastTo, o.lastPID = to, p
		o.mu.Unlock()
	}
	return p, nil
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
		DisconnectedF: func(n network.Network, c network.Conn) { o.forgetIfGone(c.RemotePeer()) },
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

// pendingTo counts p's undelivered DMs.
func (o *outbox) pendingTo(p peer.ID) int {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.pending[p]
}

// queued notes a DM just written to the outbox for p.
func (o *outbox) queued(p peer.ID) {
	o.mu.Lock()
	o.pending[p]++
	o.mu.Unlock()
}

// settled notes that n of p's DMs left the outbox (delivered or given up).
// A peer that left while its last DMs were being marked is forgotten now
// (its disconnect found them pending).
func (o *outbox) settled(p peer.ID, n int) {
	o.mu.Lock()
	o.pending[p] -= n
	done := o.pending[p] <= 0
	if done {
		delete(o.pending, p)
	}
	o.mu.Unlock()
	if done {
		o.forgetIfGone(p)
	}
}

// idle marks n DMs no longer under way (for Drain).
func (o *outbox) idle(n int) {
	for range n {
		o.busy.done()
	}
}

// conn returns p's dmConn, made if needed; nil once closed.
func (o *outbox) conn(p peer.ID) *dmConn {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.closed {
		return nil
	}
	c := o.conns[p]
	if c == nil {
		c = newDMConn(o.s, p)
		o.conns[p] = c
	}
	return c
}

// unmarked lists the DMs acknowledged whose mark in the store is not
// written yet.
func (o *outbox) unmarked() map[string]bool {
	o.mu.Lock()
	conns := make([]*dmConn, 0, len(o.conns))
	for _, c := range o.conns {
		conns = append(conns, c)
	}
	o.mu.Unlock()
	out := make(map[string]bool)
	for _, c := range conns {
		c.mu.Lock()
		for id := range c.unmarked {
			out[id] = true
		}
		c.mu.Unlock()
	}
	return out
}

// forgetIfGone forgets p unless it is connected.
func (o *outbox) forgetIfGone(p peer.ID) {
	if c := o.s.h.Network().Connectedness(p); c != network.Connected && c != network.Limited {
		o.forget(p)
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
		c = newDMConn(s, p)
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
				// The peer may have left while this flush ran (waiting
				// for the last marks): forget it now.
				o.forgetIfGone(c.peer)
				return
			}
			force = c.force
			c.again, c.force = false, false
			o.mu.Unlock()
		}
	}()
}

// dmConn is the outbound DM stream to one peer, reused while it works,
// and the DMs on it: up to dm.Window written and waiting for their acks,
// the rest waiting in memory for room in that window. Every DM held here
// is in the store's outbox too, which stays the truth: when the stream
// breaks, what is held is dropped and a flush reads the outbox again.
type dmConn struct {
	s        *Service
	peer     peer.ID
	peerStr  string        // peer.String(), as the store keeps it
	progress chan struct{} // a signal after acks (for a waiting flush)
	// order is held by SendDM from queueing a DM until it is written or
	// left to a flush, and by a flush from reading the outbox until it
	// took what it read: so a DM never overtakes an older one.
	order      sync.Mutex
	lastSentAt int64 // of the last DM queued, Unix ms (guarded by order)

	mu     sync.Mutex
	stream *dmStream
	// live: every DM pending for the peer is held here, so a new one may
	// go straight after them (sendNow); false while a flush has the
	// outbox to go through.
	live  bool
	held  map[string]bool     // IDs sent or queued on stream, not yet settled
	queue []*pb.DirectMessage // waiting for room in the window
	sent  []string            // written, waiting for their acks, oldest first
	// Acknowledged, waiting to be marked delivered (see acked); unmarked
	// outlives a broken stream, so a flush skips them.
	toMark   []string
	unmarked map[string]bool
	marking  bool // a mark is scheduled

	flushing bool // a flush goroutine runs (guarded by outbox.mu)
	again    bool // another flush was asked for meanwhile (guarded by outbox.mu)
	force    bool // ... ignoring the retry schedule (guarded by outbox.mu)
}

// dmStream is one outbound DM stream and its ack reader.
type dmStream struct {
	*dm.Stream
	failed chan struct{} // closed once the stream broke
	err    error         // why (set before failed is closed)
}

func newDMConn(s *Service, p peer.ID) *dmConn {
	return &dmConn{s: s, peer: p, peerStr: p.String(), progress: make(chan struct{}, 1), held: make(map[string]bool), unmarked: make(map[string]bool)}
}

// sendNow writes m straight to the open stream (or queues it behind the
// DMs in the window) when the conn is live.
func (c *dmConn) sendNow(m *pb.DirectMessage) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.live || c.stream == nil {
		return false
	}
	if c.held[m.GetId()] {
		return true // a flush took it already
	}
	if len(c.sent) == 0 && c.stream.Limited() && c.hasDirectConn() {
		// Hole punching made a direct connection since the stream was
		// opened over the relay: a flush moves to it.
		c.dropLocked(c.stream, nil)
		return false
	}
	c.holdLocked(m)
	if len(c.sent) == 0 {
		c.pumpLocked()
	}
	// Else it goes with the next write, made when the acks of the DMs in
	// flight come back: DMs sent faster than the round trip travel in
	// batches, which the receiver stores in one transaction and acks in
	// one write, and whose acks are marked in one transaction here.
	return true
}

// holdLocked takes m into the queue.
func (c *dmConn) holdLocked(m *pb.DirectMessage) {
	c.held[m.GetId()] = true
	c.queue = append(c.queue, m)
	c.s.outbox.busy.add()
}

// pumpLocked writes queued DMs while the window has room, in one write.
func (c *dmConn) pumpLocked() {
	st := c.stream
	n := min(len(c.queue), dm.Window-len(c.sent))
	if st == nil || n <= 0 {
		return
	}
	batch := c.queue[:n]
	if len(c.sent) == 0 {
		st.SetAckDeadline(time.Now().Add(c.s.cfg.ackTimeout))
	}
	if err := st.Send(batch...); err != nil {
		c.failLocked(st, err)
		return
	}
	for _, m := range batch {
		c.sent = append(c.sent, m.GetId())
	}
	c.queue = c.queue[n:]
	if len(c.queue) == 0 {
		c.queue = nil // let a long burst's array go
	}
}

// open opens a stream unless one is open; it starts the stream's ack
// reader.
func (c *dmConn) open(ctx context.Context) (*dmStream, error) {
	c.mu.Lock()
	if st := c.stream; st != nil {
		if !(len(c.sent) == 0 && st.Limited() && c.hasDirectConn()) {
			c.mu.Unlock()
			return st, nil
		}
		c.dropLocked(st, nil) // move from the relay to the direct connection
	}
	c.mu.Unlock()
	octx, cancel := context.WithTimeout(ctx, c.s.cfg.openTimeout)
	raw, err := dm.Open(octx, c.s.h, c.peer)
	cancel()
	if err != nil {
		return nil, &errUnreachable{err}
	}
	st := &dmStream{Stream: raw, failed: make(chan struct{})}
	if !c.s.track() {
		raw.Reset()
		return nil, ErrClosed
	}
	c.mu.Lock()
	if old := c.stream; old != nil {
		c.dropLocked(old, nil)
	}
	c.stream = st
	c.mu.Unlock()
	go c.readAcks(st)
	return st, nil
}

// readAcks takes the acks of st until it breaks: the acks that came
// together are marked delivered in one transaction, then announced.
func (c *dmConn) readAcks(st *dmStream) {
	s := c.s
	defer s.wg.Done()
	var ids []string
	for {
		id, err := st.ReadAck()
		if err != nil {
			c.fail(st, err)
			return
		}
		ids = append(ids[:0], id)
		for len(ids) < dm.Window && st.AckBuffered() {
			id, err := st.ReadAck()
			if err != nil {
				break // the acks read so far count; the next read fails again
			}
			ids = append(ids, id)
		}
		c.mu.Lock()
		ok := c.stream == st && len(ids) <= len(c.sent)
		for i := 0; ok && i < len(ids); i++ {
			ok = c.sent[i] == ids[i]
		}
		c.mu.Unlock()
		if !ok {
			st.Reset()
			c.fail(st, fmt.Errorf("peer acknowledged DMs out of order or never sent"))
			return
		}
		// Counted out of the outbox and announced before the store marks
		// them: the mark is off the path of the round trip. Until it is
		// written they stay held, so no flush sends them again; if the
		// process dies before, they are sent again after the restart and
		// the receiver, which has them, acks them again.
		s.outbox.settled(c.peer, len(ids))
		c.mu.Lock()
		if c.stream == st {
			c.sent = c.sent[len(ids):]
			if len(c.sent) == 0 {
				st.SetAckDeadline(time.Time{}) // idle: the receiver closes it in time
			} else {
				st.SetAckDeadline(time.Now().Add(s.cfg.ackTimeout))
			}
			c.pumpLocked()
		}
		c.mu.Unlock()
		nick := s.nicks.get(c.peer)
		for _, id := range ids {
			s.emit(Delivered{ID: id, To: c.peer, Nick: nick})
		}
		c.acked(ids)
		select {
		case c.progress <- struct{}{}:
		default:
		}
	}
}

// markDelay is how long acks wait to be marked in the outbox together:
// the mark is off the round trip (Delivered is out already), and a DM
// sent right after the last one's Delivered does not wait for the
// store's one connection behind that mark.
const markDelay = time.Millisecond

// acked notes acknowledged DMs, to be marked delivered within markDelay.
// They stay held until then, so no flush sends them again.
func (c *dmConn) acked(ids []string) {
	c.mu.Lock()
	c.toMark = append(c.toMark, ids...)
	for _, id := range ids {
		c.unmarked[id] = true
	}
	schedule := !c.marking
	c.marking = true
	c.mu.Unlock()
	if !schedule {
		return
	}
	s := c.s
	if !s.track() {
		c.mark() // closing: now, before the store closes
		return
	}
	time.AfterFunc(markDelay, func() {
		defer s.wg.Done()
		c.mark()
	})
}

// mark marks the acknowledged DMs delivered in one transaction and lets
// them go, under c.order: a flush reading the outbox meanwhile still finds
// them unmarked here, so it does not send them again.
func (c *dmConn) mark() {
	s := c.s
	c.order.Lock()
	c.mu.Lock()
	ids := c.toMark
	c.toMark, c.marking = nil, false
	c.mu.Unlock()
	if len(ids) > 0 {
		if err := s.store.MarkDMsDelivered(ids); err != nil {
			s.emit(Error{ID: ids[0], Err: s.tell("delivered DMs could not be marked so; they may be sent again", nil, err)})
		}
	}
	c.mu.Lock()
	let := 0
	for _, id := range ids {
		delete(c.unmarked, id)
		if c.held[id] { // else dropping the stream counted it
			delete(c.held, id)
			let++
		}
	}
	c.mu.Unlock()
	c.order.Unlock()
	s.outbox.idle(let)
	select {
	case c.progress <- struct{}{}:
	default:
	}
}

// fail drops st after it broke, with what it held; the outbox is read
// again by a flush (which also applies the retry schedule).
func (c *dmConn) fail(st *dmStream, err error) {
	c.mu.Lock()
	had := c.dropLocked(st, err)
	c.mu.Unlock()
	if had > 0 {
		c.s.outbox.flush(c.peer, false)
	}
	c.s.outbox.idle(had)
}

// failLocked is fail for a caller holding c.mu (a failed write).
func (c *dmConn) failLocked(st *dmStream, err error) {
	had := c.dropLocked(st, err)
	if had > 0 {
		// The flush starts in its own goroutine; it takes c.mu there.
		c.s.outbox.flush(c.peer, false)
	}
	c.s.outbox.idle(had)
}

// dropLocked ends st and lets go of the DMs held on it; it returns how
// many there were, for the caller to mark them no longer busy.
func (c *dmConn) dropLocked(st *dmStream, err error) int {
	select {
	case <-st.failed:
	default:
		st.err = err
		close(st.failed)
		st.Reset()
	}
	if c.stream != st {
		return 0
	}
	had := len(c.held)
	c.stream, c.live = nil, false
	c.sent, c.queue = nil, nil
	clear(c.held)
	return had
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
	st := c.stream
	had := 0
	if st != nil {
		had = c.dropLocked(st, ErrClosed)
	}
	c.mu.Unlock()
	c.s.outbox.idle(had)
}

// take holds the due DMs of a flush on st, those not held already, and
// makes the conn live when they are all that is pending. It returns the
// IDs to wait for.
func (c *dmConn) take(st *dmStream, ms []*pb.DirectMessage, all bool) ([]string, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.stream != st {
		return nil, false
	}
	ids := make([]string, 0, len(ms))
	for _, m := range ms {
		if c.unmarked[m.GetId()] {
			continue // acknowledged, its mark not yet written
		}
		ids = append(ids, m.GetId())
		if !c.held[m.GetId()] {
			c.holdLocked(m)
		}
	}
	c.live = all
	c.pumpLocked()
	return ids, c.stream == st
}

// await waits until none of ids is held on st any more (acknowledged),
// or st broke.
func (c *dmConn) await(ctx context.Context, st *dmStream, ids []string) error {
	for {
		c.mu.Lock()
		current, waiting := c.stream == st, false
		for i := 0; current && !waiting && i < len(ids); i++ {
			waiting = c.held[ids[i]]
		}
		c.mu.Unlock()
		if !current {
			// Broken or replaced: whatever was acknowledged is out of the
			// outbox already; the caller reads it again.
			if st.err != nil {
				return st.err
			}
			return errStreamReplaced
		}
		if !waiting {
			return nil
		}
		select {
		case <-c.progress:
		case <-st.failed:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

var errStreamReplaced = errors.New("dm stream replaced")

// deliver sends c's peer its due DMs in order, pipelined on one stream,
// and waits for their acks. When the stream breaks it tries once more on
// a fresh one (the peer idle-reset a cached stream, or the connection
// under it was replaced; the receiver drops what arrives twice); then the
// DMs not acknowledged wait for their next attempt.
func (o *outbox) deliver(c *dmConn, force bool) {
	s := o.s
	var err error
	for try := 0; try < 2; try++ {
		var again bool
		again, err = o.deliverOnce(c, force)
		if err == nil || !again || s.ctx.Err() != nil {
			break
		}
	}
	if err == nil || s.ctx.Err() != nil {
		return
	}
	o.postpone(c, err)
}

// deliverOnce is one attempt of deliver; again says a retry may help.
func (o *outbox) deliverOnce(c *dmConn, force bool) (again bool, err error) {
	s := o.s
	if due, _, ok := o.dueFor(c, force); !ok || len(due) == 0 {
		return false, nil
	}
	st, err := c.open(s.ctx)
	if err != nil {
		return false, err
	}
	// Read again with SendDM held off: the DMs queued until then are
	// taken here, the ones after go straight to the stream behind them.
	c.order.Lock()
	due, all, ok := o.dueFor(c, force)
	var ids []string
	taken := true
	if ok && len(due) > 0 {
		ids, taken = c.take(st, due, all)
	}
	c.order.Unlock()
	if !taken {
		return true, errStreamReplaced
	}
	if err := c.await(s.ctx, st, ids); err != nil {
		return true, err
	}
	return false, nil
}

// dueFor reads c's peer's pending DMs and returns those to send now, in
// order; all says no DM is left waiting for its retry. Expired ones are
// given up.
func (o *outbox) dueFor(c *dmConn, force bool) (due []*pb.DirectMessage, all, ok bool) {
	s := o.s
	pending, err := s.store.PendingDMs(c.peer.String())
	if err != nil {
		s.emit(Error{Err: s.tell("the DM outbox could not be read; see the log", nil, err)})
		return nil, false, false
	}
	now := time.Now()
	all = true
	for _, m := range pending {
		if now.Sub(time.UnixMilli(m.SentAt)) > OutboxExpiry {
			err := fmt.Errorf("DM %.8s to %s not delivered within %v; given up", m.ID, short(c.peer), OutboxExpiry)
			if s.store.GiveUp(m.ID, err.Error()) == nil {
				o.settled(c.peer, 1)
				s.emit(Error{ID: m.ID, Err: err})
			}
			continue
		}
		if !force && m.Next.After(now) {
			all = false
			break // keep the order: later DMs wait for this one
		}
		due = append(due, &pb.DirectMessage{Id: m.ID, Nick: m.Nick, Text: m.Text, SentAtMs: m.SentAt})
	}
	return due, all, true
}

// postpone reschedules the first DM not acknowledged after err and tells
// the person about it and the DMs behind it.
func (o *outbox) postpone(c *dmConn, err error) {
	s := o.s
	pending, perr := s.store.PendingDMs(c.peer.String())
	if perr != nil || len(pending) == 0 {
		return
	}
	now := time.Now()
	head := pending[0]
	attempts := head.Attempts + 1
	if err := s.store.Reschedule(head.ID, attempts, now.Add(retryDelay(attempts))); err != nil {
		s.log.Warn("reschedule dm", "err", err)
	}
	kind := ErrNoAck
	var unreachable *errUnreachable
	if errors.As(err, &unreachable) {
		kind = ErrOffline
	}
	// The person sees one sentence per DM, once; the dial error is
	// logged. DMs queued behind this one (never tried: it goes first)
	// are told about too, or a second DM to an offline peer would say
	// nothing.
	s.log.Info("dm not delivered yet", "id", head.ID, "peer", c.peer, "attempts", attempts, "err", err)
	for j, w := range pending {
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
}

package chat

import (
	"cmp"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/parley-chat/parley/chat/storage"
)

// GossipSub does not keep order: a sender's lines can arrive 5 7 6. Every
// room message names its sender's previous one (pb.Envelope.prev_lamport),
// so a receiver that gets a line before the one it follows holds it until
// the missing one arrives (live, or as caught-up history), at most holdFor.
// A line whose predecessor was shown or is stored is shown at once: the
// normal case waits for nothing.
//
// A catch-up stores history page by page and shows the newest of what was
// new (cfg.history) only when it ends; the rest is counted, not shown.
// Until then its new lines wait in its backlog, stored and not shown: a
// line whose predecessor waits there is not shown before it. Showing any
// line of a sender first shows that sender's earlier lines from every
// backlog, as history, so a sender's lines are shown in the order it sent
// them also when a catch-up races its live lines (a newcomer joining
// during a burst gets the burst's first lines both ways). Storing and
// showing (live lines, catch-up pages, a catch-up's end) happen under the
// sequencer's lock, so each stored line is always shown, held, waiting in
// a backlog, or counted as hidden.
//
// Why a link to the previous message rather than a per-sender sequence
// number or a per-sender Lamport counter: the Lamport counter must stay
// shared by the room (it orders replies after what they answer), a second
// counter would have to be kept across restarts, while the link names
// exactly the message that is missing, is checked against what the store
// already holds (the predecessor may have come as history), and 0 (a
// sender's first line, or an older Parley) needs no waiting at all.
//
// Live order and order after a reload agree for each sender: history sorts
// by (sent-at, Lamport, ID), and a sender's sent-at never goes back (see
// room.publish), so its lines sort in the order they were sent, which is
// the order they are shown live.

// holdNanos is holdFor in nanoseconds (atomic, so that tests may change it).
var holdNanos atomic.Int64

func init() { holdNanos.Store(int64(300 * time.Millisecond)) }

func holdFor() time.Duration { return time.Duration(holdNanos.Load()) }

// maxHeld bounds the lines held per sender: past it, they are shown.
const maxHeld = 1024

// sequencer puts each sender's lines of one room in the order they were
// sent before they are shown: live lines, and what catch-ups bring.
type sequencer struct {
	r *room

	mu       sync.Mutex
	authors  map[peer.ID]*authorLine
	backlogs []*backlog // catch-ups under way
	timer    *time.Timer
	closed   bool
}

// authorLine is what a sequencer knows of one sender.
type authorLine struct {
	id       peer.ID
	last     uint64        // Lamport of the newest line shown, or counted as hidden history
	lastSent int64         // sent-at of the newest line shown live (Unix ms)
	held     []heldMessage // waiting for a predecessor, by Lamport
}

type heldMessage struct {
	m     storage.RoomMessage
	prev  uint64
	until time.Time
}

// origin is what ordering needs of a live message's envelope.
type origin struct {
	author peer.ID
	prev   uint64 // Lamport of the author's previous message
}

// backlog is what one catch-up stored and has not shown yet.
type backlog struct {
	keep    int // lines it shows when it ends, at most (cfg.history)
	lines   []backlogLine
	waiting map[peer.ID]int // lines per sender
	fresh   int             // new lines it stored
	shown   int             // of those, shown
}

type backlogLine struct {
	m      storage.RoomMessage
	author peer.ID
}

func newSequencer(r *room) *sequencer {
	return &sequencer{r: r, authors: make(map[peer.ID]*authorLine)}
}

func (q *sequencer) author(p peer.ID) *authorLine {
	a := q.authors[p]
	if a == nil {
		if len(q.authors) >= maxRemembered {
			q.flushLocked() // forgetting costs at most one hold per sender
			clear(q.authors)
		}
		a = &authorLine{id: p}
		q.authors[p] = a
	}
	return a
}

// arrive stores live messages msgs (from says who sent each and what it
// follows) and shows the new ones, each sender's in order, or holds them
// until what they follow is shown.
func (q *sequencer) arrive(msgs []storage.RoomMessage, from []origin) {
	q.mu.Lock()
	defer q.mu.Unlock()
	added := q.r.keep(msgs, false)
	var fresh []int // indexes of the new messages
	for i := range msgs {
		if i < len(added) && added[i] {
			fresh = append(fresh, i)
		}
	}
	// A line whose predecessor is stored is shown: within a batch, stored
	// does not mean shown yet, so each sender's new lines are put in their
	// order (by Lamport) first, in the places they took.
	bySender := make(map[peer.ID][]int)
	for _, i := range fresh {
		bySender[from[i].author] = append(bySender[from[i].author], i)
	}
	for _, idx := range bySender {
		if len(idx) < 2 {
			continue
		}
		type line struct {
			m storage.RoomMessage
			o origin
		}
		lines := make([]line, len(idx))
		for k, i := range idx {
			lines[k] = line{msgs[i], from[i]}
		}
		slices.SortStableFunc(lines, func(a, b line) int { return cmp.Compare(a.m.Lamport, b.m.Lamport) })
		for k, i := range idx {
			msgs[i], from[i] = lines[k].m, lines[k].o
		}
	}
	for _, i := range fresh {
		q.live(msgs[i], from[i])
	}
}

// live shows m, a new live message, or holds it until the one it follows
// is shown or stored.
func (q *sequencer) live(m storage.RoomMessage, o origin) {
	if q.closed || o.author == q.r.s.h.ID() {
		// Own lines come back in the order they were sent, but a catch-up
		// may have brought the ones before first (from a member that
		// stored them before this node did).
		q.showBacklog(o.author, m.Lamport)
		q.emit(m, false)
		return
	}
	a := q.author(o.author)
	if q.ready(a, m.Lamport, o.prev, true) {
		q.show(a, m)
		return
	}
	q.hold(a, m, o.prev)
}

// ready reports whether a's line with Lamport lamport, which follows the
// one with Lamport prev, may be shown now: that one was shown, or waits in
// a catch-up's backlog (showing the line shows it first), or (lookStore)
// is stored and not held.
func (q *sequencer) ready(a *authorLine, lamport, prev uint64, lookStore bool) bool {
	switch {
	case prev == 0 || prev <= a.last:
		return true
	case q.inBacklog(a.id, prev):
		return true
	case !lookStore || slices.ContainsFunc(a.held, func(h heldMessage) bool { return h.m.Lamport == prev }):
		return false
	}
	return q.stored(a.id, prev, lamport)
}

// stored reports whether the store holds the sender's message with
// Lamport prev (the one with Lamport below is stored already and does
// not count).
func (q *sequencer) stored(author peer.ID, prev, below uint64) bool {
	got, ok, err := q.r.s.store.AuthorLamport(q.r.wire, author.String(), below)
	if err != nil {
		q.r.s.log.Warn("room order", "room", q.r.name, "err", err)
		return true // show rather than wait on a broken store
	}
	return ok && got >= prev
}

// inBacklog reports whether author's line with Lamport l waits in a
// catch-up's backlog.
func (q *sequencer) inBacklog(author peer.ID, l uint64) bool {
	for _, b := range q.backlogs {
		if b.waiting[author] > 0 && slices.ContainsFunc(b.lines, func(bl backlogLine) bool {
			return bl.author == author && bl.m.Lamport == l
		}) {
			return true
		}
	}
	return false
}

// show shows m, a live line of a, then whatever of a's held lines it
// unblocks.
func (q *sequencer) show(a *authorLine, m storage.RoomMessage) {
	q.showLine(a, m)
	q.release(a)
}

// showLine shows a's live line m, after a's earlier lines that wait in
// catch-ups' backlogs.
func (q *sequencer) showLine(a *authorLine, m storage.RoomMessage) {
	q.showBacklog(a.id, m.Lamport)
	q.emit(m, false)
	a.last = max(a.last, m.Lamport)
	a.lastSent = max(a.lastSent, m.SentAt)
}

// showBacklog shows, as history, author's lines that wait in catch-ups'
// backlogs and come before Lamport before, in their order.
func (q *sequencer) showBacklog(author peer.ID, before uint64) {
	var early []storage.RoomMessage
	for _, b := range q.backlogs {
		if b.waiting[author] == 0 {
			continue
		}
		b.lines = slices.DeleteFunc(b.lines, func(bl backlogLine) bool {
			if bl.author != author || bl.m.Lamport >= before {
				return false
			}
			early = append(early, bl.m)
			b.waiting[author]--
			b.shown++
			return true
		})
	}
	slices.SortFunc(early, func(x, y storage.RoomMessage) int { return cmp.Compare(x.Lamport, y.Lamport) })
	for _, m := range early {
		q.emit(m, true)
	}
}

func (q *sequencer) emit(m storage.RoomMessage, backfill bool) {
	q.r.s.emit(q.r.event(m, backfill))
}

// release shows a's held lines whose predecessor is shown.
func (q *sequencer) release(a *authorLine) {
	for len(a.held) > 0 && q.ready(a, a.held[0].m.Lamport, a.held[0].prev, false) {
		h := a.held[0]
		a.held = a.held[1:]
		q.showLine(a, h.m)
	}
}

func (q *sequencer) hold(a *authorLine, m storage.RoomMessage, prev uint64) {
	i, _ := slices.BinarySearchFunc(a.held, m.Lamport, func(h heldMessage, l uint64) int {
		switch {
		case h.m.Lamport < l:
			return -1
		case h.m.Lamport > l:
			return 1
		}
		return 0
	})
	a.held = slices.Insert(a.held, i, heldMessage{m: m, prev: prev, until: time.Now().Add(holdFor())})
	if len(a.held) > maxHeld {
		q.giveUp(a)
		return
	}
	q.schedule()
}

// giveUp shows all of a's held lines, in order: what they wait for is lost
// or late, and will be shown when it comes. If a line of a was shown
// before, what is missing came after it: the room fetches it (missed).
func (q *sequencer) giveUp(a *authorLine) {
	held := a.held
	a.held = nil
	if len(held) > 0 && !q.closed && a.lastSent > 0 && held[0].prev > a.last {
		q.r.missed(a.id, a.lastSent)
	}
	for _, h := range held {
		q.showLine(a, h.m)
	}
}

// startCatchUp begins a catch-up: what it stores waits in the returned
// backlog until it ends, at most keep lines of it to be shown.
func (q *sequencer) startCatchUp(keep int) *backlog {
	q.mu.Lock()
	defer q.mu.Unlock()
	b := &backlog{keep: keep, waiting: make(map[peer.ID]int)}
	q.backlogs = append(q.backlogs, b)
	return b
}

// caughtUp stores msgs, a verified page of history caught up by b's
// catch-up, and returns the new ones. They wait in b; what falls out of
// the newest b.keep waiting there is counted as hidden, and lets go the
// live lines that wait for it. (Lines shown early, before a live line
// that follows them, do not count against b.keep: they were among the
// newest when shown.)
func (q *sequencer) caughtUp(b *backlog, msgs []storage.RoomMessage) []storage.RoomMessage {
	q.mu.Lock()
	defer q.mu.Unlock()
	added := q.r.keep(msgs, true)
	var fresh []storage.RoomMessage
	for i, m := range msgs {
		if i >= len(added) || !added[i] {
			continue
		}
		fresh = append(fresh, m)
		author, _ := peer.Decode(m.Author)
		b.lines = append(b.lines, backlogLine{m: m, author: author})
		b.waiting[author]++
	}
	b.fresh += len(fresh)
	// Pages come oldest first: the oldest lines are the ones hidden.
	if drop := len(b.lines) - b.keep; drop > 0 {
		for _, bl := range b.lines[:drop] {
			b.waiting[bl.author]--
			if a := q.authors[bl.author]; a != nil {
				a.last = max(a.last, bl.m.Lamport)
			}
		}
		b.lines = append(b.lines[:0], b.lines[drop:]...)
	}
	// A held line may follow one of these.
	for _, a := range q.authors {
		if len(a.held) > 0 {
			q.release(a)
		}
	}
	return fresh
}

// endCatchUp shows what b still holds, as history, then a HistoryShown
// (when b stored anything new), and then the live lines that waited for
// it; it returns how many of b's lines were shown in all.
func (q *sequencer) endCatchUp(b *backlog) (shown int) {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.backlogs = slices.DeleteFunc(q.backlogs, func(x *backlog) bool { return x == b })
	for _, bl := range b.lines {
		q.showBacklog(bl.author, bl.m.Lamport) // other catch-ups' earlier lines first
		q.emit(bl.m, true)
		if a := q.authors[bl.author]; a != nil {
			a.last = max(a.last, bl.m.Lamport)
		}
	}
	b.shown += len(b.lines)
	b.lines = nil
	if b.fresh > 0 {
		q.r.s.emit(HistoryShown{Room: q.r.name, Shown: b.shown, Hidden: b.fresh - b.shown, CaughtUp: true})
	}
	for _, a := range q.authors {
		if len(a.held) > 0 {
			q.release(a)
		}
	}
	return b.shown
}

// schedule sets the timer to the earliest end of a hold.
func (q *sequencer) schedule() {
	var next time.Time
	for _, a := range q.authors {
		for _, h := range a.held {
			if next.IsZero() || h.until.Before(next) {
				next = h.until
			}
		}
	}
	if q.timer != nil {
		q.timer.Stop()
		q.timer = nil
	}
	if !next.IsZero() {
		q.timer = time.AfterFunc(time.Until(next), q.expire)
	}
}

// expire gives up on the senders whose hold ended.
func (q *sequencer) expire() {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.closed {
		return
	}
	now := time.Now()
	for _, a := range q.authors {
		if slices.ContainsFunc(a.held, func(h heldMessage) bool { return !h.until.After(now) }) {
			q.giveUp(a)
		}
	}
	q.schedule()
}

func (q *sequencer) flushLocked() {
	for _, a := range q.authors {
		q.giveUp(a)
	}
}

// close shows what is held and stops.
func (q *sequencer) close() {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.closed = true
	if q.timer != nil {
		q.timer.Stop()
	}
	q.flushLocked()
}

package chat

import (
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

// sequencer puts each sender's live lines of one room in the order they
// were sent before they are shown.
type sequencer struct {
	r *room

	mu      sync.Mutex
	authors map[peer.ID]*authorLine
	timer   *time.Timer
	closed  bool
}

// authorLine is what a sequencer knows of one sender.
type authorLine struct {
	last uint64        // Lamport of the newest line shown live or stored as history
	held []heldMessage // waiting for a predecessor, by Lamport
}

type heldMessage struct {
	m     storage.RoomMessage
	prev  uint64
	until time.Time
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
		a = &authorLine{}
		q.authors[p] = a
	}
	return a
}

// live shows m, a new live message whose sender's previous one has
// Lamport prev, or holds it until that one is shown or stored.
func (q *sequencer) live(m storage.RoomMessage, author peer.ID, prev uint64) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.closed || author == q.r.s.h.ID() {
		q.show(nil, m) // own lines come back in the order they were sent
		return
	}
	a := q.author(author)
	switch {
	case prev == 0 || prev <= a.last:
	case slices.ContainsFunc(a.held, func(h heldMessage) bool { return h.m.Lamport == prev }):
		q.hold(a, m, prev)
		return
	case q.stored(m.Author, prev, m.Lamport):
	default:
		q.hold(a, m, prev)
		return
	}
	q.show(a, m)
}

// stored reports whether the store holds the sender's message with
// Lamport prev (m, Lamport below, is stored already and does not count).
func (q *sequencer) stored(author string, prev, below uint64) bool {
	got, ok, err := q.r.s.store.AuthorLamport(q.r.wire, author, below)
	if err != nil {
		q.r.s.log.Warn("room order", "room", q.r.name, "err", err)
		return true // show rather than wait on a broken store
	}
	return ok && got >= prev
}

// history notes a sender's message stored as history (caught up): it may
// be what a held line waits for.
func (q *sequencer) history(author peer.ID, lamport uint64) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if a := q.authors[author]; a != nil {
		a.last = max(a.last, lamport)
		q.release(a)
	}
}

// show emits m and whatever of a's held lines it unblocks.
func (q *sequencer) show(a *authorLine, m storage.RoomMessage) {
	q.r.s.emit(q.r.event(m, false))
	if a != nil {
		a.last = max(a.last, m.Lamport)
		q.release(a)
	}
}

// release shows a's held lines whose predecessor is shown.
func (q *sequencer) release(a *authorLine) {
	for len(a.held) > 0 && a.held[0].prev <= a.last {
		h := a.held[0]
		a.held = a.held[1:]
		q.r.s.emit(q.r.event(h.m, false))
		a.last = max(a.last, h.m.Lamport)
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
// or late, and will be shown when it comes.
func (q *sequencer) giveUp(a *authorLine) {
	for _, h := range a.held {
		q.r.s.emit(q.r.event(h.m, false))
		a.last = max(a.last, h.m.Lamport)
	}
	a.held = nil
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

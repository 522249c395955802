package tui

import (
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/parley-chat/parley/chat"
)

// Bounds of one conversation's buffer: beyond maxEntries the oldest
// trimEntries go (they can be loaded again from the store by scrolling
// up).
const (
	maxEntries  = 5000
	trimEntries = 500
)

type convKind int

const (
	roomConv convKind = iota
	dmConv
	sysConv // where the UI's own lines go while no room or DM is open
)

// conv is one conversation: a room or the DMs with one peer.
type conv struct {
	kind convKind
	loc  *time.Location // of day separators
	name string         // the room; for a DM, the peer ID
	peer peer.ID        // the DM peer
	nick string         // the DM peer's last known nick

	entries []*entry
	byID    map[string]*entry // message IDs shown: one dedup point for live, replayed and paged history

	unread  int  // messages from others that arrived while another conversation was open
	mention bool // one of them names this node's nick (or is a DM)

	scroll int // rows hidden below the view; 0 follows the newest line
	unseen int // lines that arrived below the view while it was scrolled up

	loading   bool // a page of older history is being read
	exhausted bool // the store has nothing older
}

func newConv(kind convKind, name string, loc *time.Location) *conv {
	return &conv{kind: kind, name: name, loc: loc, byID: make(map[string]*entry)}
}

// key names a conversation across list changes.
func (c *conv) key() string {
	switch c.kind {
	case roomConv:
		return "#" + c.name
	case dmConv:
		return "@" + c.name
	}
	return ""
}

// title is the conversation's name in the list and the header.
func (c *conv) title() string {
	switch c.kind {
	case roomConv:
		return "#" + c.name
	case dmConv:
		if c.nick != "" {
			return clean(c.nick)
		}
		return shortID(c.peer)
	}
	return "parley"
}

type entryKind int

const (
	msgEntry  entryKind = iota // a room message or a DM, received or own
	infoEntry                  // the UI's own line: a command's output, a notice
	dimEntry                   // presence: joined, left
	errEntry                   // something that failed
)

// dmState follows one of this node's DMs.
type dmState int

const (
	dmNone      dmState = iota
	dmSending           // handed to the outbox
	dmQueued            // not delivered yet: kept and retried
	dmDelivered         // acknowledged by the receiver
)

// entry is one line of a conversation (maybe several rows on screen).
type entry struct {
	kind     entryKind
	at       time.Time
	id       string
	from     peer.ID
	nick     string
	text     string
	lamport  uint64
	backfill bool // history: stored, or caught up from other members
	own      bool
	mention  bool
	state    dmState
	detail   string // why a DM is queued

	sep bool // a day separator row comes first

	w    int      // width rows were rendered for
	rows []string // rendered rows, each exactly w cells wide
}

func (e *entry) invalidate() { e.rows = nil }

// before orders history as chat does: sent-at time, Lamport, ID.
func (e *entry) before(o *entry) bool {
	if !e.at.Equal(o.at) {
		return e.at.Before(o.at)
	}
	if e.lamport != o.lamport {
		return e.lamport < o.lamport
	}
	return e.id < o.id
}

func messageEntry(m chat.Message, self peer.ID, nick string) *entry {
	return &entry{kind: msgEntry, at: m.SentAt, id: m.ID, from: m.From, nick: m.Nick, text: m.Text,
		lamport: m.Lamport, backfill: m.Backfill, own: m.From == self,
		mention: m.From != self && mentions(m.Text, nick)}
}

// add puts e in the conversation and returns whether it is new. A live
// line goes last; history goes where its (sent-at, Lamport, ID) puts it.
// rows tells how many rows an entry takes, to keep a scrolled-up view
// where it is.
func (c *conv) add(e *entry, rows func(*entry) int) bool {
	if e.id != "" {
		if _, dup := c.byID[e.id]; dup {
			return false
		}
		c.byID[e.id] = e
	}
	i := len(c.entries)
	if e.backfill {
		for i > 0 && e.before(c.entries[i-1]) {
			i--
		}
	}
	c.entries = append(c.entries, nil)
	copy(c.entries[i+1:], c.entries[i:])
	c.entries[i] = e
	c.fixSep(i)
	c.fixSep(i + 1)
	if c.scroll > 0 {
		below := 0
		for _, o := range c.entries[i+1:] {
			below += rows(o)
			if below >= c.scroll {
				break
			}
		}
		if below < c.scroll {
			// Below the view: keep the view where it is.
			c.scroll += rows(e)
			c.unseen++
		}
	}
	c.trim()
	return true
}

// prepend puts a page of older history (oldest first) before everything.
func (c *conv) prepend(msgs []*entry) int {
	fresh := make([]*entry, 0, len(msgs))
	for _, e := range msgs {
		if _, dup := c.byID[e.id]; dup {
			continue
		}
		c.byID[e.id] = e
		fresh = append(fresh, e)
	}
	if len(fresh) == 0 {
		return 0
	}
	c.entries = append(fresh, c.entries...)
	for i := 0; i <= len(fresh); i++ {
		c.fixSep(i)
	}
	return len(fresh)
}

// fixSep decides whether entry i starts a new day.
func (c *conv) fixSep(i int) {
	if i < 0 || i >= len(c.entries) {
		return
	}
	e := c.entries[i]
	sep := i == 0 || !sameDay(c.entries[i-1].at, e.at, c.loc)
	if sep != e.sep {
		e.sep = sep
		e.invalidate()
	}
}

func sameDay(a, b time.Time, loc *time.Location) bool {
	a, b = a.In(loc), b.In(loc)
	ay, am, ad := a.Date()
	by, bm, bd := b.Date()
	return ay == by && am == bm && ad == bd
}

// trim drops the oldest lines of a long buffer; scrolling up loads them
// again from the store.
func (c *conv) trim() {
	if len(c.entries) <= maxEntries+trimEntries {
		return
	}
	for _, e := range c.entries[:trimEntries] {
		if e.id != "" {
			delete(c.byID, e.id)
		}
	}
	c.entries = append([]*entry(nil), c.entries[trimEntries:]...)
	c.fixSep(0)
	c.exhausted = false
}

// oldestID is the ID of the oldest message shown: history pages load what
// comes before it.
func (c *conv) oldestID() string {
	for _, e := range c.entries {
		if e.kind == msgEntry && e.id != "" {
			return e.id
		}
	}
	return ""
}

// find returns the entry of message id.
func (c *conv) find(id string) *entry { return c.byID[id] }

// totalRows is the height of the whole buffer at the current width.
func (c *conv) totalRows(rows func(*entry) int) int {
	n := 0
	for _, e := range c.entries {
		n += rows(e)
	}
	return n
}

package chat

import (
	"context"
	"log/slog"
	"maps"
	"slices"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/parley-chat/parley/chat/content"
	"github.com/parley-chat/parley/chat/storage"
)

// roomTable holds the joined rooms. Its lock is never held while calling
// into pubsub: callers take a room out, then act on it.
type roomTable struct {
	mu sync.Mutex
	m  map[string]*room
}

func (t *roomTable) get(name string) (*room, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	r, ok := t.m[name]
	return r, ok
}

// add stores r unless a room of that name is there already.
func (t *roomTable) add(r *room) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	if _, ok := t.m[r.name]; ok {
		return false
	}
	t.m[r.name] = r
	return true
}

// byWire finds a joined room by its wire name (a private room's derived
// one), as the history protocol names it.
func (t *roomTable) byWire(wire string) (*room, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, r := range t.m {
		if r.wire == wire {
			return r, true
		}
	}
	return nil, false
}

func (t *roomTable) has(name string) bool {
	_, ok := t.get(name)
	return ok
}

func (t *roomTable) remove(name string) (*room, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	r, ok := t.m[name]
	delete(t.m, name)
	return r, ok
}

func (t *roomTable) list() []*room {
	t.mu.Lock()
	defer t.mu.Unlock()
	return slices.Collect(maps.Values(t.m))
}

func (t *roomTable) names() []string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return slices.Sorted(maps.Keys(t.m))
}

func (t *roomTable) takeAll() []*room {
	t.mu.Lock()
	defer t.mu.Unlock()
	rs := slices.Collect(maps.Values(t.m))
	clear(t.m)
	return rs
}

// nickBook maps peers to the nicks they announced, this node's own
// included, with when each was last seen. It is kept in the store, so
// that /dm NICK works after a restart.
type nickBook struct {
	self peer.ID
	st   storage.Store
	log  *slog.Logger

	mu sync.Mutex
	m  map[peer.ID]nickEntry
}

type nickEntry struct {
	nick  string
	said  time.Time // the author's send time of what set nick (zero: loaded, or own)
	seen  time.Time // last sighting (a message, a presence, a DM)
	saved time.Time // last sighting written to the store
}

// Known nicks are remembered for knownPeersFor, and a peer's last
// sighting is written at most every saveSeenEvery (a nick change at once).
const (
	knownPeersFor = 30 * 24 * time.Hour
	saveSeenEvery = time.Minute
)

// newNickBook loads the peers seen within knownPeersFor. nick is this
// node's nick; "" keeps the one it had last time (or DefaultNick).
func newNickBook(self peer.ID, nick string, st storage.Store, log *slog.Logger) (*nickBook, error) {
	b := &nickBook{self: self, st: st, log: log, m: make(map[peer.ID]nickEntry)}
	known, err := st.KnownPeers(time.Now().Add(-knownPeersFor))
	if err != nil {
		return nil, err
	}
	for _, k := range known {
		p, err := peer.Decode(k.ID)
		if err != nil {
			continue
		}
		b.m[p] = nickEntry{nick: content.PeerNick(k.Nick), seen: k.LastSeen, saved: k.LastSeen}
	}
	switch {
	case nick != "":
		b.setOwn(nick)
	case b.m[self].nick == "":
		b.m[self] = nickEntry{nick: DefaultNick(self)}
	}
	return b, nil
}

func (b *nickBook) own() string { return b.get(b.self) }

// setOwn changes this node's nick and keeps it for the next start.
func (b *nickBook) setOwn(nick string) { b.seen(b.self, nick, time.Now(), time.Time{}) }

func (b *nickBook) get(p peer.ID) string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.m[p].nick
}

// lastSeen says when p was last seen, zero if never.
func (b *nickBook) lastSeen(p peer.ID) time.Time {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.m[p].seen
}

// seen notes that p used nick at time at (now for what arrives live, the
// send time for history) in something p sent at said.
func (b *nickBook) seen(p peer.ID, nick string, at, said time.Time) []nickChange {
	return b.seenAll([]sighting{{p, nick, at, said}})
}

// sighting is a peer seen under a nick at a time, in something it sent at
// said (its own clock; zero if unknown).
type sighting struct {
	p    peer.ID
	nick string
	at   time.Time
	said time.Time
}

// nickChange is a peer seen under a new nick.
type nickChange struct {
	p        peer.ID
	old, new string
}

// seenAll is seen for many peers at once: what it has to keep is written
// in one transaction (a roster page names hundreds of members). It
// returns the nicks that changed.
//
// A nick is versioned by its author's send time, never by arrival: what p
// sent before its newest known nick (a presence overtaken by a later one
// on another path, a DM from its outbox, a caught-up message) never
// brings an old nick back. Only p's own times are compared with each
// other, so clocks need not agree.
func (b *nickBook) seenAll(all []sighting) []nickChange {
	var save []storage.KnownPeer
	var changes []nickChange
	b.mu.Lock()
	for _, s := range all {
		e, ok := b.m[s.p]
		// Sent before the nick we know: not news. With no send time on
		// either side (loaded from the store, own), arrival decides.
		stale := ok && s.at.Before(e.seen)
		if ok && !s.said.IsZero() && !e.said.IsZero() {
			stale = s.said.Before(e.said)
		}
		renamed := !stale && (!ok || e.nick != s.nick)
		if !renamed && ok && !s.at.After(e.seen) {
			continue
		}
		if renamed {
			if ok && e.nick != "" && s.p != b.self {
				changes = append(changes, nickChange{s.p, e.nick, s.nick})
			}
			e.nick, e.said = s.nick, s.said
		} else if s.said.After(e.said) {
			e.said = s.said
		}
		if renamed || s.at.Sub(e.saved) >= saveSeenEvery {
			e.saved = s.at
			save = append(save, storage.KnownPeer{ID: s.p.String(), Nick: e.nick, LastSeen: s.at})
		}
		if s.at.After(e.seen) {
			e.seen = s.at
		}
		b.m[s.p] = e
	}
	b.mu.Unlock()
	if len(save) == 0 {
		return changes // most batches: nobody new, no nick changed
	}
	if err := b.st.SavePeers(save...); err != nil {
		b.log.Warn("remember nicks", "peers", len(save), "err", err)
	}
	return changes
}

// known lists the other peers seen since, with their nicks.
func (b *nickBook) known(since time.Time) map[peer.ID]nickEntry {
	b.mu.Lock()
	defer b.mu.Unlock()
	out := make(map[peer.ID]nickEntry)
	for p, e := range b.m {
		if p != b.self && !e.seen.Before(since) {
			out[p] = e
		}
	}
	return out
}

// lookup lists the other peers using nick.
func (b *nickBook) lookup(nick string) []peer.ID {
	b.mu.Lock()
	defer b.mu.Unlock()
	var out []peer.ID
	for id, e := range b.m {
		if e.nick == nick && id != b.self {
			out = append(out, id)
		}
	}
	return out
}

// activity counts work under way and lets a caller wait until there is
// none. Unlike a sync.WaitGroup, work may start while someone waits.
type activity struct {
	mu   sync.Mutex
	n    int
	idle chan struct{} // closed when n drops to 0
}

func (a *activity) add() {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.n == 0 {
		a.idle = make(chan struct{})
	}
	a.n++
}

func (a *activity) done() {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.n--
	if a.n == 0 {
		close(a.idle)
	}
}

// wait returns once nothing is under way, or with ctx's error.
func (a *activity) wait(ctx context.Context) error {
	a.mu.Lock()
	if a.n == 0 {
		a.mu.Unlock()
		return nil
	}
	idle := a.idle
	a.mu.Unlock()
	select {
	case <-idle:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

package chat

import (
	"context"
	"maps"
	"slices"
	"sync"

	"github.com/libp2p/go-libp2p/core/peer"
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
// included.
type nickBook struct {
	self peer.ID

	mu sync.Mutex
	m  map[peer.ID]string
}

func newNickBook(self peer.ID, nick string) *nickBook {
	return &nickBook{self: self, m: map[peer.ID]string{self: nick}}
}

func (b *nickBook) own() string { return b.get(b.self) }

func (b *nickBook) setOwn(nick string) { b.set(b.self, nick) }

func (b *nickBook) get(p peer.ID) string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.m[p]
}

func (b *nickBook) set(p peer.ID, nick string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.m[p] = nick
}

// lookup lists the other peers using nick.
func (b *nickBook) lookup(nick string) []peer.ID {
	b.mu.Lock()
	defer b.mu.Unlock()
	var out []peer.ID
	for id, n := range b.m {
		if n == nick && id != b.self {
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

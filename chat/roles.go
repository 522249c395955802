package chat

import (
	"context"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/parley-chat/parley/node"
)

// Roles of a peer: a person (a chat node), or a relay that carries rooms
// (`parley relay`), which says so in its identify agent version.
const (
	RolePerson = ""
	RoleRelay  = "relay"
)

// identifyWait bounds how long a room member's role is waited for when
// its identify exchange has not finished yet.
const identifyWait = 2 * time.Second

// roleBook knows each peer's role from identify, and lets a caller wait
// for a peer being identified. The connection watcher tells it when an
// identify exchange ended.
type roleBook struct {
	h host.Host

	mu      sync.Mutex
	waiters map[peer.ID][]chan struct{}
}

func newRoleBook(h host.Host) *roleBook {
	return &roleBook{h: h, waiters: make(map[peer.ID][]chan struct{})}
}

// known returns p's role, and false while p has not been identified.
func (b *roleBook) known(p peer.ID) (string, bool) {
	v, err := b.h.Peerstore().Get(p, "AgentVersion")
	if err != nil {
		return RolePerson, false
	}
	if agent, _ := v.(string); node.IsRelayAgent(agent) {
		return RoleRelay, true
	}
	return RolePerson, true
}

// get returns p's role, waiting up to identifyWait for identify.
func (b *roleBook) get(ctx context.Context, p peer.ID) string {
	if role, ok := b.known(p); ok {
		return role
	}
	ch := make(chan struct{})
	b.mu.Lock()
	b.waiters[p] = append(b.waiters[p], ch)
	b.mu.Unlock()
	defer b.forget(p, ch)
	if role, ok := b.known(p); ok { // identified meanwhile
		return role
	}
	t := time.NewTimer(identifyWait)
	defer t.Stop()
	select {
	case <-ch:
	case <-t.C:
	case <-ctx.Done():
	}
	role, _ := b.known(p)
	return role
}

func (b *roleBook) forget(p peer.ID, ch chan struct{}) {
	b.mu.Lock()
	defer b.mu.Unlock()
	ws := b.waiters[p]
	for i, w := range ws {
		if w == ch {
			ws = append(ws[:i], ws[i+1:]...)
			break
		}
	}
	if len(ws) == 0 {
		delete(b.waiters, p)
	} else {
		b.waiters[p] = ws
	}
}

// identified wakes whoever waits for p's role.
func (b *roleBook) identified(p peer.ID) {
	b.mu.Lock()
	ws := b.waiters[p]
	delete(b.waiters, p)
	b.mu.Unlock()
	for _, w := range ws {
		close(w)
	}
}

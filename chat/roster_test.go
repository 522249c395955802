package chat_test

import (
	"context"
	"crypto/rand"
	"maps"
	"sync"
	"testing"

	"github.com/libp2p/go-libp2p/core/control"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"

	"github.com/parley-chat/parley/chat"
	"github.com/parley-chat/parley/internal/testutil"
	"github.com/parley-chat/parley/node"
)

// A newcomer learns who is in the room, by nick, from the member it
// meets, before anyone speaks: no member answers it room-wide (the only
// presence published after it joined is its own).
func TestNewcomerLearnsWhoIsHereFromItsNeighbour(t *testing.T) {
	presences := &presenceCounter{ids: make(map[string]peer.ID)}
	hooks := chat.Hooks{PubSubTracer: presences}
	var members []*testutil.Chat
	for _, nick := range []string{"alice", "bob", "carol"} {
		m := testutil.NewChat(t, testutil.NewNode(t), chat.WithNick(nick), chat.WithHooks(hooks))
		if len(members) > 0 {
			if err := m.Node.Host().Connect(context.Background(), testutil.Info(members[len(members)-1].Node)); err != nil {
				t.Fatal(err)
			}
		}
		if err := m.Join("lobby"); err != nil {
			t.Fatal(err)
		}
		members = append(members, m)
	}
	alice, carol := members[0], members[2]
	testutil.Eventually(t, "alice and carol (two hops apart) know each other by nick, every join announced", func() bool {
		_, err := carol.ResolvePeer("alice")
		_, err2 := alice.ResolvePeer("carol")
		return err == nil && err2 == nil && len(presences.authors()) == 3
	})
	before := presences.authors()

	dave := testutil.NewChat(t, testutil.NewNode(t), chat.WithNick("dave"), chat.WithHooks(hooks))
	if err := dave.Node.Host().Connect(context.Background(), testutil.Info(carol.Node)); err != nil {
		t.Fatal(err)
	}
	if err := dave.Join("lobby"); err != nil {
		t.Fatal(err)
	}
	for _, nick := range []string{"alice", "bob", "carol"} {
		testutil.Eventually(t, "dave knows "+nick+" by nick", func() bool {
			_, err := dave.ResolvePeer(nick)
			return err == nil
		})
	}
	testutil.Eventually(t, "alice knows dave (three hops away) by nick", func() bool {
		p, err := alice.ResolvePeer("dave")
		return err == nil && p == dave.ID()
	})
	after := presences.authors()
	if after[dave.ID()] == 0 {
		t.Errorf("dave's presence was not seen on the wire")
	}
	delete(after, dave.ID())
	if !maps.Equal(before, after) {
		t.Errorf("members published presences after dave joined: %v before, %v after (dave's aside)", before, after)
	}
}

// links is a connection gater that lets only the peers of listed links
// connect (the DHT would otherwise connect everyone on loopback).
type links struct {
	self peer.ID
	mu   *sync.Mutex
	set  map[[2]peer.ID]bool
}

func (g links) ok(p peer.ID) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.set[[2]peer.ID{g.self, p}] || g.set[[2]peer.ID{p, g.self}]
}
func (g links) InterceptPeerDial(p peer.ID) bool                 { return g.ok(p) }
func (g links) InterceptAddrDial(p peer.ID, _ ma.Multiaddr) bool { return g.ok(p) }
func (g links) InterceptAccept(network.ConnMultiaddrs) bool      { return true }
func (g links) InterceptSecured(_ network.Direction, p peer.ID, _ network.ConnMultiaddrs) bool {
	return g.ok(p)
}
func (g links) InterceptUpgraded(network.Conn) (bool, control.DisconnectReason) { return true, 0 }

// Two groups that formed apart (a partition healing, a room forming at
// once) learn each other's nicks once one link joins them, also members
// two links away from it, without anyone speaking or announcing again.
func TestRostersSpreadWhenGroupsMeet(t *testing.T) {
	var mu sync.Mutex
	set := make(map[[2]peer.ID]bool)
	nicks := []string{"a1", "a2", "a3", "b1", "b2", "b3"}
	members := make([]*testutil.Chat, len(nicks))
	for i, nick := range nicks {
		key, _, err := crypto.GenerateEd25519Key(rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		id, _ := peer.IDFromPrivateKey(key)
		n := testutil.NewNode(t, node.WithIdentity(key), node.WithConnectionGater(links{id, &mu, set}))
		members[i] = testutil.NewChat(t, n, chat.WithNick(nick))
	}
	link := func(a, b *testutil.Chat) {
		t.Helper()
		mu.Lock()
		set[[2]peer.ID{a.ID(), b.ID()}] = true
		mu.Unlock()
		if err := a.Node.Host().Connect(context.Background(), testutil.Info(b.Node)); err != nil {
			t.Fatal(err)
		}
	}
	a1, a2, a3, b1, b2, b3 := members[0], members[1], members[2], members[3], members[4], members[5]
	link(a1, a2)
	link(a2, a3)
	link(b1, b2)
	link(b2, b3)
	for _, m := range members {
		if err := m.Join("lobby"); err != nil {
			t.Fatal(err)
		}
	}
	testutil.Eventually(t, "a1 and b3 know their groups by nick", func() bool {
		_, err := a1.ResolvePeer("a3")
		_, err2 := b3.ResolvePeer("b1")
		return err == nil && err2 == nil
	})
	if _, err := a1.ResolvePeer("b3"); err == nil {
		t.Fatal("a1 knows b3 before the groups met")
	}
	link(a3, b1)
	testutil.Eventually(t, "a1 and b3, two links from the new one, know each other by nick", func() bool {
		p, err := a1.ResolvePeer("b3")
		q, err2 := b3.ResolvePeer("a1")
		return err == nil && err2 == nil && p == b3.ID() && q == a1.ID()
	})
	if got := len(a2.Node.Host().Network().Peers()); got != 2 {
		t.Errorf("a2 has %d connections, want its 2 links", got)
	}
}

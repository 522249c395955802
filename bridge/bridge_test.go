package bridge_test

import (
	"context"
	"crypto/rand"
	"slices"
	"testing"

	"github.com/libp2p/go-libp2p/core/control"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"
	"go.uber.org/goleak"

	"github.com/parley-chat/parley/bridge"
	"github.com/parley-chat/parley/chat"
	"github.com/parley-chat/parley/internal/testutil"
	"github.com/parley-chat/parley/node"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m, testutil.LeakIgnores()...)
}

// keepApart refuses connections between two peers, as NATs would.
type keepApart struct{ a, b *peer.ID }

func (g keepApart) blocked(p peer.ID) bool                                          { return p == *g.a || p == *g.b }
func (g keepApart) InterceptPeerDial(p peer.ID) bool                                { return !g.blocked(p) }
func (g keepApart) InterceptAddrDial(p peer.ID, _ ma.Multiaddr) bool                { return !g.blocked(p) }
func (g keepApart) InterceptAccept(network.ConnMultiaddrs) bool                     { return true }
func (g keepApart) InterceptUpgraded(network.Conn) (bool, control.DisconnectReason) { return true, 0 }
func (g keepApart) InterceptSecured(_ network.Direction, p peer.ID, _ network.ConnMultiaddrs) bool {
	return !g.blocked(p)
}

func newKey(t *testing.T) (crypto.PrivKey, peer.ID) {
	t.Helper()
	key, _, err := crypto.GenerateEd25519Key(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	id, _ := peer.IDFromPrivateKey(key)
	return key, id
}

// Two members that can only reach the bridge (as behind two NATs) chat
// through it, both ways, from the moment the bridge knows their room.
func TestBridgeCarriesRooms(t *testing.T) {
	b := testutil.NewBridge(t, bridge.WithRooms("lobby"))
	aliceKey, alicePeer := newKey(t)
	bobKey, bobPeer := newKey(t)
	gate := keepApart{&alicePeer, &bobPeer}
	boot := node.WithBootstrap(peer.AddrInfo{ID: b.Node().ID(), Addrs: b.Node().Host().Addrs()})
	aliceNode := testutil.NewNode(t, boot, node.WithConnectionGater(gate), node.WithIdentity(aliceKey))
	bobNode := testutil.NewNode(t, boot, node.WithConnectionGater(gate), node.WithIdentity(bobKey))
	alice := testutil.NewChat(t, aliceNode, chat.WithNick("alice"), chat.WithDiscovery(aliceNode))
	bob := testutil.NewChat(t, bobNode, chat.WithNick("bob"), chat.WithDiscovery(bobNode))
	for _, c := range []*testutil.Chat{alice, bob} {
		for _, room := range []string{"lobby", "secret"} {
			if err := c.Join(room); err != nil {
				t.Fatal(err)
			}
		}
		c.WaitPeerJoined(t, "lobby", b.Node().ID())
	}
	// The bridge may announce the room to bob (it carries it for alice)
	// before bob's own subscription reaches it: wait until it knows both.
	testutil.Eventually(t, "bridge knows both members", func() bool {
		m := b.Members("lobby")
		return slices.Contains(m, alice.ID()) && slices.Contains(m, bob.ID())
	})
	if _, err := alice.Send(context.Background(), "secret", "not for the bridge"); err != nil {
		t.Fatal(err)
	}
	if _, err := alice.Send(context.Background(), "lobby", "hi bob"); err != nil {
		t.Fatal(err)
	}
	if m := bob.WaitMessage(t, "lobby", "hi bob"); m.From != alice.ID() {
		t.Errorf("from = %s, want alice %s", m.From, alice.ID())
	}
	if _, err := bob.Send(context.Background(), "lobby", "hi alice"); err != nil {
		t.Fatal(err)
	}
	alice.WaitMessage(t, "lobby", "hi alice")
	if got := b.Rooms(); !slices.Equal(got, []string{"lobby"}) {
		t.Errorf("bridge carries %v, want [lobby] (--rooms lobby)", got)
	}
	for _, ev := range bob.Events() {
		if m, ok := ev.(chat.Message); ok && m.Room == "secret" {
			t.Errorf("a room outside --rooms was carried: %+v", m)
		}
	}
	if bobNode.Host().Network().Connectedness(alicePeer) == network.Connected {
		t.Fatal("alice and bob are connected directly: the test proves nothing")
	}
}

// A member who joins after another, both reachable only through the
// relay, learns the earlier one's nick from the relay's roster (its
// presence went out once, before the newcomer was there), so /dm alice
// works before alice says anything.
func TestNewcomerLearnsWhoIsHereFromTheRelay(t *testing.T) {
	b := testutil.NewBridge(t, bridge.WithRooms("lobby"))
	aliceKey, alicePeer := newKey(t)
	bobKey, bobPeer := newKey(t)
	gate := keepApart{&alicePeer, &bobPeer}
	boot := node.WithBootstrap(peer.AddrInfo{ID: b.Node().ID(), Addrs: b.Node().Host().Addrs()})
	aliceNode := testutil.NewNode(t, boot, node.WithConnectionGater(gate), node.WithIdentity(aliceKey))
	alice := testutil.NewChat(t, aliceNode, chat.WithNick("alice"), chat.WithDiscovery(aliceNode))
	if err := alice.Join("lobby"); err != nil {
		t.Fatal(err)
	}
	alice.WaitPeerJoined(t, "lobby", b.Node().ID())
	testutil.Eventually(t, "the relay holds alice's presence", func() bool {
		return b.RosterLen("lobby") == 1
	})
	bobNode := testutil.NewNode(t, boot, node.WithConnectionGater(gate), node.WithIdentity(bobKey))
	bob := testutil.NewChat(t, bobNode, chat.WithNick("bob"), chat.WithDiscovery(bobNode))
	if err := bob.Join("lobby"); err != nil {
		t.Fatal(err)
	}
	testutil.Eventually(t, "bob knows alice by nick", func() bool {
		p, err := bob.ResolvePeer("alice")
		return err == nil && p == alicePeer
	})
	testutil.Eventually(t, "alice knows bob by nick", func() bool {
		p, err := alice.ResolvePeer("bob")
		return err == nil && p == bobPeer
	})
	if bobNode.Host().Network().Connectedness(alicePeer) == network.Connected {
		t.Fatal("alice and bob are connected directly: the test proves nothing")
	}
}

// The relay says it is one (its identify agent version), and members show
// it as the relay that carries their rooms, not as a nameless member.
func TestRelayIsShownAsTheRelay(t *testing.T) {
	b := testutil.NewBridge(t)
	aliceNode := testutil.NewNode(t, node.WithBootstrap(peer.AddrInfo{ID: b.Node().ID(), Addrs: b.Node().Host().Addrs()}))
	alice := testutil.NewChat(t, aliceNode, chat.WithNick("alice"))
	if err := alice.Join("lobby"); err != nil {
		t.Fatal(err)
	}
	alice.WaitPeerJoined(t, "lobby", b.Node().ID())
	alice.WaitFor(t, "connection to the relay", func(ev chat.Event) bool {
		c, ok := ev.(chat.Connection)
		return ok && c.Peer == b.Node().ID()
	})
	for _, ev := range alice.Events() {
		switch e := ev.(type) {
		case chat.PeerJoined:
			if e.Peer == b.Node().ID() && e.Role != chat.RoleRelay {
				t.Errorf("the relay joined #%s as role %q, want %q", e.Room, e.Role, chat.RoleRelay)
			}
		case chat.Connection:
			if e.Peer == b.Node().ID() && e.Role != chat.RoleRelay {
				t.Errorf("connection to the relay with role %q, want %q", e.Role, chat.RoleRelay)
			}
		}
	}
	found := false
	for _, p := range alice.Peers() {
		if p.ID == b.Node().ID() {
			found = true
			if p.Role != chat.RoleRelay {
				t.Errorf("/peers lists the relay with role %q, want %q", p.Role, chat.RoleRelay)
			}
		}
	}
	if !found {
		t.Error("/peers does not list the relay")
	}
}

package chat_test

import (
	"context"
	"crypto/rand"
	"testing"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/parley-chat/parley/chat"
	"github.com/parley-chat/parley/internal/store"
	"github.com/parley-chat/parley/internal/testutil"
	"github.com/parley-chat/parley/node"
)

// openStore opens a store on disk, closed when the test ends.
func openStore(t *testing.T) *store.Store {
	t.Helper()
	st, err := store.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

// Nicks are kept across restarts, this node's own too: right after a
// restart, /dm bob reaches the bob the screen showed before, though bob is
// offline.
func TestNicksSurviveRestart(t *testing.T) {
	st := openStore(t)
	key, _, err := crypto.GenerateEd25519Key(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	aliceNode := testutil.NewNode(t, node.WithIdentity(key))
	alice := testutil.NewChat(t, aliceNode, chat.WithNick("alice"), chat.WithStore(st))
	bob := testutil.NewChat(t, testutil.NewNode(t), chat.WithNick("bob"))
	if err := bob.Node.Host().Connect(context.Background(), testutil.Info(aliceNode)); err != nil {
		t.Fatal(err)
	}
	for _, c := range []*testutil.Chat{alice, bob} {
		if err := c.Join("lobby"); err != nil {
			t.Fatal(err)
		}
	}
	alice.WaitPeerJoined(t, "lobby", bob.ID())
	if _, err := bob.Send(context.Background(), "lobby", "hi"); err != nil {
		t.Fatal(err)
	}
	alice.WaitMessage(t, "lobby", "hi")
	if err := alice.SetNick("alicia"); err != nil {
		t.Fatal(err)
	}
	bobID := bob.ID()
	bob.Close()
	alice.Close()
	aliceNode.Close()

	again := testutil.NewChat(t, testutil.NewNode(t, node.WithIdentity(key)), chat.WithStore(st))
	if got := again.Nick(); got != "alicia" {
		t.Errorf("nick after a restart without --nick: %q, want alicia (the last one)", got)
	}
	if got, err := again.ResolvePeer("bob"); err != nil || got != bobID {
		t.Errorf("after a restart, bob resolves to %v, %v; want %s", got, err, bobID)
	}
}

// findPeer returns p's entry in c's /peers.
func findPeer(c *testutil.Chat, p peer.ID) (chat.PeerInfo, bool) {
	for _, pi := range c.Peers() {
		if pi.ID == p {
			return pi, true
		}
	}
	return chat.PeerInfo{}, false
}

// /peers tells who is in the room now from who was seen recently: a peer
// that left is no room member, also after a restart that caught up its
// old messages, and its path says "not connected".
func TestPeersInTheRoomNowAndSeenRecently(t *testing.T) {
	st := openStore(t)
	key, _, err := crypto.GenerateEd25519Key(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	aliceNode := testutil.NewNode(t, node.WithIdentity(key))
	alice := testutil.NewChat(t, aliceNode, chat.WithNick("alice"), chat.WithStore(st))
	bob := testutil.NewChat(t, testutil.NewNode(t), chat.WithNick("bob"))
	carolNode := testutil.NewNode(t)
	carol := testutil.NewChat(t, carolNode, chat.WithNick("carol"))
	for _, c := range []*testutil.Chat{bob, carol} {
		if err := c.Node.Host().Connect(context.Background(), testutil.Info(aliceNode)); err != nil {
			t.Fatal(err)
		}
	}
	for _, c := range []*testutil.Chat{alice, bob, carol} {
		if err := c.Join("lobby"); err != nil {
			t.Fatal(err)
		}
	}
	alice.WaitPeerJoined(t, "lobby", bob.ID())
	alice.WaitPeerJoined(t, "lobby", carol.ID())
	if _, err := carol.Send(context.Background(), "lobby", "hi from carol"); err != nil {
		t.Fatal(err)
	}
	alice.WaitMessage(t, "lobby", "hi from carol")
	carolID := carol.ID()
	carol.Close()
	carolNode.Close()
	alice.WaitFor(t, "carol left", func(ev chat.Event) bool {
		l, ok := ev.(chat.PeerLeft)
		return ok && l.Peer == carolID
	})
	check := func(c *testutil.Chat, when string) {
		t.Helper()
		testutil.Eventually(t, "carol not connected "+when, func() bool {
			p, ok := findPeer(c, carolID)
			return ok && p.Path == chat.PathNone
		})
		p, _ := findPeer(c, carolID)
		if len(p.Rooms) != 0 || p.Nick != "carol" || p.LastSeen.IsZero() {
			t.Errorf("%s: carol listed as %+v, want no rooms, nick carol and when she was last seen", when, p)
		}
		if b, ok := findPeer(c, bob.ID()); !ok || len(b.Rooms) != 1 || b.Path != chat.PathDirect {
			t.Errorf("%s: bob listed as %+v, want in lobby, direct", when, b)
		}
	}
	check(alice, "after she left")

	alice.Close()
	aliceNode.Close()
	if _, err := bob.Send(context.Background(), "lobby", "while alice was away"); err != nil {
		t.Fatal(err)
	}
	againNode := testutil.NewNode(t, node.WithIdentity(key))
	again := testutil.NewChat(t, againNode, chat.WithStore(st))
	if err := bob.Node.Host().Connect(context.Background(), testutil.Info(againNode)); err != nil {
		t.Fatal(err)
	}
	if err := again.Join("lobby"); err != nil {
		t.Fatal(err)
	}
	// Catching up from bob brings carol's message again with what alice
	// missed: history is no sign of carol being here.
	if m := again.WaitMessage(t, "lobby", "while alice was away"); !m.Backfill {
		t.Errorf("missed message not marked as history: %+v", m)
	}
	check(again, "after a restart")
}

// A nick change is announced in every room the two share: the others see
// who is now whom instead of a different name appearing silently.
func TestNickChangeAnnouncedInEachSharedRoom(t *testing.T) {
	alice, bob := pair(t)
	for _, c := range []*testutil.Chat{alice, bob} {
		for _, room := range []string{"lobby", "dev"} {
			if err := c.Join(room); err != nil {
				t.Fatal(err)
			}
		}
	}
	for _, room := range []string{"lobby", "dev"} {
		bob.WaitPeerJoined(t, room, alice.ID())
	}
	// bob knows alice by her nick before she changes it.
	testutil.Eventually(t, "bob knows alice's nick", func() bool { return bob.NickOf(alice.ID()) == "alice" })
	if err := alice.SetNick("alicia"); err != nil {
		t.Fatal(err)
	}
	for _, room := range []string{"lobby", "dev"} {
		ev := bob.WaitFor(t, "nick change in #"+room, func(ev chat.Event) bool {
			n, ok := ev.(chat.NickChanged)
			return ok && n.Room == room
		}).(chat.NickChanged)
		if ev.Peer != alice.ID() || ev.Old != "alice" || ev.New != "alicia" || ev.Self {
			t.Errorf("#%s: %+v, want alice is now alicia", room, ev)
		}
		own := alice.WaitFor(t, "own nick change in #"+room, func(ev chat.Event) bool {
			n, ok := ev.(chat.NickChanged)
			return ok && n.Room == room
		}).(chat.NickChanged)
		if !own.Self || own.New != "alicia" {
			t.Errorf("#%s: own change %+v, want Self", room, own)
		}
	}
}

package bridge_test

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/parley-chat/parley/bridge"
	"github.com/parley-chat/parley/chat"
	roomproto "github.com/parley-chat/parley/chat/protocol/room"
	"github.com/parley-chat/parley/internal/store"
	"github.com/parley-chat/parley/internal/testutil"
	"github.com/parley-chat/parley/node"
)

// Two members who reach each other only through the relay chat in a
// private room; the relay carries and stores it without being able to
// read it; a node in the public room of the same name sees nothing; after
// the creator removes a member, the others go on under a new key and the
// removed one gets nothing new.
func TestPrivateRoomThroughRelay(t *testing.T) {
	dir := t.TempDir()
	relayStore, err := store.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { relayStore.Close() })
	b := testutil.NewBridge(t, bridge.WithStore(relayStore))
	aliceKey, alicePeer := newKey(t)
	bobKey, bobPeer := newKey(t)
	gate := keepApart{&alicePeer, &bobPeer}
	boot := node.WithBootstrap(peer.AddrInfo{ID: b.Node().ID(), Addrs: b.Node().Host().Addrs()})
	aliceNode := testutil.NewNode(t, boot, node.WithConnectionGater(gate), node.WithIdentity(aliceKey))
	bobNode := testutil.NewNode(t, boot, node.WithConnectionGater(gate), node.WithIdentity(bobKey))
	daveNode := testutil.NewNode(t, boot)
	carolNode := testutil.NewNode(t, boot)
	alice := testutil.NewChat(t, aliceNode, chat.WithNick("alice"))
	bob := testutil.NewChat(t, bobNode, chat.WithNick("bob"))
	dave := testutil.NewChat(t, daveNode, chat.WithNick("dave"))
	carol := testutil.NewChat(t, carolNode, chat.WithNick("carol"))

	pr, err := alice.CreatePrivate("team")
	if err != nil {
		t.Fatal(err)
	}
	if pr.Creator != alice.ID() || len(pr.Secret) != 32 {
		t.Fatalf("CreatePrivate: creator %s, %d-byte secret", pr.Creator, len(pr.Secret))
	}
	sealer, err := roomproto.NewSealer(pr.Secret, pr.Epoch)
	if err != nil {
		t.Fatal(err)
	}
	wire := sealer.Name()
	for _, c := range []*testutil.Chat{bob, dave} {
		if err := c.JoinPrivate(pr); err != nil {
			t.Fatal(err)
		}
	}
	if err := carol.Join("team"); err != nil { // the public room of that name
		t.Fatal(err)
	}
	testutil.Eventually(t, "relay carries the private room for alice, bob and dave", func() bool {
		m := b.Members(wire)
		return slices.Contains(m, alice.ID()) && slices.Contains(m, bob.ID()) && slices.Contains(m, dave.ID())
	})
	for _, c := range []*testutil.Chat{alice, bob, dave} {
		c.WaitPeerJoined(t, "team", b.Node().ID())
	}

	const secretText = "the plan is at noon"
	if _, err := alice.Send(context.Background(), "team", secretText); err != nil {
		t.Fatal(err)
	}
	if m := bob.WaitMessage(t, "team", secretText); m.From != alice.ID() || m.Nick != "alice" {
		t.Errorf("bob got %+v, want alice's message", m)
	}
	dave.WaitMessage(t, "team", secretText)
	if _, err := bob.Send(context.Background(), "team", "noon it is"); err != nil {
		t.Fatal(err)
	}
	alice.WaitMessage(t, "team", "noon it is")
	if bobNode.Host().Network().Connectedness(alicePeer) == network.Connected {
		t.Fatal("alice and bob are connected directly: the test proves nothing")
	}

	// The relay stored the room (ciphertext), and no byte of its data
	// directory holds the text.
	testutil.Eventually(t, "relay stored both messages", func() bool { return b.Stored(wire) >= 2 })
	files, _ := filepath.Glob(filepath.Join(dir, "*"))
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, text := range []string{secretText, "noon it is", "alice", "team"} {
			if bytes.Contains(data, []byte(text)) {
				t.Errorf("the relay's %s holds %q in plain text", filepath.Base(f), text)
			}
		}
	}
	// One node is in one room of a name: carol, in the public #team, is
	// told so when given the private one's link.
	if err := carol.JoinPrivate(pr); err == nil || !strings.Contains(err.Error(), "the public #team") {
		t.Errorf("carol joining the private #team while in the public one: %v", err)
	}
	// A non-member in the public room of that name saw none of it.
	for _, m := range carol.Messages("team") {
		t.Errorf("carol, in the public #team, got %+v", m)
	}

	// Alice removes bob: dave gets the new key by DM and moves with her.
	n, err := alice.Kick(context.Background(), "team", bob.ID())
	if err != nil {
		t.Fatal(err)
	}
	if n != 1 {
		t.Errorf("the new key went to %d members, want 1 (dave)", n)
	}
	for _, c := range []*testutil.Chat{alice, dave} {
		c.WaitFor(t, "the new key", func(ev chat.Event) bool {
			no, ok := ev.(chat.Notice)
			return ok && strings.Contains(no.Text, "new key (epoch 1)")
		})
	}
	if got, ok := dave.Private("team"); !ok || got.Epoch != 1 {
		t.Fatalf("dave's #team after the kick: %+v, %v; want epoch 1", got, ok)
	}
	if got, _ := bob.Private("team"); got.Epoch != 0 {
		t.Fatalf("bob moved to epoch %d: the kicked member got the new key", got.Epoch)
	}
	if convs, err := dave.Conversations(); err != nil || len(convs) != 0 {
		t.Errorf("dave's DM conversations after the rekey: %+v, %v; want none (the key is not a DM to show)", convs, err)
	}
	next, _ := dave.Private("team")
	nextSealer, err := roomproto.NewSealer(next.Secret, next.Epoch)
	if err != nil {
		t.Fatal(err)
	}
	testutil.Eventually(t, "relay carries the new topic for alice and dave", func() bool {
		m := b.Members(nextSealer.Name())
		return slices.Contains(m, alice.ID()) && slices.Contains(m, dave.ID()) && !slices.Contains(m, bob.ID())
	})
	const after = "bob is gone"
	if _, err := alice.Send(context.Background(), "team", after); err != nil {
		t.Fatal(err)
	}
	dave.WaitMessage(t, "team", after)
	if _, err := dave.Send(context.Background(), "team", "so he is"); err != nil {
		t.Fatal(err)
	}
	alice.WaitMessage(t, "team", "so he is")
	// Dave's history of #team spans both epochs, newest last, and pages
	// back across the rekey.
	hist, err := dave.History("team", "", 10)
	if err != nil {
		t.Fatal(err)
	}
	var texts []string
	for _, m := range hist {
		texts = append(texts, m.Text)
	}
	if got := strings.Join(texts, " | "); !strings.HasPrefix(got, secretText+" | noon it is") || !strings.Contains(got, after) {
		t.Errorf("dave's history after the rekey: %s; want both epochs", got)
	}
	if older, err := dave.History("team", hist[len(hist)-1].ID, 1); err != nil || len(older) != 1 || older[0].Room != "team" {
		t.Errorf("paging back from the newest: %+v, %v", older, err)
	}
	if last, err := dave.History("team", hist[2].ID, 10); err != nil || len(last) != 2 || last[1].Text != "noon it is" {
		t.Errorf("paging back from the first message after the rekey into the epoch before: %+v, %v", last, err)
	}
	for _, m := range bob.Messages("team") {
		if m.Text == after || m.Text == "so he is" {
			t.Errorf("bob, removed, got %+v", m)
		}
	}
	for _, ev := range bob.Events() {
		if d, ok := ev.(chat.DirectMessage); ok {
			t.Errorf("bob got a DM after the kick: %+v", d)
		}
	}
}

// A member who missed a rekey (or is let back in) moves on with a newer
// link from the same creator, and does not move back with an older one.
func TestPrivateRoomNewerLinkMovesOn(t *testing.T) {
	b := testutil.NewBridge(t)
	boot := node.WithBootstrap(peer.AddrInfo{ID: b.Node().ID(), Addrs: b.Node().Host().Addrs()})
	alice := testutil.NewChat(t, testutil.NewNode(t, boot), chat.WithNick("alice"))
	bob := testutil.NewChat(t, testutil.NewNode(t, boot), chat.WithNick("bob"))
	pr, err := alice.CreatePrivate("team")
	if err != nil {
		t.Fatal(err)
	}
	if err := bob.JoinPrivate(pr); err != nil {
		t.Fatal(err)
	}
	bob.WaitPeerJoined(t, "team", alice.ID())
	if _, err := alice.Kick(context.Background(), "team", bob.ID()); err != nil {
		t.Fatal(err)
	}
	next, _ := alice.Private("team")
	if err := bob.JoinPrivate(next); err != nil {
		t.Fatalf("bob given the newer link: %v", err)
	}
	if got, _ := bob.Private("team"); got.Epoch != 1 {
		t.Fatalf("bob at epoch %d after the newer link, want 1", got.Epoch)
	}
	if err := bob.JoinPrivate(pr); !errors.Is(err, chat.ErrAlreadyInRoom) {
		t.Errorf("bob given the older link again: %v, want ErrAlreadyInRoom", err)
	}
	if err := bob.Leave("team"); err != nil {
		t.Fatal(err)
	}
	if kept, err := bob.PrivateRooms(); err != nil || len(kept) != 0 {
		t.Errorf("keys kept after leaving: %+v, %v; want none", kept, err)
	}
	if err := bob.JoinPrivate(next); err != nil {
		t.Fatal(err)
	}
	bob.WaitPeerJoined(t, "team", alice.ID())
	if _, err := alice.Send(context.Background(), "team", "welcome back"); err != nil {
		t.Fatal(err)
	}
	bob.WaitMessage(t, "team", "welcome back")
}

// A member offline at the kick gets the new key when back: it waits in
// the creator's outbox, and the member's node rejoins the room from its
// store at start.
func TestOfflineMemberGetsTheNewKeyWhenBack(t *testing.T) {
	b := testutil.NewBridge(t)
	boot := node.WithBootstrap(peer.AddrInfo{ID: b.Node().ID(), Addrs: b.Node().Host().Addrs()})
	alice := testutil.NewChat(t, testutil.NewNode(t, boot), chat.WithNick("alice"))
	daveKey, _ := newKey(t)
	daveStore, err := store.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { daveStore.Close() })
	daveNode := testutil.NewNode(t, boot, node.WithIdentity(daveKey))
	dave := testutil.NewChat(t, daveNode, chat.WithNick("dave"), chat.WithStore(daveStore))
	pr, err := alice.CreatePrivate("team")
	if err != nil {
		t.Fatal(err)
	}
	if err := dave.JoinPrivate(pr); err != nil {
		t.Fatal(err)
	}
	dave.WaitPeerJoined(t, "team", alice.ID())
	if _, err := dave.Send(context.Background(), "team", "dave here"); err != nil {
		t.Fatal(err)
	}
	alice.WaitMessage(t, "team", "dave here")
	dave.Close()
	daveNode.Close()

	_, someone := newKey(t)
	if n, err := alice.Kick(context.Background(), "team", someone); err != nil || n != 1 {
		t.Fatalf("kick with dave offline: new key queued for %d members, %v; want 1 (dave)", n, err)
	}

	daveNode = testutil.NewNode(t, boot, node.WithIdentity(daveKey))
	dave = testutil.NewChat(t, daveNode, chat.WithStore(daveStore))
	kept, err := dave.PrivateRooms()
	if err != nil || len(kept) != 1 || kept[0].Epoch != 0 {
		t.Fatalf("dave's kept private rooms: %+v, %v", kept, err)
	}
	if err := dave.JoinPrivate(kept[0]); err != nil {
		t.Fatal(err)
	}
	if err := daveNode.Host().Connect(context.Background(), testutil.Info(alice.Node)); err != nil {
		t.Fatal(err)
	}
	dave.WaitFor(t, "the new key", func(ev chat.Event) bool {
		n, ok := ev.(chat.Notice)
		return ok && strings.Contains(n.Text, "new key (epoch 1)")
	})
	dave.WaitPeerJoined(t, "team", alice.ID())
	if _, err := alice.Send(context.Background(), "team", "welcome back, dave"); err != nil {
		t.Fatal(err)
	}
	dave.WaitMessage(t, "team", "welcome back, dave")
}

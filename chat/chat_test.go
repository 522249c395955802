package chat_test

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
	"go.uber.org/goleak"

	"github.com/parley-chat/parley/chat"
	"github.com/parley-chat/parley/internal/testutil"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m, testutil.LeakIgnores()...)
}

// line starts n chat nodes connected in a line (0-1, 1-2, ...), all in room.
func line(t *testing.T, room string, nicks ...string) []*testutil.Chat {
	t.Helper()
	var chats []*testutil.Chat
	for i, nick := range nicks {
		n := testutil.NewNode(t)
		c := testutil.NewChat(t, n, chat.WithNick(nick), chat.WithDMIdleTimeout(500*time.Millisecond))
		if i > 0 {
			prev := chats[i-1].Node
			if err := n.Host().Connect(context.Background(), testutil.Info(prev)); err != nil {
				t.Fatal(err)
			}
		}
		chats = append(chats, c)
	}
	for _, c := range chats {
		if err := c.Join(room); err != nil {
			t.Fatal(err)
		}
	}
	// Wait until neighbours know each other's subscription and every
	// member has its mesh (at the next heartbeat): only then are messages
	// forwarded along the line. With D=3 a member with more neighbours
	// (the DHT connects them too) grafts at least Dlo=2 of them, which
	// keeps the mesh of a small room connected.
	for i := 1; i < len(chats); i++ {
		chats[i-1].WaitPeerJoined(t, room, chats[i].ID())
		chats[i].WaitPeerJoined(t, room, chats[i-1].ID())
	}
	for _, c := range chats {
		testutil.Eventually(t, "mesh formed", func() bool {
			members := 0
			for _, p := range c.Peers() {
				if p.Path != chat.PathNone && slices.Contains(p.Rooms, room) {
					members++
				}
			}
			return len(c.MeshPeers(room)) >= min(2, members)
		})
	}
	return chats
}

func TestRoomReachesEveryMemberExactlyOnce(t *testing.T) {
	chats := line(t, "lobby", "alice", "bob", "carol", "dave")
	sent := map[string]peer.ID{}
	for _, c := range chats {
		text := "hello from " + c.Nick()
		id, err := c.Send(context.Background(), "lobby", text)
		if err != nil {
			t.Fatal(err)
		}
		sent[id] = c.ID()
	}
	for _, c := range chats {
		for _, from := range chats {
			m := c.WaitMessage(t, "lobby", "hello from "+from.Nick())
			if m.From != from.ID() || m.Nick != from.Nick() {
				t.Errorf("%s got message from %s (%s), want %s (%s)", c.Nick(), m.From, m.Nick, from.ID(), from.Nick())
			}
		}
	}
	// A last message from the far end, so duplicates of the first ones that
	// were still travelling have had the same path to arrive.
	if _, err := chats[3].Send(context.Background(), "lobby", "bye"); err != nil {
		t.Fatal(err)
	}
	for _, c := range chats {
		c.WaitMessage(t, "lobby", "bye")
		seen := map[string]int{}
		for _, m := range c.Messages("lobby") {
			seen[m.ID]++
		}
		for id := range sent {
			if seen[id] != 1 {
				t.Errorf("%s saw message %s %d times, want 1", c.Nick(), id, seen[id])
			}
		}
	}
}

func TestLeftMemberStopsReceiving(t *testing.T) {
	chats := line(t, "lobby", "alice", "bob", "carol")
	alice, bob, carol := chats[0], chats[1], chats[2]
	if err := carol.Leave("lobby"); err != nil {
		t.Fatal(err)
	}
	bob.WaitFor(t, "carol left", func(ev chat.Event) bool {
		l, ok := ev.(chat.PeerLeft)
		return ok && l.Peer == carol.ID() && l.Room == "lobby"
	})
	if _, err := alice.Send(context.Background(), "lobby", "after carol left"); err != nil {
		t.Fatal(err)
	}
	bob.WaitMessage(t, "lobby", "after carol left")
	// A DM from bob travels after the room message reached bob: once it is
	// in, carol would have had the room message too.
	if _, err := bob.SendDM(carol.ID().String(), "marker"); err != nil {
		t.Fatal(err)
	}
	carol.WaitFor(t, "marker DM", func(ev chat.Event) bool {
		d, ok := ev.(chat.DirectMessage)
		return ok && d.Text == "marker"
	})
	for _, m := range carol.Messages("lobby") {
		if m.Text == "after carol left" {
			t.Fatalf("carol received %q after leaving", m.Text)
		}
	}
	if got := carol.Rooms(); len(got) != 0 {
		t.Errorf("carol.Rooms() = %v, want none", got)
	}
	if err := carol.Leave("lobby"); !errors.Is(err, chat.ErrNotInRoom) {
		t.Errorf("second Leave: got %v, want ErrNotInRoom", err)
	}
}

func TestSeveralRooms(t *testing.T) {
	chats := line(t, "lobby", "alice", "bob")
	alice, bob := chats[0], chats[1]
	for _, c := range chats {
		if err := c.Join("dev"); err != nil {
			t.Fatal(err)
		}
	}
	alice.WaitPeerJoined(t, "dev", bob.ID())
	if _, err := alice.Send(context.Background(), "dev", "in dev"); err != nil {
		t.Fatal(err)
	}
	if _, err := alice.Send(context.Background(), "lobby", "in lobby"); err != nil {
		t.Fatal(err)
	}
	bob.WaitMessage(t, "dev", "in dev")
	bob.WaitMessage(t, "lobby", "in lobby")
	if _, err := alice.Send(context.Background(), "nowhere", "x"); !errors.Is(err, chat.ErrNotInRoom) {
		t.Errorf("send to a room not joined: got %v, want ErrNotInRoom", err)
	}
	if err := alice.Join("dev"); !errors.Is(err, chat.ErrAlreadyInRoom) {
		t.Errorf("join twice: got %v, want ErrAlreadyInRoom", err)
	}
}

func TestDMIsDeliveredAndAcked(t *testing.T) {
	chats := line(t, "lobby", "alice", "bob")
	alice, bob := chats[0], chats[1]
	id, err := alice.SendDM(bob.ID().String(), "psst")
	if err != nil {
		t.Fatal(err)
	}
	got := bob.WaitFor(t, "dm", func(ev chat.Event) bool { _, ok := ev.(chat.DirectMessage); return ok }).(chat.DirectMessage)
	if got.ID != id || got.From != alice.ID() || got.Nick != "alice" || got.Text != "psst" {
		t.Errorf("bob got %+v, want id %s from alice (%s) text psst", got, id, alice.ID())
	}
	d := alice.WaitFor(t, "delivered", func(ev chat.Event) bool { _, ok := ev.(chat.Delivered); return ok }).(chat.Delivered)
	if d.ID != id || d.To != bob.ID() {
		t.Errorf("delivered = %+v, want id %s to %s", d, id, bob.ID())
	}
	// The stream is reused for the next message, and survives the
	// receiver resetting it when idle (500 ms in these tests).
	for i, text := range []string{"second", "third"} {
		if i == 1 {
			time.Sleep(700 * time.Millisecond) // let the idle timeout expire: that is the behaviour under test
		}
		id, err := alice.SendDM(bob.ID().String(), text)
		if err != nil {
			t.Fatal(err)
		}
		alice.WaitFor(t, "delivered "+text, func(ev chat.Event) bool { d, ok := ev.(chat.Delivered); return ok && d.ID == id })
	}
	if err := alice.Drain(context.Background()); err != nil {
		t.Fatal(err)
	}
}

func TestDMByNick(t *testing.T) {
	chats := line(t, "lobby", "alice", "bob", "bob", "carol")
	alice, carol := chats[0], chats[3]
	// Nicks are learned from presence announcements, which have no event.
	testutil.Eventually(t, "alice learns carol's nick", func() bool {
		_, err := alice.ResolvePeer("carol")
		return err == nil
	})
	id, err := alice.SendDM("carol", "hi carol")
	if err != nil {
		t.Fatal(err)
	}
	carol.WaitFor(t, "dm", func(ev chat.Event) bool { d, ok := ev.(chat.DirectMessage); return ok && d.ID == id })
	alice.WaitFor(t, "delivered", func(ev chat.Event) bool { d, ok := ev.(chat.Delivered); return ok && d.ID == id })

	if _, err := alice.SendDM("nobody", "x"); !errors.Is(err, chat.ErrUnknownPeer) {
		t.Errorf("dm to unknown nick: got %v, want ErrUnknownPeer", err)
	}
	testutil.Eventually(t, "alice learns both bobs", func() bool {
		_, err := alice.SendDM("bob", "x")
		return errors.Is(err, chat.ErrAmbiguousNick)
	})
	_, err = alice.SendDM("bob", "x")
	for _, b := range chats[1:3] {
		// Listed as shown, nick[ID tag], which /dm takes.
		id := b.ID().String()
		shown := "bob[" + id[len(id)-6:] + "]"
		if !strings.Contains(err.Error(), shown) {
			t.Errorf("ambiguous-nick error %q does not list %s", err, shown)
		}
		if got, err := alice.ResolvePeer(shown); err != nil || got != b.ID() {
			t.Errorf("%s resolves to %v, %v; want %s", shown, got, err, b.ID())
		}
	}
}

func TestDMToUnreachablePeerIsQueued(t *testing.T) {
	alice := testutil.NewChat(t, testutil.NewNode(t), chat.WithNick("alice"), chat.WithDMTimeouts(2*time.Second, 2*time.Second))
	gone := testutil.NewNode(t)
	addrs := gone.Host().Addrs()
	gone.Close()
	alice.Node.Host().Peerstore().AddAddrs(gone.ID(), addrs, time.Minute)
	id, err := alice.SendDM(gone.ID().String(), "anyone there?")
	if err != nil {
		t.Fatal(err)
	}
	q := alice.WaitFor(t, "queued", func(ev chat.Event) bool { _, ok := ev.(chat.Queued); return ok }).(chat.Queued)
	if q.ID != id || q.To != gone.ID() || !errors.Is(q.Err, chat.ErrOffline) {
		t.Errorf("queued event %+v, want id %s to %s and ErrOffline", q, id, gone.ID())
	}
	// A person reads one short sentence; the dial error goes to the log.
	if msg := q.Err.Error(); strings.Contains(msg, "\n") || len(msg) > 80 {
		t.Errorf("queued error %q: want one short sentence", msg)
	}
	pending, err := alice.Outbox()
	if err != nil || len(pending) != 1 || pending[0].ID != id || pending[0].Attempts != 1 {
		t.Errorf("outbox %+v (%v), want the DM with one attempt", pending, err)
	}
	// A second DM waits behind the first; it says so too.
	id2, err := alice.SendDM(gone.ID().String(), "still not there?")
	if err != nil {
		t.Fatal(err)
	}
	alice.WaitFor(t, "second DM queued", func(ev chat.Event) bool { q, ok := ev.(chat.Queued); return ok && q.ID == id2 })
}

func TestInvalidInputIsRefused(t *testing.T) {
	c := testutil.NewChat(t, testutil.NewNode(t))
	for _, name := range []string{"", "has space", "a/b", strings.Repeat("x", 65)} {
		if err := c.Join(name); err == nil {
			t.Errorf("Join(%q) succeeded, want an error", name)
		}
	}
	if err := c.Join("lobby"); err != nil {
		t.Fatal(err)
	}
	for _, text := range []string{"", strings.Repeat("x", chat.MaxTextBytes+1), "bell\a", "\x1b[2J"} {
		if _, err := c.Send(context.Background(), "lobby", text); err == nil {
			t.Errorf("Send(%q) succeeded, want an error", text)
		}
	}
	if err := c.SetNick(""); err == nil {
		t.Error("SetNick(\"\") succeeded")
	}
	if _, err := c.SendDM(c.ID().String(), "me"); err == nil {
		t.Error("DM to self succeeded")
	}
}

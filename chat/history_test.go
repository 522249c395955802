package chat_test

import (
	"context"
	"crypto/rand"
	"fmt"
	"strings"
	"testing"
	"time"

	pubsubpb "github.com/libp2p/go-libp2p-pubsub/pb"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"
	"google.golang.org/protobuf/proto"

	"github.com/parley-chat/parley/chat"
	"github.com/parley-chat/parley/chat/pb"
	"github.com/parley-chat/parley/chat/protocol/history"
	roomproto "github.com/parley-chat/parley/chat/protocol/room"
	"github.com/parley-chat/parley/internal/store"
	"github.com/parley-chat/parley/internal/testutil"
	"github.com/parley-chat/parley/node"
)

// member is a node whose identity and store outlive its process, so a test
// can take it offline and bring it back.
type member struct {
	key  crypto.PrivKey
	dir  string
	nick string
}

func newMember(t *testing.T, nick string) *member {
	key, _, err := crypto.GenerateEd25519Key(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return &member{key: key, dir: t.TempDir(), nick: nick}
}

// start brings the member online; stop with the returned function.
func (m *member) start(t *testing.T, opts ...node.Option) (*testutil.Chat, *store.Store, func()) {
	t.Helper()
	st, err := store.Open(m.dir)
	if err != nil {
		t.Fatal(err)
	}
	n, err := node.New(append([]node.Option{node.WithIdentity(m.key), node.WithListenAddrs(ma.StringCast("/ip4/127.0.0.1/tcp/0"))}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	c := testutil.NewChat(t, n, chat.WithNick(m.nick), chat.WithStore(st))
	stopped := false
	stop := func() {
		if !stopped {
			stopped = true
			c.Close()
			n.Close()
			st.Close()
		}
	}
	t.Cleanup(stop)
	return c, st, stop
}

// A member offline while 20 messages were sent gets all 20 when it comes
// back, once each, marked as backfill, in the order every node stores them.
func TestOfflineMemberCatchesUp(t *testing.T) {
	chats := line(t, "lobby", "alice", "bob")
	alice, bob := chats[0], chats[1]
	carol := newMember(t, "carol")
	c, _, stop := carol.start(t)
	if err := c.Node.Host().Connect(context.Background(), testutil.Info(alice.Node)); err != nil {
		t.Fatal(err)
	}
	if err := c.Join("lobby"); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Send(context.Background(), "lobby", "carol was here"); err != nil {
		t.Fatal(err)
	}
	alice.WaitMessage(t, "lobby", "carol was here")
	stop()

	for i := 0; i < 20; i++ {
		if _, err := alice.Send(context.Background(), "lobby", fmt.Sprintf("missed %02d", i)); err != nil {
			t.Fatal(err)
		}
	}
	bob.WaitMessage(t, "lobby", "missed 19")

	c, st, _ := carol.start(t)
	for _, other := range []*testutil.Chat{alice, bob} {
		if err := c.Node.Host().Connect(context.Background(), testutil.Info(other.Node)); err != nil {
			t.Fatal(err)
		}
	}
	if err := c.Join("lobby"); err != nil {
		t.Fatal(err)
	}
	c.WaitMessage(t, "lobby", "missed 19")
	testutil.Eventually(t, "all 20 backfilled", func() bool { return len(c.Messages("lobby")) >= 21 })
	// Catch-up asked both alice and bob: each message still shows once.
	seen := map[string]int{}
	var missed []string
	for _, m := range c.Messages("lobby") {
		seen[m.ID]++
		if !m.Backfill {
			t.Errorf("%q shown as live, want backfill", m.Text)
		}
		if strings.HasPrefix(m.Text, "missed") {
			missed = append(missed, m.Text)
		}
	}
	for id, n := range seen {
		if n != 1 {
			t.Errorf("message %s shown %d times", id, n)
		}
	}
	if len(missed) != 20 {
		t.Fatalf("carol got %d of the 20 missed messages", len(missed))
	}
	// Carol's store holds the room in the one history order, the same as
	// everyone's: sent-at, Lamport counter, ID. Alice sent them in order.
	stored, err := st.RecentRoomMessages("lobby", 100)
	if err != nil {
		t.Fatal(err)
	}
	var order []string
	for _, m := range stored {
		if strings.HasPrefix(m.Text, "missed") {
			order = append(order, m.Text)
		}
	}
	for i, text := range order {
		if want := fmt.Sprintf("missed %02d", i); text != want {
			t.Fatalf("stored history position %d is %q, want %q (order %v)", i, text, want, order)
		}
	}
}

// With every other member offline, a newcomer gets the history from the
// relay, which keeps the rooms it carries.
func TestRelayServesHistory(t *testing.T) {
	b := testutil.NewBridge(t)
	boot := node.WithBootstrap(testutil.Info(b.Node()))
	alice := newMember(t, "alice")
	a, _, stop := alice.start(t, boot)
	if err := a.Join("lobby"); err != nil {
		t.Fatal(err)
	}
	a.WaitPeerJoined(t, "lobby", b.Node().ID())
	for i := 0; i < 5; i++ {
		if _, err := a.Send(context.Background(), "lobby", fmt.Sprintf("for later %d", i)); err != nil {
			t.Fatal(err)
		}
	}
	testutil.Eventually(t, "relay stored alice's messages", func() bool {
		return b.Stored("lobby") == 5
	})
	stop()

	n, _, _ := newMember(t, "newcomer").start(t, boot)
	if err := n.Join("lobby"); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 5; i++ {
		m := n.WaitMessage(t, "lobby", fmt.Sprintf("for later %d", i))
		if !m.Backfill || m.Nick != "alice" {
			t.Errorf("got %+v, want alice's message as backfill", m)
		}
	}
}

// A DM to a peer that is offline waits in the outbox, also across a
// restart of the sender, and is delivered once when the peer is back.
func TestDMOutboxSurvivesRestart(t *testing.T) {
	alice, bob := newMember(t, "alice"), newMember(t, "bob")
	bobID, _ := peer.IDFromPrivateKey(bob.key)
	a, _, stop := alice.start(t)
	id, err := a.SendDM(bobID.String(), "while you were out")
	if err != nil {
		t.Fatal(err)
	}
	a.WaitFor(t, "queued", func(ev chat.Event) bool { q, ok := ev.(chat.Queued); return ok && q.ID == id })
	stop()

	a, _, _ = alice.start(t)
	if pending, _ := a.Outbox(); len(pending) != 1 || pending[0].ID != id {
		t.Fatalf("outbox after restart: %+v, want the DM", pending)
	}
	b, _, _ := bob.start(t)
	// Bob comes back and connects: alice's outbox sends at once.
	if err := b.Node.Host().Connect(context.Background(), testutil.Info(a.Node)); err != nil {
		t.Fatal(err)
	}
	got := b.WaitFor(t, "dm", func(ev chat.Event) bool { _, ok := ev.(chat.DirectMessage); return ok }).(chat.DirectMessage)
	if got.ID != id || got.From != a.ID() {
		t.Errorf("bob got %+v, want %s from alice", got, id)
	}
	a.WaitFor(t, "delivered", func(ev chat.Event) bool { d, ok := ev.(chat.Delivered); return ok && d.ID == id })
	// One more DM on the same stream is the marker that nothing else is
	// in flight: exactly one delivery and one delivered event.
	id2, _ := a.SendDM(b.ID().String(), "marker")
	a.WaitFor(t, "marker delivered", func(ev chat.Event) bool { d, ok := ev.(chat.Delivered); return ok && d.ID == id2 })
	count := func(c *testutil.Chat, f func(chat.Event) bool) int {
		n := 0
		for _, ev := range c.Events() {
			if f(ev) {
				n++
			}
		}
		return n
	}
	if n := count(b, func(ev chat.Event) bool { d, ok := ev.(chat.DirectMessage); return ok && d.ID == id }); n != 1 {
		t.Errorf("bob shows the DM %d times, want 1", n)
	}
	if n := count(a, func(ev chat.Event) bool { d, ok := ev.(chat.Delivered); return ok && d.ID == id }); n != 1 {
		t.Errorf("alice got %d delivered events, want 1", n)
	}
	if pending, _ := a.Outbox(); len(pending) != 0 {
		t.Errorf("outbox not empty after delivery: %+v", pending)
	}
}

// sign makes a signed GossipSub message as libp2p-pubsub does.
func envelope(room, text string, sentAt time.Time) []byte {
	return sealed(pb.Envelope_MESSAGE, "0123456789abcdef0123456789abcdef", room, "mallory", text, sentAt.UnixMilli())
}

func sign(t *testing.T, key crypto.PrivKey, topic string, data []byte) *pubsubpb.Message {
	t.Helper()
	id, _ := peer.IDFromPrivateKey(key)
	m := &pubsubpb.Message{From: []byte(id), Data: data, Seqno: []byte{1, 2, 3, 4, 5, 6, 7, 8}, Topic: &topic}
	b, _ := proto.Marshal(m)
	sig, err := key.Sign(append([]byte("libp2p-pubsub:"), b...))
	if err != nil {
		t.Fatal(err)
	}
	m.Signature = sig
	return m
}

// serveHistory starts a member of "lobby" next to victim that answers
// history requests from st, whatever it holds: joining makes the victim
// ask it for history.
func serveHistory(t *testing.T, victim *testutil.Chat, st *store.Store) *node.Node {
	t.Helper()
	rogue := testutil.NewNode(t)
	rogueChat := testutil.NewChat(t, rogue, chat.WithNick("rogue"))
	if err := rogue.Host().Connect(context.Background(), testutil.Info(victim.Node)); err != nil {
		t.Fatal(err)
	}
	// The rogue's chat service took the protocol's handler: the forger's
	// goes in its place.
	rogue.Host().SetStreamHandler(history.ID, history.Server{Store: st, Allowed: func(context.Context, string, peer.ID) bool { return true }}.Handle)
	if err := rogueChat.Join("lobby"); err != nil {
		t.Fatal(err)
	}
	return rogue
}

// A member serving forged history is ignored: nothing is shown or
// stored, and the node goes on working.
func TestForgedBackfillIsIgnored(t *testing.T) {
	chats := line(t, "lobby", "victim", "honest")
	victim, honest := chats[0], chats[1]
	// The rogue serves one forged message as its history of "lobby".
	rogueStore, _ := store.OpenMemory()
	defer rogueStore.Close()
	key, _, _ := crypto.GenerateEd25519Key(rand.Reader)
	forged := sign(t, key, roomproto.Topic("lobby"), envelope("lobby", "original", time.Now()))
	forged.Data = envelope("lobby", "forged history", time.Now())
	raw, _ := proto.Marshal(forged)
	rogueStore.AddRoomMessage(store.RoomMessage{ID: "0123456789abcdef0123456789abcdef", Room: "lobby", Author: "x", SentAt: time.Now().UnixMilli(), Raw: raw})
	rogue := serveHistory(t, victim, rogueStore)
	victim.WaitPeerJoined(t, "lobby", rogue.ID())
	// The victim still works: a live message after the catch-up arrives.
	if _, err := honest.Send(context.Background(), "lobby", "still fine"); err != nil {
		t.Fatal(err)
	}
	victim.WaitMessage(t, "lobby", "still fine")
	for _, m := range victim.Messages("lobby") {
		if strings.Contains(m.Text, "forged") || strings.Contains(m.Text, "original") {
			t.Errorf("forged history shown: %+v", m)
		}
	}
}

// A catch-up does not check again what the node holds (a repair after a
// gap, or a join during a burst, is sent mostly that): a page that
// repeats a stored message, here as a corrupted copy, goes on to the new
// lines after it instead of being refused whole.
func TestCatchUpSkipsWhatIsStored(t *testing.T) {
	const heldID, newID = "11111111111111111111111111111111", "22222222222222222222222222222222"
	key, _, _ := crypto.GenerateEd25519Key(rand.Reader)
	topic := roomproto.Topic("lobby")
	now := time.Now()
	held := sealed(pb.Envelope_MESSAGE, heldID, "lobby", "carol", "held line", now.Add(-2*time.Second).UnixMilli())

	st, err := store.OpenMemory()
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	storeSigned(t, st, key, held)
	victim := testutil.NewChat(t, testutil.NewNode(t), chat.WithNick("victim"), chat.WithStore(st))
	if err := victim.Join("lobby"); err != nil {
		t.Fatal(err)
	}

	// The rogue serves the held line altered (its signature no longer
	// holds), then a line the victim does not have.
	rogueStore, _ := store.OpenMemory()
	defer rogueStore.Close()
	altered := sign(t, key, topic, held)
	altered.Data = sealed(pb.Envelope_MESSAGE, heldID, "lobby", "carol", "held line, altered", now.Add(-2*time.Second).UnixMilli())
	fresh := sign(t, key, topic, sealed(pb.Envelope_MESSAGE, newID, "lobby", "carol", "new line", now.Add(-time.Second).UnixMilli()))
	for _, m := range []struct {
		id  string
		at  time.Time
		msg *pubsubpb.Message
	}{{heldID, now.Add(-2 * time.Second), altered}, {newID, now.Add(-time.Second), fresh}} {
		raw, _ := proto.Marshal(m.msg)
		if _, err := rogueStore.AddRoomMessage(store.RoomMessage{ID: m.id, Room: "lobby", Author: "x", SentAt: m.at.UnixMilli(), Lamport: 1, Raw: raw}); err != nil {
			t.Fatal(err)
		}
	}
	serveHistory(t, victim, rogueStore)
	victim.WaitMessage(t, "lobby", "new line")
	for _, m := range victim.Messages("lobby") {
		if strings.Contains(m.Text, "altered") {
			t.Errorf("altered copy shown: %+v", m)
		}
	}
}

// --history N bounds the history shown: of the 26 messages a new member
// catches up, the newest 2 are shown and the rest counted (all are
// stored); at a restart, the newest 2 stored are shown, then where what is
// new since it left begins.
func TestHistoryBoundsWhatIsShown(t *testing.T) {
	alice := testutil.NewChat(t, testutil.NewNode(t), chat.WithNick("alice"))
	if err := alice.Join("lobby"); err != nil {
		t.Fatal(err)
	}
	for i := range 26 {
		if _, err := alice.Send(context.Background(), "lobby", fmt.Sprintf("m%02d", i)); err != nil {
			t.Fatal(err)
		}
	}
	carol := newMember(t, "carol")
	st, err := store.Open(carol.dir)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	n := testutil.NewNode(t, node.WithIdentity(carol.key))
	c := testutil.NewChat(t, n, chat.WithNick("carol"), chat.WithStore(st), chat.WithHistory(2))
	if err := n.Host().Connect(context.Background(), testutil.Info(alice.Node)); err != nil {
		t.Fatal(err)
	}
	if err := c.Join("lobby"); err != nil {
		t.Fatal(err)
	}
	end := c.WaitFor(t, "catch-up done", func(ev chat.Event) bool {
		h, ok := ev.(chat.HistoryShown)
		return ok && h.CaughtUp
	}).(chat.HistoryShown)
	if end.Shown != 2 || end.Hidden != 24 {
		t.Errorf("catch-up: %+v, want 2 shown and 24 hidden", end)
	}
	if got := fmt.Sprint(textsFrom(c.Messages("lobby"), alice.ID().String())); got != "[m24 m25]" {
		t.Errorf("shown %s, want the newest two [m24 m25]", got)
	}
	if stored, _ := st.CountRoomMessages("lobby"); stored != 26 {
		t.Errorf("%d stored, want all 26", stored)
	}
	c.Close()
	n.Close()

	n = testutil.NewNode(t, node.WithIdentity(carol.key))
	c = testutil.NewChat(t, n, chat.WithNick("carol"), chat.WithStore(st), chat.WithHistory(2))
	if err := c.Join("lobby"); err != nil {
		t.Fatal(err)
	}
	mark := c.WaitFor(t, "replay done", func(ev chat.Event) bool { _, ok := ev.(chat.HistoryShown); return ok }).(chat.HistoryShown)
	if mark.CaughtUp || mark.Shown != 2 || mark.Hidden != 24 {
		t.Errorf("replay: %+v, want 2 shown, 24 hidden", mark)
	}
	if got := fmt.Sprint(textsFrom(c.Messages("lobby"), alice.ID().String())); got != "[m24 m25]" {
		t.Errorf("replayed %s, want [m24 m25]", got)
	}
}

package chat_test

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	pubsub "github.com/libp2p/go-libp2p-pubsub"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"
	"google.golang.org/protobuf/proto"

	"github.com/parley-chat/parley/chat"
	"github.com/parley-chat/parley/chat/pb"
	"github.com/parley-chat/parley/chat/protocol/history"
	roomproto "github.com/parley-chat/parley/chat/protocol/room"
	"github.com/parley-chat/parley/internal/store"
	"github.com/parley-chat/parley/internal/testutil"
	"github.com/parley-chat/parley/node"
)

// rawMember is a GossipSub peer in room that publishes and reads
// envelopes as they are on the wire, connected to c.
type rawMember struct {
	*node.Node
	topic *pubsub.Topic
	sub   *pubsub.Subscription
}

func newRawMember(t *testing.T, c *testutil.Chat, room string) *rawMember {
	t.Helper()
	return joinRaw(t, c, room, testutil.NewNode(t))
}

// joinRaw makes n a raw member of room, connected to c.
func joinRaw(t *testing.T, c *testutil.Chat, room string, n *node.Node) *rawMember {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	ps, err := pubsub.NewGossipSub(ctx, n.Host(), pubsub.WithFloodPublish(true))
	if err != nil {
		t.Fatal(err)
	}
	topic, err := ps.Join(roomproto.Topic(room))
	if err != nil {
		t.Fatal(err)
	}
	sub, err := topic.Subscribe()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sub.Cancel(); topic.Close() })
	if err := n.Host().Connect(ctx, testutil.Info(c.Node)); err != nil {
		t.Fatal(err)
	}
	testutil.Eventually(t, "raw member sees the chat node in the room", func() bool { return len(topic.ListPeers()) > 0 })
	c.WaitPeerJoined(t, room, n.ID())
	return &rawMember{Node: n, topic: topic, sub: sub}
}

// say publishes a room message with the given Lamport and previous Lamport.
func (m *rawMember) say(t *testing.T, room string, sentAt time.Time, lamport, prev uint64, text string) {
	t.Helper()
	if err := m.topic.Publish(context.Background(), rawLine(t, room, sentAt, lamport, prev, text)); err != nil {
		t.Fatal(err)
	}
}

// rawLine is a room message's envelope with the given Lamport and
// previous Lamport, sent at sentAt plus lamport milliseconds.
func rawLine(t *testing.T, room string, sentAt time.Time, lamport, prev uint64, text string) []byte {
	t.Helper()
	env := &pb.Envelope{Kind: pb.Envelope_MESSAGE, Id: fmt.Sprintf("%032x", lamport), Room: room,
		SentAtMs: sentAt.UnixMilli() + int64(lamport), Lamport: lamport, PrevLamport: prev}
	if err := roomproto.SealBody(env, &pb.Body{Nick: "raw", Text: text}); err != nil {
		t.Fatal(err)
	}
	data, _ := proto.Marshal(env)
	return data
}

func textsFrom(ms []chat.Message, from string) []string {
	var out []string
	for _, m := range ms {
		if m.From.String() == from {
			out = append(out, m.Text)
		}
	}
	return out
}

// A sender's lines that arrive out of order are shown in the order they
// were sent (a line waits for the one before it, which comes a moment
// later), and a reload shows the same order.
func TestOneSendersLinesShowInOrder(t *testing.T) {
	// Held lines must be let go by their predecessor, never by the timer.
	defer chat.SetHoldFor(time.Hour)()
	c := testutil.NewChat(t, testutil.NewNode(t), chat.WithNick("reader"))
	if err := c.Join("lobby"); err != nil {
		t.Fatal(err)
	}
	raw := newRawMember(t, c, "lobby")
	now := time.Now()
	raw.say(t, "lobby", now, 1, 0, "one")
	c.WaitMessage(t, "lobby", "one")
	raw.say(t, "lobby", now, 3, 2, "three")
	raw.say(t, "lobby", now, 4, 3, "four")
	raw.say(t, "lobby", now, 2, 1, "two")
	c.WaitMessage(t, "lobby", "four")
	want := "[one two three four]"
	if got := fmt.Sprint(textsFrom(c.Messages("lobby"), raw.ID().String())); got != want {
		t.Errorf("shown live as %s, want %s", got, want)
	}
	reloaded, err := c.History("lobby", "", 10)
	if err != nil {
		t.Fatal(err)
	}
	if got := fmt.Sprint(textsFrom(reloaded, raw.ID().String())); got != want {
		t.Errorf("after a reload %s, want %s (as live)", got, want)
	}
}

// A line whose predecessor never comes is shown after a short hold; lines
// that arrive in order are not held at all.
func TestHoldIsBoundedAndNormalLinesAreNotHeld(t *testing.T) {
	c := testutil.NewChat(t, testutil.NewNode(t), chat.WithNick("reader"))
	if err := c.Join("lobby"); err != nil {
		t.Fatal(err)
	}
	raw := newRawMember(t, c, "lobby")
	now := time.Now()
	restore := chat.SetHoldFor(time.Hour) // any wait would time the test out
	raw.say(t, "lobby", now, 5, 0, "first")
	for l := uint64(6); l < 36; l++ {
		raw.say(t, "lobby", now, l, l-1, fmt.Sprint("line ", l))
	}
	c.WaitMessage(t, "lobby", "line 35")
	restore()

	restore = chat.SetHoldFor(50 * time.Millisecond)
	defer restore()
	raw.say(t, "lobby", now, 40, 38, "after a lost line") // 38 was never sent
	c.WaitMessage(t, "lobby", "after a lost line")
}

// A node's messages name its previous one (presences do not count), also
// across a restart, and their send times never go back.
func TestSentLinesNameTheirPredecessor(t *testing.T) {
	st := openStore(t)
	key, _, err := crypto.GenerateEd25519Key(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	start := func() *testutil.Chat {
		c := testutil.NewChat(t, testutil.NewNode(t, node.WithIdentity(key)), chat.WithNick("alice"), chat.WithStore(st))
		if err := c.Join("lobby"); err != nil {
			t.Fatal(err)
		}
		return c
	}
	alice := start()
	raw := newRawMember(t, alice, "lobby")
	var prev uint64
	var prevAt int64
	next := func(text string) {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), testutil.Timeout)
		defer cancel()
		for {
			msg, err := raw.sub.Next(ctx)
			if err != nil {
				t.Fatalf("waiting for %q: %v", text, err)
			}
			var env pb.Envelope
			if proto.Unmarshal(msg.Data, &env) != nil || env.GetKind() != pb.Envelope_MESSAGE {
				continue
			}
			if env.GetPrevLamport() != prev || env.GetSentAtMs() < prevAt {
				t.Errorf("%q: prev-lamport %d sent-at %d, want %d and not before %d", text, env.GetPrevLamport(), env.GetSentAtMs(), prev, prevAt)
			}
			prev, prevAt = env.GetLamport(), env.GetSentAtMs()
			return
		}
	}
	for _, text := range []string{"a", "b", "c"} {
		if _, err := alice.Send(context.Background(), "lobby", text); err != nil {
			t.Fatal(err)
		}
		next(text)
	}
	alice.Close()
	alice.Node.Close()
	alice = start()
	if err := raw.Host().Connect(context.Background(), testutil.Info(alice.Node)); err != nil {
		t.Fatal(err)
	}
	alice.WaitPeerJoined(t, "lobby", raw.ID())
	testutil.Eventually(t, "restarted alice in the room", func() bool { return len(raw.topic.ListPeers()) > 0 })
	if _, err := alice.Send(context.Background(), "lobby", "after a restart"); err != nil {
		t.Fatal(err)
	}
	next("after a restart")
}

// A live line that follows a line a catch-up has stored but not shown yet
// (the catch-up shows what it brought when it ends) is shown after it, not
// before: a newcomer that joins during a burst gets the burst's first lines
// as history and the next ones live, and must show them in the order sent.
func TestLiveLineAfterCaughtUpLineWaitsForIt(t *testing.T) {
	c := testutil.NewChat(t, testutil.NewNode(t), chat.WithNick("reader"))
	if err := c.Join("lobby"); err != nil {
		t.Fatal(err)
	}
	// The raw member's history: its lines 1 to 200, then someone else's
	// line, so that the catch-up takes two pages (history.PageSize).
	n := testutil.NewNode(t)
	key := n.Host().Peerstore().PrivKey(n.ID())
	otherKey, _, err := crypto.GenerateEd25519Key(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	src, err := store.OpenMemory()
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	start := time.Now().Add(-10 * time.Second)
	var want []string
	for l := uint64(1); l <= history.PageSize; l++ {
		text := fmt.Sprintf("line %03d", l)
		storeSigned(t, src, key, rawLine(t, "lobby", start, l, l-1, text))
		want = append(want, text)
	}
	storeSigned(t, src, otherKey, rawLine(t, "lobby", start, 500, 0, "someone else"))
	// The first page is served at once; the second waits until the line
	// after the first page was shown live.
	var asked atomic.Int32
	secondPage, served := make(chan struct{}), make(chan struct{})
	n.Host().SetStreamHandler(history.ID, history.Server{Store: src, Allowed: func(ctx context.Context, _ string, _ peer.ID) bool {
		if asked.Add(1) != 2 {
			return true
		}
		close(secondPage)
		select {
		case <-served:
			return true
		case <-ctx.Done():
			return false
		}
	}}.Handle)
	raw := joinRaw(t, c, "lobby", n)
	select {
	case <-secondPage: // the first page is stored
	case <-time.After(testutil.Timeout):
		t.Fatal("the reader did not catch up from the raw member")
	}
	raw.say(t, "lobby", start, history.PageSize+1, history.PageSize, "line 201")
	want = append(want, "line 201")
	c.WaitMessage(t, "lobby", "line 201")
	close(served)
	end := c.WaitFor(t, "catch-up done", func(ev chat.Event) bool {
		h, ok := ev.(chat.HistoryShown)
		return ok && h.CaughtUp
	}).(chat.HistoryShown)

	got := textsFrom(c.Messages("lobby"), raw.ID().String())
	// The newest chat.DefaultHistory of the caught-up lines are shown,
	// then the live line, each once.
	if want := want[len(want)-chat.DefaultHistory-1:]; !slices.Equal(got, want) {
		t.Errorf("shown %d lines %q … %q, want %d in order, %q … %q", len(got), got[:min(3, len(got))], got[max(0, len(got)-3):],
			len(want), want[:3], want[len(want)-3:])
	}
	if others := textsFrom(c.Messages("lobby"), peerOf(t, otherKey)); len(others) != 1 {
		t.Errorf("someone else's line shown %d times, want once", len(others))
	}
	if end.Shown+end.Hidden != history.PageSize+1 || end.Shown != chat.DefaultHistory+1 {
		t.Errorf("catch-up: %+v, want %d shown of %d", end, chat.DefaultHistory+1, history.PageSize+1)
	}
}

func peerOf(t *testing.T, key crypto.PrivKey) string {
	t.Helper()
	id, err := peer.IDFromPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return id.String()
}

// Post publishes a burst with several messages in flight (not one round
// trip each), and still: every message is stored and shown exactly once
// at both ends, in the order posted, and nothing fails.
func TestPostedBurstArrivesOnceAndInOrder(t *testing.T) {
	defer chat.SetHoldFor(time.Minute)() // a late line on a busy machine is not what this tests
	alice, bob := pair(t, chat.WithLimits(chat.Unlimited()))
	for _, c := range []*testutil.Chat{alice, bob} {
		if err := c.Join("lobby"); err != nil {
			t.Fatal(err)
		}
	}
	alice.WaitPeerJoined(t, "lobby", bob.ID())
	const n = 300 // several times what is in flight at once
	var want []string
	for i := range n {
		text := fmt.Sprintf("line %03d", i)
		for {
			_, err := alice.Post("lobby", text)
			if err == nil {
				break
			}
			if !errors.Is(err, chat.ErrBusy) {
				t.Fatal(err)
			}
			time.Sleep(time.Millisecond)
		}
		want = append(want, text)
	}
	for _, c := range []*testutil.Chat{alice, bob} {
		testutil.Eventually(t, fmt.Sprintf("%d messages shown", n), func() bool { return len(c.Messages("lobby")) >= n })
		if got := textsFrom(c.Messages("lobby"), alice.ID().String()); !slices.Equal(got, want) {
			for i := range got {
				if got[i] != want[i] {
					t.Errorf("%s: shown %d lines, want %d in order; at %d: %q", c.Nick(), len(got), n, i, got[i:min(len(got), i+5)])
					break
				}
			}
		}
		if errs := countEvents(c, func(ev chat.Event) bool { _, ok := ev.(chat.Error); return ok }); errs != 0 {
			t.Errorf("%d Error events, want 0", errs)
		}
		msgs, err := c.History("lobby", "", chat.MaxHistoryPage)
		if err != nil {
			t.Fatal(err)
		}
		if len(msgs) != n {
			t.Errorf("%d messages stored, want %d", len(msgs), n)
		}
	}
}

// A line lost on the way (dropped by a full queue, say) is fetched back:
// the line after it is shown once its hold is over, and the room then
// catches up from the author, from its last line shown, and shows the
// lost one as history, once.
func TestLostLineIsFetchedFromItsAuthor(t *testing.T) {
	c := testutil.NewChat(t, testutil.NewNode(t), chat.WithNick("reader"))
	if err := c.Join("lobby"); err != nil {
		t.Fatal(err)
	}
	n := testutil.NewNode(t)
	key := n.Host().Peerstore().PrivKey(n.ID())
	src, err := store.OpenMemory()
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	n.Host().SetStreamHandler(history.ID, history.Server{Store: src, Allowed: func(context.Context, string, peer.ID) bool { return true }}.Handle)
	raw := joinRaw(t, c, "lobby", n)
	start := time.Now().Add(-time.Second)
	// Lines 1 and 3 are published; line 2 only ever reaches the author's
	// own store, once line 3 was shown (so no join catch-up brings it).
	raw.say(t, "lobby", start, 1, 0, "line 1")
	c.WaitMessage(t, "lobby", "line 1")
	raw.say(t, "lobby", start, 3, 2, "line 3")
	c.WaitMessage(t, "lobby", "line 3")
	storeSigned(t, src, key, rawLine(t, "lobby", start, 2, 1, "line 2"))
	if m := c.WaitMessage(t, "lobby", "line 2"); !m.Backfill {
		t.Errorf("the fetched line is not marked as history: %+v", m)
	}
	if got := textsFrom(c.Messages("lobby"), raw.ID().String()); !slices.Equal(got, []string{"line 1", "line 3", "line 2"}) {
		t.Errorf("shown %q, want line 1, line 3, then the fetched line 2, each once", got)
	}
}

// storeSigned keeps data, a room envelope for #lobby signed by key as
// GossipSub signs it, in st: a member's stored history, to serve.
func storeSigned(t *testing.T, st *store.Store, key crypto.PrivKey, data []byte) {
	t.Helper()
	raw, err := proto.Marshal(sign(t, key, roomproto.Topic("lobby"), data))
	if err != nil {
		t.Fatal(err)
	}
	m, err := history.Verify(raw, "lobby", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.AddRoomMessages([]store.RoomMessage{m}); err != nil {
		t.Fatal(err)
	}
}

package chat_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/libp2p/go-msgio/pbio"

	"github.com/parley-chat/parley/chat"
	"github.com/parley-chat/parley/chat/pb"
	"github.com/parley-chat/parley/chat/protocol/history"
	"github.com/parley-chat/parley/internal/store"
	"github.com/parley-chat/parley/internal/testutil"
)

// pair starts two connected chat nodes.
func pair(t *testing.T, opts ...chat.Option) (a, b *testutil.Chat) {
	t.Helper()
	a = testutil.NewChat(t, testutil.NewNode(t), append(opts, chat.WithNick("alice"))...)
	b = testutil.NewChat(t, testutil.NewNode(t), append(opts, chat.WithNick("bob"))...)
	if err := b.Node.Host().Connect(context.Background(), testutil.Info(a.Node)); err != nil {
		t.Fatal(err)
	}
	return a, b
}

// A front end that stops reading (a frozen browser tab, a paused pipe)
// must not stall the node: DMs to it are still acknowledged, room
// messages still shown to the other front ends, and the stuck one is cut
// off with ErrFellBehind.
func TestStuckSubscriberDoesNotStallTheNode(t *testing.T) {
	alice, bob := pair(t)
	stuck, err := alice.Subscribe(chat.WithBuffer(4))
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []*testutil.Chat{alice, bob} {
		if err := c.Join("lobby"); err != nil {
			t.Fatal(err)
		}
	}
	alice.WaitPeerJoined(t, "lobby", bob.ID())
	const n = 40
	var ids []string
	for i := range n {
		id, err := bob.SendDM(alice.ID().String(), fmt.Sprintf("dm %d", i))
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, id)
		if _, err := bob.Send(context.Background(), "lobby", fmt.Sprintf("room %d", i)); err != nil {
			t.Fatal(err)
		}
	}
	for _, id := range ids {
		bob.WaitFor(t, "delivered "+id, func(ev chat.Event) bool { d, ok := ev.(chat.Delivered); return ok && d.ID == id })
	}
	// Every room message reaches the reading front end (some may come a
	// moment late, as catch-up fills what live delivery missed).
	testutil.Eventually(t, fmt.Sprintf("all %d room messages shown", n), func() bool { return len(alice.Messages("lobby")) == n })
	testutil.Eventually(t, "stuck subscriber cut off", func() bool { return errors.Is(stuck.Err(), chat.ErrFellBehind) })
}

// Drain may run while DMs are being sent and peers connect; it returns
// once what was under way is acknowledged (a sync.WaitGroup reused this
// way is a data race that -race reports).
func TestDrainWhileSending(t *testing.T) {
	alice, bob := pair(t)
	var wg sync.WaitGroup
	wg.Add(2)
	var ids []string
	go func() {
		defer wg.Done()
		for i := range 30 {
			id, err := alice.SendDM(bob.ID().String(), fmt.Sprintf("dm %d", i))
			if err != nil {
				t.Error(err)
				return
			}
			ids = append(ids, id)
		}
	}()
	go func() {
		defer wg.Done()
		for range 30 {
			ctx, cancel := context.WithTimeout(context.Background(), testutil.Timeout)
			if err := alice.Drain(ctx); err != nil {
				t.Error(err)
			}
			cancel()
		}
	}()
	wg.Wait()
	ctx, cancel := context.WithTimeout(context.Background(), testutil.Timeout)
	defer cancel()
	if err := alice.Drain(ctx); err != nil {
		t.Fatal(err)
	}
	pending, err := alice.Outbox()
	if err != nil || len(pending) != 0 {
		t.Errorf("after Drain the outbox holds %d DMs (err %v), want 0", len(pending), err)
	}
	for _, id := range ids {
		bob.WaitFor(t, "dm "+id, func(ev chat.Event) bool { d, ok := ev.(chat.DirectMessage); return ok && d.ID == id })
	}
}

// Peers a node merely meets (DHT servers, relays, strangers) cost the DM
// outbox nothing; a peer DMed is forgotten once it left with nothing
// pending.
func TestOutboxKeepsStateOnlyForPeersWithDMs(t *testing.T) {
	alice := testutil.NewChat(t, testutil.NewNode(t), chat.WithNick("alice"))
	for range 8 {
		n := testutil.NewNode(t)
		if err := n.Host().Connect(context.Background(), testutil.Info(alice.Node)); err != nil {
			t.Fatal(err)
		}
	}
	testutil.Eventually(t, "8 connections", func() bool { return len(alice.Node.Host().Network().Peers()) >= 8 })
	if n := chat.OutboxTracked(alice.Service); n != 0 {
		t.Errorf("outbox tracks %d peers after 8 plain connections, want 0", n)
	}
	bobNode := testutil.NewNode(t)
	bob := testutil.NewChat(t, bobNode, chat.WithNick("bob"))
	if err := bobNode.Host().Connect(context.Background(), testutil.Info(alice.Node)); err != nil {
		t.Fatal(err)
	}
	id, err := alice.SendDM(bob.ID().String(), "hi")
	if err != nil {
		t.Fatal(err)
	}
	alice.WaitFor(t, "delivered", func(ev chat.Event) bool { d, ok := ev.(chat.Delivered); return ok && d.ID == id })
	// Bob leaves for good (closing only the connection, either side may
	// dial the other again: the DHT keeps them in each other's tables).
	if err := bobNode.Close(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(testutil.Timeout)
	for chat.OutboxTracked(alice.Service) != 0 {
		if time.Now().After(deadline) {
			t.Fatalf("bob not forgotten after %v: %s", testutil.Timeout, chat.OutboxState(alice.Service, bob.ID()))
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// Only members of a room read its history from a node.
func TestHistoryIsServedOnlyToRoomMembers(t *testing.T) {
	alice := testutil.NewChat(t, testutil.NewNode(t), chat.WithNick("alice"))
	if err := alice.Join("lobby"); err != nil {
		t.Fatal(err)
	}
	if _, err := alice.Send(context.Background(), "lobby", "members only"); err != nil {
		t.Fatal(err)
	}
	outsider := testutil.NewNode(t)
	if err := outsider.Host().Connect(context.Background(), testutil.Info(alice.Node)); err != nil {
		t.Fatal(err)
	}
	st, err := outsider.Host().NewStream(context.Background(), alice.ID(), history.ID)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Reset()
	if err := pbio.NewDelimitedWriter(st).WriteMsg(&pb.HistoryRequest{Room: "lobby", Limit: 10}); err != nil {
		t.Fatal(err)
	}
	st.SetReadDeadline(time.Now().Add(testutil.Timeout))
	var resp pb.HistoryResponse
	err = pbio.NewDelimitedReader(st, history.MaxResponseBytes).ReadMsg(&resp)
	if err == nil || len(resp.GetMessages()) > 0 {
		t.Errorf("a peer outside the room read its history: %d messages, err %v", len(resp.GetMessages()), err)
	}
}

func TestBadOptionsAreRefused(t *testing.T) {
	tests := []struct {
		name string
		opt  chat.Option
	}{
		{"dm idle timeout 0", chat.WithDMIdleTimeout(0)},
		{"negative dm open timeout", chat.WithDMTimeouts(-time.Second, time.Second)},
		{"zero ack timeout", chat.WithDMTimeouts(time.Second, 0)},
		{"negative history", chat.WithHistory(-1)},
		{"negative retention", chat.WithRetention(store.Retention{MaxMessages: -1})},
		{"empty nick", chat.WithNick("")},
	}
	n := testutil.NewNode(t)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := chat.New(n.Host(), tt.opt)
			if err == nil {
				s.Close()
				t.Fatal("accepted")
			}
		})
	}
}

// History pages back through a room, oldest first within a page.
func TestHistoryPages(t *testing.T) {
	alice := testutil.NewChat(t, testutil.NewNode(t), chat.WithNick("alice"))
	if err := alice.Join("lobby"); err != nil {
		t.Fatal(err)
	}
	for i := range 5 {
		if _, err := alice.Send(context.Background(), "lobby", fmt.Sprint(i)); err != nil {
			t.Fatal(err)
		}
	}
	texts := func(ms []chat.Message) (out []string) {
		for _, m := range ms {
			out = append(out, m.Text)
		}
		return out
	}
	last, err := alice.History("lobby", "", 2)
	if err != nil || fmt.Sprint(texts(last)) != "[3 4]" {
		t.Fatalf("newest page: %v, %v; want [3 4]", texts(last), err)
	}
	older, err := alice.History("lobby", last[0].ID, 10)
	if err != nil || fmt.Sprint(texts(older)) != "[0 1 2]" {
		t.Fatalf("page before %q: %v, %v; want [0 1 2]", last[0].Text, texts(older), err)
	}
	if _, err := alice.History("lobby", "nope", 10); err == nil {
		t.Error("paging from an unknown message ID succeeded")
	}
	if _, err := alice.History("lobby", "", 0); err == nil {
		t.Error("a zero limit was accepted")
	}
}

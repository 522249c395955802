package chat_test

import (
	"context"
	"errors"
	"fmt"
	"math"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p"
	pubsub "github.com/libp2p/go-libp2p-pubsub"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"
	"github.com/libp2p/go-libp2p/p2p/transport/tcp"
	"github.com/libp2p/go-msgio/pbio"
	"google.golang.org/protobuf/proto"

	"github.com/parley-chat/parley/chat"
	"github.com/parley-chat/parley/chat/pb"
	"github.com/parley-chat/parley/chat/protocol/history"
	roomproto "github.com/parley-chat/parley/chat/protocol/room"
	"github.com/parley-chat/parley/chat/storage"
	"github.com/parley-chat/parley/internal/testutil"
	"github.com/parley-chat/parley/node"
)

// hostileMember is a peer in a room with nothing but GossipSub: what a
// hostile peer runs.
type hostileMember struct {
	node  *node.Node
	ps    *pubsub.PubSub
	ctx   context.Context
	topic *pubsub.Topic
	sub   *pubsub.Subscription
}

func newHostileMember(t *testing.T, ctx context.Context, room string, opts ...pubsub.Option) *hostileMember {
	t.Helper()
	n := testutil.NewNode(t)
	ps, err := pubsub.NewGossipSub(ctx, n.Host(), append([]pubsub.Option{pubsub.WithFloodPublish(true)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	m := &hostileMember{node: n, ps: ps, ctx: ctx}
	m.join(t, room)
	return m
}

func (m *hostileMember) join(t *testing.T, room string) {
	t.Helper()
	topic, err := m.ps.Join(roomproto.Topic(room))
	if err != nil {
		t.Fatal(err)
	}
	// Subscribing is what makes this peer a member in others' eyes.
	sub, err := topic.Subscribe()
	if err != nil {
		t.Fatal(err)
	}
	go func() {
		for {
			if _, err := sub.Next(m.ctx); err != nil {
				return
			}
		}
	}()
	m.topic, m.sub = topic, sub
	t.Cleanup(m.leave)
}

// leave unsubscribes: pubsub tells the others.
func (m *hostileMember) leave() {
	if m.sub != nil {
		m.sub.Cancel()
		m.topic.Close()
		m.sub = nil
	}
}

// A member that serves endless valid history, and leaves and comes back
// to be asked again, adds at most its catch-up budget (plus one page) to
// the victim's store, and the room goes on working.
func TestEndlessHistoryIsBoundedPerPeer(t *testing.T) {
	const budget = 1 << 20
	limits := chat.DefaultLimits()
	limits.CatchUpBytes = budget
	honest := testutil.NewChat(t, testutil.NewNode(t), chat.WithNick("honest"), chat.WithLimits(limits))
	if err := honest.Join("lobby"); err != nil {
		t.Fatal(err)
	}
	victim := testutil.NewChat(t, testutil.NewNode(t), chat.WithNick("victim"), chat.WithLimits(limits))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	rogue := newHostileMember(t, ctx, "lobby")
	key := rogue.node.Host().Peerstore().PrivKey(rogue.node.ID())
	var asked, served atomic.Int64
	text := strings.Repeat("x", 4000)
	rogue.node.Host().SetStreamHandler(history.ID, func(st network.Stream) {
		defer st.Close()
		var req pb.HistoryRequest
		if err := pbio.NewDelimitedReader(st, 1<<10).ReadMsg(&req); err != nil {
			st.Reset()
			return
		}
		asked.Add(1)
		// A full page of fresh, validly signed messages after whatever
		// was asked for, and always "more".
		from := max(req.GetAfterSentAtMs()+1, time.Now().Add(-time.Minute).UnixMilli())
		resp := &pb.HistoryResponse{More: true}
		for i := range history.PageSize {
			id := fmt.Sprintf("%032x", served.Add(1))
			env := sealed(pb.Envelope_MESSAGE, id, "lobby", "mallory", text, from+int64(i))
			raw, err := proto.Marshal(sign(t, key, roomproto.Topic("lobby"), env))
			if err != nil {
				st.Reset()
				return
			}
			resp.Messages = append(resp.Messages, raw)
		}
		pbio.NewDelimitedWriter(st).WriteMsg(resp)
	})
	if err := victim.Join("lobby"); err != nil {
		t.Fatal(err)
	}
	for _, n := range []*node.Node{rogue.node, honest.Node} {
		if err := victim.Node.Host().Connect(ctx, testutil.Info(n)); err != nil {
			t.Fatal(err)
		}
	}
	victim.WaitFor(t, "the rogue's history stored", func(ev chat.Event) bool {
		h, ok := ev.(chat.HistoryShown)
		return ok && h.Room == "lobby" && h.CaughtUp
	})
	// Leaving and coming back made a peer "returning", and each return
	// used to buy it a fresh catch-up.
	for i := range 5 {
		rogue.leave()
		testutil.Eventually(t, "rogue gone", func() bool {
			return countEvents(victim, func(ev chat.Event) bool {
				l, ok := ev.(chat.PeerLeft)
				return ok && l.Peer == rogue.node.ID()
			}) == i+1
		})
		rogue.join(t, "lobby")
		testutil.Eventually(t, "rogue back", func() bool {
			return countEvents(victim, func(ev chat.Event) bool {
				j, ok := ev.(chat.PeerJoined)
				return ok && j.Peer == rogue.node.ID()
			}) == i+2
		})
	}
	// The room still works.
	if _, err := honest.Send(ctx, "lobby", "still here"); err != nil {
		t.Fatal(err)
	}
	victim.WaitMessage(t, "lobby", "still here")

	stored := storedBytes(t, victim, "lobby")
	page := history.PageSize * (len(text) + 300)
	t.Logf("rogue asked %d times, served %d messages; victim stored %d KB of them (budget %d KB + one page %d KB)",
		asked.Load(), served.Load(), stored>>10, budget>>10, page>>10)
	if stored > budget+page {
		t.Errorf("victim stored %d KB from one peer, more than its budget %d KB and one page", stored>>10, budget>>10)
	}
}

// History requests beyond a peer's rate are refused; another peer is
// still served.
func TestHistoryRequestsAreRateLimitedPerPeer(t *testing.T) {
	limits := chat.DefaultLimits()
	limits.HistoryRate, limits.HistoryBurst = 0.1, 5
	victim := testutil.NewChat(t, testutil.NewNode(t), chat.WithNick("victim"), chat.WithLimits(limits))
	if err := victim.Join("lobby"); err != nil {
		t.Fatal(err)
	}
	if _, err := victim.Send(context.Background(), "lobby", "something to serve"); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	greedy := newHostileMember(t, ctx, "lobby")
	other := newHostileMember(t, ctx, "lobby")
	for _, m := range []*hostileMember{greedy, other} {
		if err := m.node.Host().Connect(ctx, testutil.Info(victim.Node)); err != nil {
			t.Fatal(err)
		}
		victim.WaitPeerJoined(t, "lobby", m.node.ID())
	}
	ok := 0
	for range 50 {
		if _, err := history.Fetch(ctx, greedy.node.Host(), victim.ID(), "lobby", storage.Cursor{}); err == nil {
			ok++
		}
	}
	if ok > limits.HistoryBurst+1 {
		t.Errorf("%d of 50 requests served to one peer, want about its burst of %d", ok, limits.HistoryBurst)
	}
	if ok == 0 {
		t.Error("no request served at all")
	}
	resp, err := history.Fetch(ctx, other.node.Host(), victim.ID(), "lobby", storage.Cursor{})
	if err != nil || len(resp.GetMessages()) != 1 {
		t.Errorf("another peer: %v, %d messages; want the one message", err, len(resp.GetMessages()))
	}
}

func countEvents(c *testutil.Chat, f func(chat.Event) bool) int {
	n := 0
	for _, ev := range c.Events() {
		if f(ev) {
			n++
		}
	}
	return n
}

// storedBytes is the size of the signed messages of room in c's store.
func storedBytes(t *testing.T, c *testutil.Chat, room string) int {
	t.Helper()
	total, before := 0, ""
	for range 1000 {
		page, err := c.History(room, before, chat.MaxHistoryPage)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range page {
			total += len(m.Text) + 300 // text plus the signed envelope around it
		}
		if len(page) < chat.MaxHistoryPage {
			return total
		}
		before = page[0].ID
	}
	t.Fatal("history did not end")
	return 0
}

// A member flooding valid messages has everything past its burst ignored
// (shown nowhere, forwarded nowhere), is reported once, and is graylisted
// within seconds, while honest members keep talking.
func TestFlooderIsIgnoredAndGraylisted(t *testing.T) {
	const flood = 3000 // bounded
	// Low limits, so that even a loaded machine, where the flooder signs
	// only a few hundred messages a second, floods far past them.
	limit := chat.DefaultLimits()
	limit.AuthorRate, limit.AuthorBurst = 2, 10
	victim := testutil.NewChat(t, testutil.NewNode(t), chat.WithNick("victim"), chat.WithLimits(limit))
	honest := testutil.NewChat(t, testutil.NewNode(t), chat.WithNick("honest"), chat.WithLimits(limit))
	for _, c := range []*testutil.Chat{victim, honest} {
		if err := c.Join("lobby"); err != nil {
			t.Fatal(err)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if err := honest.Node.Host().Connect(ctx, testutil.Info(victim.Node)); err != nil {
		t.Fatal(err)
	}
	victim.WaitPeerJoined(t, "lobby", honest.ID())
	flooder := newHostileMember(t, ctx, "lobby", pubsub.WithPeerOutboundQueueSize(flood))
	if err := flooder.node.Host().Connect(ctx, testutil.Info(victim.Node)); err != nil {
		t.Fatal(err)
	}
	victim.WaitPeerJoined(t, "lobby", flooder.node.ID())
	testutil.Eventually(t, "flooder sees the victim in the room", func() bool { return len(flooder.topic.ListPeers()) > 0 })

	// Published from as many goroutines as there are cores, in the
	// background: signing each message is most of a flood's cost.
	start := time.Now()
	var next atomic.Int64
	var wg sync.WaitGroup
	for range runtime.GOMAXPROCS(0) {
		wg.Go(func() {
			for i := next.Add(1); i <= flood && ctx.Err() == nil; i = next.Add(1) {
				env := sealed(pb.Envelope_MESSAGE, fmt.Sprintf("%032x", i), "lobby", "flooder", fmt.Sprintf("spam %d", i), time.Now().UnixMilli())
				flooder.topic.Publish(ctx, env) // fails only once the test ends
			}
		})
	}
	defer wg.Wait()
	defer cancel()
	// How fast the flood comes depends on the machine (the flooder signs
	// each message): on a loaded one it trickles in over many seconds.
	testutil.EventuallyWithin(t, time.Minute, "flooder graylisted", func() bool {
		s, ok := victim.PeerScore(flooder.node.ID())
		return ok && s < chat.GraylistThreshold
	})
	score, _ := victim.PeerScore(flooder.node.ID())
	graylisted := time.Since(start)

	// Honest members go on as before, both ways.
	if _, err := honest.Send(ctx, "lobby", "honest after the flood"); err != nil {
		t.Fatal(err)
	}
	victim.WaitMessage(t, "lobby", "honest after the flood")
	if _, err := victim.Send(ctx, "lobby", "victim after the flood"); err != nil {
		t.Fatal(err)
	}
	honest.WaitMessage(t, "lobby", "victim after the flood")

	shown := len(textsFrom(victim.Messages("lobby"), flooder.node.ID().String()))
	allowed := limit.AuthorBurst + int(limit.AuthorRate*graylisted.Seconds()) + 1
	forwarded := len(textsFrom(honest.Messages("lobby"), flooder.node.ID().String()))
	notices := countEvents(victim, func(ev chat.Event) bool {
		n, ok := ev.(chat.Notice)
		return ok && strings.Contains(n.Text, "Ignoring messages from") && strings.Contains(n.Text, "#lobby")
	})
	t.Logf("flood of %d: victim showed %d, honest got %d through it; graylisted after %v (score %.0f); %d notice(s)",
		flood, shown, forwarded, graylisted.Round(time.Millisecond), score, notices)
	if shown > allowed {
		t.Errorf("victim showed %d of the flood, want at most its burst and rate (%d)", shown, allowed)
	}
	if forwarded > allowed {
		t.Errorf("honest got %d of the flood through the victim, want at most %d", forwarded, allowed)
	}
	if notices != 1 {
		t.Errorf("%d notices about the flood, want exactly one", notices)
	}
}

// A member sending malformed messages is graylisted: what it sends after
// that, valid or not, is not even validated.
func TestInvalidSenderIsGraylisted(t *testing.T) {
	victim := testutil.NewChat(t, testutil.NewNode(t), chat.WithNick("victim"))
	if err := victim.Join("lobby"); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	rogue := newHostileMember(t, ctx, "lobby")
	if err := rogue.node.Host().Connect(ctx, testutil.Info(victim.Node)); err != nil {
		t.Fatal(err)
	}
	victim.WaitPeerJoined(t, "lobby", rogue.node.ID())
	testutil.Eventually(t, "rogue sees the victim in the room", func() bool { return len(rogue.topic.ListPeers()) > 0 })
	for i := range 20 {
		if err := rogue.topic.Publish(ctx, fmt.Appendf(nil, "garbage %d \xff", i)); err != nil {
			t.Fatal(err)
		}
	}
	testutil.Eventually(t, "rogue graylisted", func() bool {
		s, ok := victim.PeerScore(rogue.node.ID())
		return ok && s < chat.GraylistThreshold
	})
	rejected := victim.Rejected()
	good := sealed(pb.Envelope_MESSAGE, fmt.Sprintf("%032x", 99), "lobby", "rogue", "valid but too late", time.Now().UnixMilli())
	if err := rogue.topic.Publish(ctx, good); err != nil {
		t.Fatal(err)
	}
	// The victim still works for others; then nothing of the rogue's.
	if _, err := victim.Send(ctx, "lobby", "marker"); err != nil {
		t.Fatal(err)
	}
	victim.WaitMessage(t, "lobby", "marker")
	if got := textsFrom(victim.Messages("lobby"), rogue.node.ID().String()); len(got) != 0 {
		t.Errorf("a graylisted peer's message was shown: %q", got)
	}
	if victim.Rejected() < 11 || victim.Rejected() != rejected {
		t.Errorf("rejected %d, then %d: want ≥ 11 and nothing more validated after graylisting", rejected, victim.Rejected())
	}
}

// A peer sending DMs faster than the limit has the excess refused (not
// acknowledged: it stays queued on its side), the user hears of it once,
// and another peer's DM goes through at once.
func TestDMSpamIsSlowedAndStaysQueuedOnItsSide(t *testing.T) {
	limits := chat.DefaultLimits()
	limits.DMRate, limits.DMBurst = 0.5, 5
	victim := testutil.NewChat(t, testutil.NewNode(t), chat.WithNick("victim"), chat.WithLimits(limits))
	spammer := testutil.NewChat(t, testutil.NewNode(t), chat.WithNick("spammer"), chat.WithLimits(chat.Unlimited()))
	friend := testutil.NewChat(t, testutil.NewNode(t), chat.WithNick("friend"))
	ctx := context.Background()
	for _, c := range []*testutil.Chat{spammer, friend} {
		if err := c.Node.Host().Connect(ctx, testutil.Info(victim.Node)); err != nil {
			t.Fatal(err)
		}
	}
	const spam = 40
	for i := range spam {
		if _, err := spammer.SendDM(victim.ID().String(), fmt.Sprintf("spam %d", i)); err != nil {
			t.Fatal(err)
		}
	}
	spammer.WaitFor(t, "a refused DM queued", func(ev chat.Event) bool { _, ok := ev.(chat.Queued); return ok })
	start := time.Now()
	id, err := friend.SendDM(victim.ID().String(), "hello from a friend")
	if err != nil {
		t.Fatal(err)
	}
	friend.WaitFor(t, "friend's DM delivered", func(ev chat.Event) bool { d, ok := ev.(chat.Delivered); return ok && d.ID == id })
	got := countEvents(victim, func(ev chat.Event) bool { d, ok := ev.(chat.DirectMessage); return ok && d.From == spammer.ID() })
	pending, err := spammer.Outbox()
	if err != nil {
		t.Fatal(err)
	}
	notices := countEvents(victim, func(ev chat.Event) bool {
		n, ok := ev.(chat.Notice)
		return ok && strings.HasPrefix(n.Text, "Refusing DMs from spammer")
	})
	t.Logf("%d spam DMs: victim took %d, %d still queued at the spammer; the friend's DM took %v; %d notice(s)",
		spam, got, len(pending), time.Since(start).Round(time.Millisecond), notices)
	if allowed := limits.DMBurst + int(limits.DMRate*time.Since(start).Seconds()) + 2; got > allowed {
		t.Errorf("victim took %d spam DMs, want at most about %d", got, allowed)
	}
	if got+len(pending) < spam {
		t.Errorf("%d taken + %d queued < %d sent: DMs were lost", got, len(pending), spam)
	}
	if notices != 1 {
		t.Errorf("%d notices about the spam, want one", notices)
	}
}

// What one peer's DMs may take on disk is bounded; past it its DMs are
// refused and other peers' still arrive.
func TestInboxQuotaPerPeer(t *testing.T) {
	limits := chat.DefaultLimits()
	limits.InboxBytes = 2200 // two 1,000-byte DMs and their nicks
	victim := testutil.NewChat(t, testutil.NewNode(t), chat.WithNick("victim"), chat.WithLimits(limits))
	hog := testutil.NewChat(t, testutil.NewNode(t), chat.WithNick("hog"))
	friend := testutil.NewChat(t, testutil.NewNode(t), chat.WithNick("friend"))
	ctx := context.Background()
	for _, c := range []*testutil.Chat{hog, friend} {
		if err := c.Node.Host().Connect(ctx, testutil.Info(victim.Node)); err != nil {
			t.Fatal(err)
		}
	}
	big := strings.Repeat("x", 1000)
	var ids []string
	for range 4 {
		id, err := hog.SendDM(victim.ID().String(), big)
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, id)
	}
	hog.WaitFor(t, "second delivered", func(ev chat.Event) bool { d, ok := ev.(chat.Delivered); return ok && d.ID == ids[1] })
	hog.WaitFor(t, "third refused", func(ev chat.Event) bool { q, ok := ev.(chat.Queued); return ok && q.ID == ids[2] })
	victim.WaitFor(t, "the notice", func(ev chat.Event) bool {
		n, ok := ev.(chat.Notice)
		return ok && strings.Contains(n.Text, "Refusing DMs from hog") && strings.Contains(n.Text, "as much as one peer may")
	})
	id, err := friend.SendDM(victim.ID().String(), big)
	if err != nil {
		t.Fatal(err)
	}
	friend.WaitFor(t, "friend's DM delivered", func(ev chat.Event) bool { d, ok := ev.(chat.Delivered); return ok && d.ID == id })
	if got := countEvents(victim, func(ev chat.Event) bool { d, ok := ev.(chat.DirectMessage); return ok && d.From == hog.ID() }); got != 2 {
		t.Errorf("victim took %d of the hog's DMs, want 2 (its quota)", got)
	}
}

// The outbox to one peer is bounded: past it SendDM says so plainly.
func TestOutboxPerPeerIsBounded(t *testing.T) {
	limits := chat.DefaultLimits()
	limits.OutboxPerPeer = 3
	alice := testutil.NewChat(t, testutil.NewNode(t), chat.WithNick("alice"), chat.WithLimits(limits))
	away := testutil.NewNode(t).ID() // a peer that is never reachable
	for i := range 3 {
		if _, err := alice.SendDM(away.String(), fmt.Sprint("queued ", i)); err != nil {
			t.Fatal(err)
		}
	}
	_, err := alice.SendDM(away.String(), "one too many")
	if !errors.Is(err, chat.ErrOutboxFull) || !strings.Contains(err.Error(), "3 DMs") {
		t.Errorf("4th DM: %v; want ErrOutboxFull saying 3 DMs are waiting", err)
	}
	if pending, _ := alice.Outbox(); len(pending) != 3 {
		t.Errorf("%d DMs queued, want the 3 accepted", len(pending))
	}
}

// Many idle connections from fresh identities and many silent DM streams
// do not lock out honest peers: a newcomer still connects, and members
// keep exchanging room messages and DMs.
func TestHeldConnectionsAndSilentStreamsLeaveRoomForHonestPeers(t *testing.T) {
	const (
		attempts  = 1000 // connection attempts, each from a fresh identity; the victim takes 30 inbound
		attackers = 4    // peers opening silent streams
		silent    = 125  // DM streams each opens and never writes to: 500 in all
	)
	victim := testutil.NewChat(t, testutil.NewNode(t, node.WithConnLimits(10, 20, 60)), chat.WithNick("victim"))
	member := testutil.NewChat(t, testutil.NewNode(t), chat.WithNick("member"))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if err := member.Node.Host().Connect(ctx, testutil.Info(victim.Node)); err != nil {
		t.Fatal(err)
	}
	for _, c := range []*testutil.Chat{victim, member} {
		if err := c.Join("lobby"); err != nil {
			t.Fatal(err)
		}
	}
	victim.WaitPeerJoined(t, "lobby", member.ID())

	// Silent DM streams from a few peers, then fresh identities that
	// connect and sit (those refused go away).
	var silentPeers []*node.Node
	opened := 0
	for range attackers {
		a := testutil.NewNode(t)
		if err := a.Host().Connect(ctx, testutil.Info(victim.Node)); err != nil {
			t.Fatal(err)
		}
		silentPeers = append(silentPeers, a)
		for range silent {
			st, err := a.Host().NewStream(ctx, victim.ID(), chat.DMProtocol)
			if err != nil {
				break
			}
			defer st.Reset()
			opened++
		}
	}
	connected := 0
	for range attempts {
		h, err := libp2p.New(libp2p.NoListenAddrs, libp2p.Transport(tcp.NewTCPTransport), libp2p.DisableRelay())
		if err != nil {
			t.Fatal(err)
		}
		cctx, ccancel := context.WithTimeout(ctx, 2*time.Second)
		if h.Connect(cctx, testutil.Info(victim.Node)) == nil {
			connected++
			t.Cleanup(func() { h.Close() })
		} else {
			h.Close()
		}
		ccancel()
	}
	t.Logf("%d of %d connection attempts from fresh identities got in and sit idle; %d silent DM streams opened by %d peers",
		connected, attempts, opened, attackers)
	testutil.Eventually(t, "the victim holds few of the silent streams", func() bool {
		n := 0
		for _, a := range silentPeers {
			for _, c := range victim.Node.Host().Network().ConnsToPeer(a.ID()) {
				for _, st := range c.GetStreams() {
					if st.Protocol() == chat.DMProtocol {
						n++
					}
				}
			}
		}
		return n <= 4*attackers
	})

	// A newcomer connects and everyone talks.
	newcomer := testutil.NewChat(t, testutil.NewNode(t), chat.WithNick("newcomer"))
	// The victim closes idle connections to keep inbound slots free (node:
	// keepInboundRoom), so the newcomer gets in well before their grace
	// period (10 s) is over; a refused dial backs off for a few seconds.
	start := time.Now()
	for {
		cctx, ccancel := context.WithTimeout(ctx, time.Second)
		err := newcomer.Node.Host().Connect(cctx, testutil.Info(victim.Node))
		ccancel()
		if err == nil {
			break
		}
		if time.Since(start) > 40*time.Second {
			t.Fatalf("the newcomer could not connect for %v: %v", time.Since(start).Round(time.Second), err)
		}
		select {
		case <-time.After(250 * time.Millisecond): // a retry, as a dialing peer would
		case <-ctx.Done():
		}
	}
	t.Logf("the newcomer connected after %v", time.Since(start).Round(time.Millisecond))
	if _, err := member.Send(ctx, "lobby", "room still works"); err != nil {
		t.Fatal(err)
	}
	victim.WaitMessage(t, "lobby", "room still works")
	for _, c := range []*testutil.Chat{member, newcomer} {
		id, err := c.SendDM(victim.ID().String(), "dm still works")
		if err != nil {
			t.Fatal(err)
		}
		c.WaitFor(t, "DM delivered", func(ev chat.Event) bool { d, ok := ev.(chat.Delivered); return ok && d.ID == id })
	}
}

func TestWithLimitsRefusesNonsense(t *testing.T) {
	tests := []struct {
		name  string
		edit  func(*chat.Limits)
		valid bool
	}{
		{"defaults", func(*chat.Limits) {}, true},
		{"unlimited rates", func(l *chat.Limits) { *l = chat.Unlimited() }, true},
		{"zero author rate", func(l *chat.Limits) { l.AuthorRate = 0 }, false},
		{"NaN author rate", func(l *chat.Limits) { l.AuthorRate = math.NaN() }, false},
		{"no catch-up budget", func(l *chat.Limits) { l.CatchUpBytes = 0 }, false},
		{"negative history burst", func(l *chat.Limits) { l.HistoryBurst = -1 }, false},
		{"no inbox", func(l *chat.Limits) { l.InboxBytes = 0 }, false},
		{"no outbox", func(l *chat.Limits) { l.OutboxPerPeer = 0 }, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l := chat.DefaultLimits()
			tt.edit(&l)
			c, err := chat.New(testutil.NewNode(t).Host(), chat.WithLimits(l))
			if err == nil {
				c.Close()
			}
			if (err == nil) != tt.valid {
				t.Errorf("chat.New with %s: %v, want valid=%t", tt.name, err, tt.valid)
			}
		})
	}
}

// A room whose members all join at once converges to full delivery
// without a catch-up or presence storm: each member catches up from a
// few of the members it meets (and any relay), not from all of them, and
// announces itself once (twice if the first reached no one), not once
// per member it meets; so both grow linearly with the room, not
// quadratically.
// The members join first and find each other one link at a time, as a
// room forms when everyone restarts.
func TestRoomJoiningAtOnceHasNoCatchUpStorm(t *testing.T) {
	const n = 30
	var requests atomic.Int64
	members := make([]*testutil.Chat, n)
	presences := &presenceCounter{ids: make(map[string]peer.ID)}
	hooks := chat.Hooks{HistoryRequested: func(string) { requests.Add(1) }, PubSubTracer: presences}
	for i := range members {
		members[i] = testutil.NewChat(t, testutil.NewNode(t), chat.WithNick(fmt.Sprintf("m%02d", i)), chat.WithHooks(hooks))
	}
	var wg sync.WaitGroup
	for _, m := range members {
		wg.Go(func() {
			if err := m.Join("lobby"); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	ctx := context.Background()
	// A ring with chords: every member has 8 links.
	for i, m := range members {
		for _, j := range []int{(i + 1) % n, (i + 3) % n, (i + 7) % n, (i + 11) % n} {
			// A loaded machine may time a handshake out: dial again.
			var err error
			for range 3 {
				if err = m.Node.Host().Connect(network.WithForceDirectDial(ctx, "retry"), testutil.Info(members[j].Node)); err == nil {
					break
				}
			}
			if err != nil {
				t.Fatal(err)
			}
		}
	}
	for _, m := range members {
		testutil.Eventually(t, "a mesh", func() bool { return len(m.MeshPeers("lobby")) > 0 })
	}
	for i, m := range members {
		if _, err := m.Send(ctx, "lobby", fmt.Sprintf("hello from %02d", i)); err != nil {
			t.Fatal(err)
		}
	}
	for _, m := range members {
		testutil.EventuallyWithin(t, time.Minute, "every member's line", func() bool {
			return len(m.Messages("lobby")) >= n
		})
	}
	announced := presences.count()
	t.Logf("%d members joining at once: %d history requests, %d presences (linear bounds %d and %d; all from all would be up to %d each)",
		n, requests.Load(), announced, n*4, n*2, n*(n-1))
	if got := requests.Load(); got > int64(n*4) {
		t.Errorf("%d history requests for %d members joining at once, want at most %d (a few per member)", got, n, n*4)
	}
	if announced > int64(n*2) {
		t.Errorf("%d presences for %d members joining at once, want at most %d (one per member, two where the first reached no one)", announced, n, n*2)
	}
}

// presenceCounter counts the presences delivered anywhere in the room
// (by ID: each once, however many members got it).
type presenceCounter struct {
	mu  sync.Mutex
	ids map[string]peer.ID // presence ID → author
}

func (c *presenceCounter) DeliverMessage(msg *pubsub.Message) {
	var env pb.Envelope
	if proto.Unmarshal(msg.GetData(), &env) == nil && env.GetKind() == pb.Envelope_PRESENCE {
		c.mu.Lock()
		c.ids[env.GetId()] = msg.GetFrom()
		c.mu.Unlock()
	}
}

func (c *presenceCounter) count() int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return int64(len(c.ids))
}

// authors counts the presences by author.
func (c *presenceCounter) authors() map[peer.ID]int {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make(map[peer.ID]int)
	for _, p := range c.ids {
		out[p]++
	}
	return out
}

func (*presenceCounter) OnNewOutboundStream(peer.ID, protocol.ID) {}
func (*presenceCounter) OnClosedOutboundStream(peer.ID)           {}
func (*presenceCounter) Join(string)                              {}
func (*presenceCounter) Leave(string)                             {}
func (*presenceCounter) Graft(peer.ID, string)                    {}
func (*presenceCounter) Prune(peer.ID, string)                    {}
func (*presenceCounter) ValidateMessage(*pubsub.Message)          {}
func (*presenceCounter) RejectMessage(*pubsub.Message, string)    {}
func (*presenceCounter) DuplicateMessage(*pubsub.Message)         {}
func (*presenceCounter) ThrottlePeer(peer.ID)                     {}
func (*presenceCounter) RecvRPC(*pubsub.RPC)                      {}
func (*presenceCounter) SendRPC(*pubsub.RPC, peer.ID)             {}
func (*presenceCounter) DropRPC(*pubsub.RPC, peer.ID)             {}
func (*presenceCounter) UndeliverableMessage(*pubsub.Message)     {}

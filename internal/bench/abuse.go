package bench

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	pubsub "github.com/libp2p/go-libp2p-pubsub"
	pubsubpb "github.com/libp2p/go-libp2p-pubsub/pb"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-msgio/pbio"
	ma "github.com/multiformats/go-multiaddr"
	"google.golang.org/protobuf/proto"

	"github.com/parley-chat/parley/bridge"
	"github.com/parley-chat/parley/chat"
	"github.com/parley-chat/parley/chat/pb"
	"github.com/parley-chat/parley/chat/protocol/history"
	roomproto "github.com/parley-chat/parley/chat/protocol/room"
	"github.com/parley-chat/parley/internal/store"
	"github.com/parley-chat/parley/node"
)

// AbuseConfig bounds the abuse benchmarks.
type AbuseConfig struct {
	FloodRate     int           // valid messages per second from the flooder
	FloodFor      time.Duration // how long it floods
	HonestEvery   time.Duration // an honest line every so often, quiet and under the flood
	Subscriptions int           // topics the hostile peer subscribes to at the relay
	Timeout       time.Duration
}

// AbuseResult is what a hostile peer achieved against default limits.
//
// Quiet and Flooded are honest room-message delivery latencies (send →
// the victim's event) without and during the flood; Graylisted is from
// the flood's start until the victim's score for the flooder is below
// chat.GraylistThreshold (0 if it never was); FloodShown is how many of
// the flood's messages the victim showed. HistoryGrowth is how much the
// victim's store (database files on disk) grew while one peer served it
// endless valid history, against chat.DefaultLimits().CatchUpBytes.
// RelayHeap is the relay process's heap in use: idle, with the hostile
// peer's subscriptions, and after it left.
type AbuseResult struct {
	AbuseConfig
	Quiet, Flooded Dist
	Graylisted     time.Duration
	FloodSent      int
	FloodShown     int
	HistoryGrowth  int64
	HistoryBudget  int64
	RelayHeap      [3]uint64
	RelayTopics    int
	RelayReleased  bool // the rooms carried for it were released
}

// RunAbuse runs the floods in-process on loopback.
func RunAbuse(ctx context.Context, cfg AbuseConfig) (AbuseResult, error) {
	res := AbuseResult{AbuseConfig: cfg, HistoryBudget: int64(chat.DefaultLimits().CatchUpBytes)}
	if err := res.flood(ctx); err != nil {
		return res, fmt.Errorf("flood: %w", err)
	}
	if err := res.endlessHistory(ctx); err != nil {
		return res, fmt.Errorf("endless history: %w", err)
	}
	if err := res.subscriptionFlood(ctx); err != nil {
		return res, fmt.Errorf("subscription flood: %w", err)
	}
	return res, nil
}

func quietLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// flood: victim and honest member chat; the flooder publishes at
// FloodRate for FloodFor.
func (res *AbuseResult) flood(ctx context.Context) error {
	hs, err := NewHosts(3)
	if err != nil {
		return err
	}
	defer hs.Close()
	victim, err := chat.New(hs.H[0], chat.WithLogger(quietLogger()))
	if err != nil {
		return err
	}
	defer victim.Close()
	honest, err := chat.New(hs.H[1], chat.WithLogger(quietLogger()))
	if err != nil {
		return err
	}
	defer honest.Close()
	fctx, cancel := context.WithCancel(ctx)
	defer cancel()
	for _, c := range []*chat.Service{victim, honest} {
		if err := c.Join(roomName); err != nil {
			return err
		}
	}
	topic, leave, err := rawMember(fctx, hs.H[2], pubsub.WithFloodPublish(true), pubsub.WithPeerOutboundQueueSize(1<<14))
	if err != nil {
		return err
	}
	defer leave()
	for _, h := range hs.H[1:] {
		if err := h.Connect(ctx, peer.AddrInfo{ID: hs.H[0].ID(), Addrs: hs.H[0].Addrs()}); err != nil {
			return err
		}
	}
	events, err := victim.Subscribe(chat.WithBuffer(1 << 16))
	if err != nil {
		return err
	}
	defer events.Close()
	// The victim's reader: when each honest line and flood line arrived.
	var mu sync.Mutex
	arrived := make(map[string]time.Time)
	flooder := hs.H[2].ID()
	go func() {
		for st := range events.C() {
			if m, ok := st.Event.(chat.Message); ok {
				mu.Lock()
				if m.From == flooder {
					res.FloodShown++
				} else {
					arrived[m.Text] = time.Now()
				}
				mu.Unlock()
			}
		}
	}()
	deadline := time.Now().Add(res.Timeout)
	for len(topic.ListPeers()) == 0 || len(victim.MeshPeers(roomName)) == 0 {
		if time.Now().After(deadline) {
			return errors.New("the room did not form")
		}
		time.Sleep(50 * time.Millisecond)
	}
	// Honest lines, timed, in the background for both phases.
	type sent struct {
		text string
		at   time.Time
	}
	var lines []sent
	speak := func(phase string, d time.Duration) error {
		tick := time.NewTicker(res.HonestEvery)
		defer tick.Stop()
		end := time.Now().Add(d)
		for i := 0; time.Now().Before(end); i++ {
			text := fmt.Sprintf("%s %d", phase, i)
			at := time.Now()
			if _, err := honest.Send(ctx, roomName, text); err != nil {
				return err
			}
			lines = append(lines, sent{text, at})
			select {
			case <-tick.C:
			case <-ctx.Done():
				return ctx.Err()
			}
		}
		return nil
	}
	if err := speak("quiet", res.FloodFor); err != nil {
		return err
	}
	quiet := len(lines)
	floodStart := time.Now()
	floodDone := make(chan error, 1)
	go func() {
		per := res.FloodRate / 100 // in batches every 10 ms
		tick := time.NewTicker(10 * time.Millisecond)
		defer tick.Stop()
		for n := 0; time.Since(floodStart) < res.FloodFor; {
			for range per {
				env := &pb.Envelope{Kind: pb.Envelope_MESSAGE, Id: fmt.Sprintf("%032x", n+1), Room: roomName, SentAtMs: time.Now().UnixMilli(), Lamport: uint64(n + 1)}
				roomproto.SealBody(env, &pb.Body{Nick: "flooder", Text: fmt.Sprintf("flood %d", n)})
				data, _ := proto.Marshal(env)
				if err := topic.Publish(fctx, data); err != nil {
					floodDone <- err
					return
				}
				n++
				res.FloodSent = n
			}
			<-tick.C
		}
		floodDone <- nil
	}()
	watchDone := make(chan struct{})
	go func() {
		defer close(watchDone)
		for time.Since(floodStart) < res.Timeout {
			if s, ok := victim.PeerScore(flooder); ok && s < chat.GraylistThreshold {
				res.Graylisted = time.Since(floodStart)
				return
			}
			time.Sleep(100 * time.Millisecond)
		}
	}()
	if err := speak("flooded", res.FloodFor); err != nil {
		return err
	}
	if err := <-floodDone; err != nil {
		return err
	}
	<-watchDone
	// Wait for the last honest line, then measure.
	last := lines[len(lines)-1].text
	for {
		mu.Lock()
		_, ok := arrived[last]
		mu.Unlock()
		if ok {
			break
		}
		if time.Now().After(floodStart.Add(res.Timeout)) {
			return errors.New("an honest line never arrived")
		}
		time.Sleep(20 * time.Millisecond)
	}
	mu.Lock()
	defer mu.Unlock()
	var q, f []time.Duration
	for i, l := range lines {
		at, ok := arrived[l.text]
		if !ok {
			return fmt.Errorf("honest line %q lost", l.text)
		}
		if i < quiet {
			q = append(q, at.Sub(l.at))
		} else {
			f = append(f, at.Sub(l.at))
		}
	}
	res.Quiet, res.Flooded = NewDist(q), NewDist(f)
	return nil
}

// endlessHistory: one peer serves valid 4 KB messages for ever; the victim
// (default limits, on-disk store) catches up from it.
func (res *AbuseResult) endlessHistory(ctx context.Context) error {
	hs, err := NewHosts(2)
	if err != nil {
		return err
	}
	defer hs.Close()
	dir, err := os.MkdirTemp("", "parley-bench-abuse")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	st, err := store.Open(dir)
	if err != nil {
		return err
	}
	defer st.Close()
	before := dirSize(dir)
	victim, err := chat.New(hs.H[0], chat.WithLogger(quietLogger()), chat.WithStore(st))
	if err != nil {
		return err
	}
	defer victim.Close()
	rogue := hs.H[1]
	fctx, cancel := context.WithCancel(ctx)
	defer cancel()
	_, leave, err := rawMember(fctx, rogue)
	if err != nil {
		return err
	}
	defer leave()
	var served, asked int
	var mu sync.Mutex
	rogue.SetStreamHandler(history.ID, endlessHistory(rogue, &mu, &served, &asked))
	events, err := victim.Subscribe()
	if err != nil {
		return err
	}
	defer events.Close()
	if err := victim.Join(roomName); err != nil {
		return err
	}
	if err := rogue.Connect(ctx, peer.AddrInfo{ID: hs.H[0].ID(), Addrs: hs.H[0].Addrs()}); err != nil {
		return err
	}
	timeout := time.After(res.Timeout)
	for done := false; !done; {
		select {
		case st, ok := <-events.C():
			if !ok {
				return errors.New("event stream closed")
			}
			if h, ok := st.Event.(chat.HistoryShown); ok && h.CaughtUp {
				done = true
			}
		case <-timeout:
			return errors.New("no catch-up")
		}
	}
	res.HistoryGrowth = dirSize(dir) - before
	return nil
}

// endlessHistory answers every history request with a full page of fresh,
// validly signed 4 KB messages, and "more".
func endlessHistory(h host.Host, mu *sync.Mutex, served, asked *int) network.StreamHandler {
	key := h.Peerstore().PrivKey(h.ID())
	text := strings.Repeat("x", 4000)
	topic := roomproto.Topic(roomName)
	return func(st network.Stream) {
		defer st.Close()
		var req pb.HistoryRequest
		if err := pbio.NewDelimitedReader(st, 1<<10).ReadMsg(&req); err != nil {
			st.Reset()
			return
		}
		from := max(req.GetAfterSentAtMs()+1, time.Now().Add(-time.Minute).UnixMilli())
		resp := &pb.HistoryResponse{More: true}
		mu.Lock()
		*asked++
		n := *served
		*served += history.PageSize
		mu.Unlock()
		for i := range history.PageSize {
			env := &pb.Envelope{Kind: pb.Envelope_MESSAGE, Id: fmt.Sprintf("%032x", n+i+1), Room: roomName, SentAtMs: from + int64(i), Lamport: 1}
			roomproto.SealBody(env, &pb.Body{Nick: "mallory", Text: text})
			data, _ := proto.Marshal(env)
			raw, err := signPubsub(key, topic, data)
			if err != nil {
				st.Reset()
				return
			}
			resp.Messages = append(resp.Messages, raw)
		}
		pbio.NewDelimitedWriter(st).WriteMsg(resp)
	}
}

// subscriptionFlood: a hostile peer subscribes to Subscriptions topics of
// three kinds at a relay, then leaves.
func (res *AbuseResult) subscriptionFlood(ctx context.Context) error {
	b, err := bridge.New(bridge.WithLogger(quietLogger()), bridge.WithNodeOptions(loopbackNode()...))
	if err != nil {
		return err
	}
	defer b.Close()
	res.RelayHeap[0] = heapInUse()
	hs, err := NewHosts(1)
	if err != nil {
		return err
	}
	fctx, cancel := context.WithCancel(ctx)
	ps, err := pubsub.NewGossipSub(fctx, hs.H[0])
	if err != nil {
		cancel()
		hs.Close()
		return err
	}
	info := peer.AddrInfo{ID: b.Node().ID(), Addrs: b.Node().Host().Addrs()}
	if err := hs.H[0].Connect(ctx, info); err != nil {
		cancel()
		hs.Close()
		return err
	}
	var subs []*pubsub.Subscription
	var topics []*pubsub.Topic
	for i := range res.Subscriptions / 3 {
		for _, name := range []string{roomproto.Topic(fmt.Sprintf("room-%d", i)), roomproto.Topic(fmt.Sprintf("bad name %d", i)), fmt.Sprintf("/other/%d", i)} {
			t, err := ps.Join(name)
			if err != nil {
				break
			}
			s, err := t.Subscribe()
			if err != nil {
				break
			}
			topics, subs = append(topics, t), append(subs, s)
		}
	}
	time.Sleep(2 * time.Second) // let the relay take them in
	res.RelayTopics = len(b.Rooms())
	res.RelayHeap[1] = heapInUse()
	for _, s := range subs {
		s.Cancel()
	}
	for _, t := range topics {
		t.Close()
	}
	cancel()
	hs.Close()
	// The relay releases rooms with nothing in them and no member at its
	// next idle sweep (every minute).
	for deadline := time.Now().Add(90 * time.Second); len(b.Rooms()) > 0 && time.Now().Before(deadline); {
		time.Sleep(time.Second)
	}
	res.RelayReleased = len(b.Rooms()) == 0
	res.RelayHeap[2] = heapInUse()
	return nil
}

func dirSize(dir string) int64 {
	var n int64
	filepath.Walk(dir, func(_ string, fi os.FileInfo, err error) error {
		if err == nil && !fi.IsDir() {
			n += fi.Size()
		}
		return nil
	})
	return n
}

// loopbackNode is a relay node on loopback only, with a fresh identity.
func loopbackNode() []node.Option {
	key, _, _ := crypto.GenerateEd25519Key(rand.Reader)
	return []node.Option{node.WithIdentity(key), node.WithListenAddrs(ma.StringCast("/ip4/127.0.0.1/tcp/0")), node.WithMDNS(false)}
}

// signPubsub signs data for topic as libp2p-pubsub does (StrictSign).
func signPubsub(key crypto.PrivKey, topic string, data []byte) ([]byte, error) {
	id, err := peer.IDFromPrivateKey(key)
	if err != nil {
		return nil, err
	}
	m := &pubsubpb.Message{From: []byte(id), Data: data, Seqno: []byte{1, 2, 3, 4, 5, 6, 7, 8}, Topic: &topic}
	b, err := proto.Marshal(m)
	if err != nil {
		return nil, err
	}
	if m.Signature, err = key.Sign(append([]byte("libp2p-pubsub:"), b...)); err != nil {
		return nil, err
	}
	return proto.Marshal(m)
}

// rawMember makes h a member of the room with nothing but GossipSub (what
// a hostile peer runs): joined and subscribed until leave, or until ctx
// ends its pubsub.
func rawMember(ctx context.Context, h host.Host, opts ...pubsub.Option) (topic *pubsub.Topic, leave func(), err error) {
	ps, err := pubsub.NewGossipSub(ctx, h, opts...)
	if err != nil {
		return nil, nil, err
	}
	if topic, err = ps.Join(roomproto.Topic(roomName)); err != nil {
		return nil, nil, err
	}
	sub, err := topic.Subscribe()
	if err != nil {
		topic.Close()
		return nil, nil, err
	}
	return topic, func() { sub.Cancel(); topic.Close() }, nil
}

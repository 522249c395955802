package bench

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
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
	"google.golang.org/protobuf/proto"

	"github.com/parley-chat/parley/chat"
	"github.com/parley-chat/parley/chat/pb"
	"github.com/parley-chat/parley/chat/protocol/history"
	roomproto "github.com/parley-chat/parley/chat/protocol/room"
	"github.com/parley-chat/parley/internal/proctest"
	"github.com/parley-chat/parley/internal/store"
)

// AbuseConfig bounds the abuse benchmarks.
type AbuseConfig struct {
	FloodRate     int           // valid messages per second from the flooder
	FloodFor      time.Duration // how long it floods
	HonestEvery   time.Duration // an honest line every so often, quiet and under the flood
	Subscriptions int           // topics the hostile peer subscribes to at the relay
	Binary        string        // the parley binary: the relay runs as a process of its own
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
// RelayRSS and RelayHeap are the relay process's resident set (VmRSS) and
// heap in use (Go's heap_inuse): idle, with the hostile peer's
// subscriptions, and after it left and the relay's idle sweep released
// the rooms carried for it; ControlRSS and ControlHeap the same of a relay
// started with it and never attacked.
type AbuseResult struct {
	AbuseConfig
	Quiet, Flooded Dist
	Graylisted     time.Duration
	FloodSent      int
	FloodShown     int
	HistoryGrowth  int64
	HistoryBudget  int64
	RelayRSS       [3]int64
	RelayHeap      [3]int64
	ControlRSS     [3]int64 // a relay never attacked, at the same moments
	ControlHeap    [3]int64
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
	for _, h := range hs.H[1:] {
		if err := h.Connect(ctx, peer.AddrInfo{ID: hs.H[0].ID(), Addrs: hs.H[0].Addrs()}); err != nil {
			return err
		}
	}
	flood, err := dialFlood(fctx, hs.H[2], hs.H[0].ID())
	if err != nil {
		return err
	}
	defer flood.Close()
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
	for len(victim.MeshPeers(roomName)) == 0 {
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
	// The flood is signed before it starts: a flooder runs on a machine of
	// its own, and signing 5,000 messages a second here would take the
	// victim's CPU, not the flood's effect on it.
	total := res.FloodRate * int(res.FloodFor/time.Second)
	key := hs.H[2].Peerstore().PrivKey(flooder)
	topic := roomproto.Topic(roomName)
	msgs := make([]*pubsubpb.Message, total)
	for n := range msgs {
		env := &pb.Envelope{Kind: pb.Envelope_MESSAGE, Id: fmt.Sprintf("%032x", n+1), Room: roomName, SentAtMs: time.Now().UnixMilli(), Lamport: uint64(n + 1)}
		roomproto.SealBody(env, &pb.Body{Nick: "flooder", Text: fmt.Sprintf("flood %d", n)})
		data, _ := proto.Marshal(env)
		if msgs[n], err = signedMessage(key, topic, data, uint64(n+1)); err != nil {
			return err
		}
	}
	floodStart := time.Now()
	floodDone := make(chan error, 1)
	go func() {
		per := res.FloodRate / 100 // in batches every 10 ms, one RPC each
		tick := time.NewTicker(10 * time.Millisecond)
		defer tick.Stop()
		for n := 0; n < total && time.Since(floodStart) < res.FloodFor; n += per {
			if err := flood.WriteMsg(&pubsubpb.RPC{Publish: msgs[n:min(n+per, total)]}); err != nil {
				floodDone <- fmt.Errorf("flood: %w", err)
				return
			}
			res.FloodSent = min(n+per, total)
			select {
			case <-tick.C:
			case <-fctx.Done():
				floodDone <- fctx.Err()
				return
			}
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
// three kinds at a relay (`parley relay`, a process of its own, so that
// its memory is its own), then leaves.
func (res *AbuseResult) subscriptionFlood(ctx context.Context) error {
	if res.Binary == "" {
		return errors.New("no parley binary to run the relay")
	}
	// A second relay, never attacked, lives as long and is scraped as
	// often: an idle relay grows by itself too (~2 MB in its first 90 s:
	// the DHT, the runtime's own pools), and "back to its idle value"
	// means back to what it would be without the attack.
	relay, err := startBenchRelay(ctx, res.Binary, res.Timeout)
	if err != nil {
		return err
	}
	defer relay.stop()
	control, err := startBenchRelay(ctx, res.Binary, res.Timeout)
	if err != nil {
		return err
	}
	defer control.stop()
	info, murl := relay.info, relay.metrics
	sample := func(i int) error {
		var err error
		if res.RelayRSS[i], res.RelayHeap[i], err = relay.memory(ctx); err != nil {
			return err
		}
		res.ControlRSS[i], res.ControlHeap[i], err = control.memory(ctx)
		return err
	}
	sleepCtx(ctx, 3*time.Second) // past start-up's allocations
	if err := sample(0); err != nil {
		return err
	}

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
	carried := func() int {
		n, _ := scrape(ctx, murl, "parley_relay_rooms_carried")
		return int(n)
	}
	// The relay takes the subscriptions in: wait until its count of
	// rooms carried stops growing.
	for last, deadline := -1, time.Now().Add(10*time.Second); time.Now().Before(deadline); {
		sleepCtx(ctx, 500*time.Millisecond)
		n := carried()
		if n == last && n > 0 {
			break
		}
		last = n
	}
	res.RelayTopics = carried()
	err = sample(1)
	for _, s := range subs {
		s.Cancel()
	}
	for _, t := range topics {
		t.Close()
	}
	cancel()
	hs.Close()
	if err != nil {
		return err
	}
	// The relay releases rooms with nothing in them and no member at its
	// next idle sweep (every minute).
	for deadline := time.Now().Add(90 * time.Second); carried() > 0 && time.Now().Before(deadline) && ctx.Err() == nil; {
		sleepCtx(ctx, time.Second)
	}
	res.RelayReleased = carried() == 0
	sleepCtx(ctx, 3*time.Second) // as long as the idle reading waited
	return sample(2)
}

// benchRelay is `parley relay` on loopback with its metrics served.
type benchRelay struct {
	proc    *proctest.Proc
	info    peer.AddrInfo
	metrics string // URL
	stopFn  func()
}

func startBenchRelay(ctx context.Context, bin string, timeout time.Duration) (*benchRelay, error) {
	data, err := os.MkdirTemp("", "parley-bench-relay")
	if err != nil {
		return nil, err
	}
	p, err := startProc("relay", quietCmd(ctx, bin, "relay", "--json", "--data", data,
		"--listen", "/ip4/127.0.0.1/tcp/0", "--metrics", "127.0.0.1:0"), timeout)
	if err != nil {
		os.RemoveAll(data)
		return nil, err
	}
	r := &benchRelay{proc: p}
	stop := func() { p.Stop(10 * time.Second); os.RemoveAll(data) }
	ready, _, err := p.Ready(ctx)
	if err != nil {
		stop()
		return nil, err
	}
	addrs, _ := ready["addrs"].([]any)
	r.metrics, _ = ready["metrics"].(string)
	if len(addrs) == 0 || r.metrics == "" {
		stop()
		return nil, fmt.Errorf("relay's ready event has no address or metrics URL: %v", ready)
	}
	a, _ := addrs[0].(string)
	info, err := peer.AddrInfoFromString(a)
	if err != nil {
		stop()
		return nil, err
	}
	r.info = *info
	r.stopFn = stop
	return r, nil
}

func (r *benchRelay) stop() { r.stopFn() }

// memory is the relay's VmRSS and Go heap in use.
func (r *benchRelay) memory(ctx context.Context) (rss, heap int64, err error) {
	if rss, err = RSS(r.proc.Cmd.Process.Pid); err != nil {
		return 0, 0, err
	}
	h, err := scrape(ctx, r.metrics, "go_memstats_heap_inuse_bytes")
	return rss, int64(h), err
}

// scrape reads one unlabelled sample from a Prometheus text endpoint.
func scrape(ctx context.Context, url, name string) (float64, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return 0, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, fmt.Errorf("scrape %s: %w", url, err)
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), name+" "); ok {
			return strconv.ParseFloat(strings.TrimSpace(v), 64)
		}
	}
	if err := sc.Err(); err != nil {
		return 0, fmt.Errorf("scrape %s: %w", url, err)
	}
	return 0, fmt.Errorf("scrape %s: no %s", url, name)
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

// signPubsub signs data for topic as libp2p-pubsub does (StrictSign) and
// marshals the message.
func signPubsub(key crypto.PrivKey, topic string, data []byte) ([]byte, error) {
	m, err := signedMessage(key, topic, data, 0x0102030405060708)
	if err != nil {
		return nil, err
	}
	return proto.Marshal(m)
}

// signedMessage is data for topic signed as libp2p-pubsub signs it, with
// sequence number seqno (pubsub's default message ID is author+seqno).
func signedMessage(key crypto.PrivKey, topic string, data []byte, seqno uint64) (*pubsubpb.Message, error) {
	id, err := peer.IDFromPrivateKey(key)
	if err != nil {
		return nil, err
	}
	m := &pubsubpb.Message{From: []byte(id), Data: data, Seqno: binary.BigEndian.AppendUint64(nil, seqno), Topic: &topic}
	b, err := proto.Marshal(m)
	if err != nil {
		return nil, err
	}
	if m.Signature, err = key.Sign(append([]byte("libp2p-pubsub:"), b...)); err != nil {
		return nil, err
	}
	return m, nil
}

// floodStream is a hostile member's GossipSub stream to its victim.
type floodStream struct {
	st network.Stream
	w  pbio.WriteCloser
}

func (f *floodStream) WriteMsg(rpc *pubsubpb.RPC) error { return f.w.WriteMsg(rpc) }
func (f *floodStream) Close() error                     { return f.st.Reset() }

// dialFlood makes h a member of the room at victim with nothing but the
// GossipSub wire protocol, as a flooder that sends pre-signed messages
// runs it: it subscribes and takes (and drops) whatever the victim sends.
func dialFlood(ctx context.Context, h host.Host, victim peer.ID) (*floodStream, error) {
	drain := func(st network.Stream) { io.Copy(io.Discard, st); st.Close() }
	h.SetStreamHandler(pubsub.GossipSubID_v12, drain)
	h.SetStreamHandler(pubsub.GossipSubID_v11, drain)
	st, err := h.NewStream(ctx, victim, pubsub.GossipSubID_v12, pubsub.GossipSubID_v11)
	if err != nil {
		return nil, fmt.Errorf("flooder's stream: %w", err)
	}
	f := &floodStream{st: st, w: pbio.NewDelimitedWriter(st)}
	topic, yes := roomproto.Topic(roomName), true
	if err := f.WriteMsg(&pubsubpb.RPC{Subscriptions: []*pubsubpb.RPC_SubOpts{{Subscribe: &yes, Topicid: &topic}}}); err != nil {
		st.Reset()
		return nil, fmt.Errorf("flooder's subscription: %w", err)
	}
	return f, nil
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

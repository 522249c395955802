package bench

import (
	"cmp"
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	mrand "math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	pubsub "github.com/libp2p/go-libp2p-pubsub"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/parley-chat/parley/chat"
	roomproto "github.com/parley-chat/parley/chat/protocol/room"
	"github.com/parley-chat/parley/internal/store"
)

// roomName is the room (topic chat.TopicPrefix+roomName) every benchmark uses.
const roomName = "bench"

// roomConfig describes an in-process room: N light hosts on loopback TCP,
// linked by RandomGraph(N, Degree), each running Router.
type roomConfig struct {
	Router   Router
	N        int
	Degree   int    // links each node dials (see RandomGraph)
	Size     int    // bytes of application payload per message
	Seed     uint64 // topology seed
	Measured int    // sequence numbers [0, Measured) are measured
	Warmup   int    // then [Measured, Measured+Warmup) warm the mesh up
	Tune     *GossipTune
	// Unlimited lifts Parley's per-author rate limit (chat.Unlimited):
	// a burst of thousands of messages from one author measures
	// throughput, not what members accept from one person.
	Unlimited bool
	// OnDisk gives each Parley member its own SQLite store in a temporary
	// directory, as the program keeps one (WAL, synchronous=NORMAL),
	// instead of chat's default store in memory.
	OnDisk bool
	// Hosts starts the n hosts (default NewHosts: TCP on loopback;
	// SimHosts: a simulated network).
	Hosts func(n int) (*Hosts, error)
	// EventBuffer is each Parley member's event queue (default
	// eventBuffer); ChatOptions are added to every member's.
	EventBuffer int
	ChatOptions []chat.Option
}

// room is a running in-process room whose members record when each
// message (by sequence number) first reached them.
type room struct {
	cfg   roomConfig
	hosts *Hosts
	edges [][2]int
	deg   []int
	base  time.Time

	arrivals [][]atomic.Int64 // [node][seq]: ns since base, plus 1 (0: not yet)
	recvM    atomic.Int64     // first arrivals of measured messages
	recvW    atomic.Int64     // first arrivals of warm-up messages
	last     atomic.Int64     // latest first arrival, ns since base

	// pubsub routers
	topics  []*pubsub.Topic
	subs    []*pubsub.Subscription
	tracers []*psTracer
	// wires count every member's traffic by kind (for pubsub routers the
	// same as tracers; for Parley the service's hook)
	wires []*psTracer
	// Parley
	chats   []*chat.Service
	stores  []*store.Store // OnDisk stores, closed after the chats
	dir     string         // their parent directory
	joined  []atomic.Int64 // PeerJoined events per node
	chatErr atomic.Int64   // Error events (surfaced drops among them)
	// lateSends are Sends that published but returned an error: their
	// own copy was not back and stored within chat's bound
	lateSends atomic.Int64
	filler    string

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

func newRoom(ctx context.Context, cfg roomConfig) (_ *room, err error) {
	if cfg.N < 2 {
		return nil, fmt.Errorf("room of %d members: need at least 2", cfg.N)
	}
	if cfg.Size < 16 {
		cfg.Size = 16
	}
	mk := cfg.Hosts
	if mk == nil {
		mk = NewHosts
	}
	hs, err := mk(cfg.N)
	if err != nil {
		return nil, err
	}
	rctx, cancel := context.WithCancel(ctx)
	r := &room{cfg: cfg, hosts: hs, base: time.Now(), ctx: rctx, cancel: cancel}
	defer func() {
		if err != nil {
			r.close()
		}
	}()
	seqs := cfg.Measured + cfg.Warmup
	r.arrivals = make([][]atomic.Int64, cfg.N)
	for i := range r.arrivals {
		r.arrivals[i] = make([]atomic.Int64, seqs)
	}
	rng := mrand.New(mrand.NewPCG(cfg.Seed, 0x9e3779b97f4a7c15))
	r.edges = RandomGraph(cfg.N, cfg.Degree, rng)
	r.deg = Degrees(cfg.N, r.edges)

	if cfg.Router == Parley {
		r.joined = make([]atomic.Int64, cfg.N)
		r.filler = strings.Repeat("abcdefghijklmnopqrstuvwxyz0123456789", cfg.Size/36+1)[:cfg.Size-9]
		quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
		for i, h := range hs.H {
			t := &psTracer{wire: wireTracer{parley: true}}
			r.wires = append(r.wires, t)
			opts := []chat.Option{chat.WithLogger(quiet), chat.WithHooks(chat.Hooks{PubSubTracer: t, CaughtUp: t.wire.caughtUp, RosterFetched: t.wire.rosterFetched})}
			if cfg.Unlimited {
				opts = append(opts, chat.WithLimits(chat.Unlimited()))
			}
			if cfg.OnDisk {
				if r.dir == "" {
					if r.dir, err = os.MkdirTemp("", "parley-bench-room-"); err != nil {
						return nil, fmt.Errorf("store directory: %w", err)
					}
				}
				st, err := store.Open(filepath.Join(r.dir, strconv.Itoa(i)))
				if err != nil {
					return nil, err
				}
				r.stores = append(r.stores, st)
				opts = append(opts, chat.WithStore(st))
			}
			svc, err := chat.New(h, append(opts, cfg.ChatOptions...)...)
			if err != nil {
				return nil, fmt.Errorf("start chat: %w", err)
			}
			r.chats = append(r.chats, svc)
			sub, err := svc.Subscribe(chat.WithBuffer(cmp.Or(cfg.EventBuffer, eventBuffer)))
			if err != nil {
				return nil, err
			}
			r.wg.Add(1)
			go r.readChat(i, sub, svc.ID())
			if err := svc.Join(roomName); err != nil {
				return nil, err
			}
		}
	} else {
		for i, h := range hs.H {
			t := new(psTracer)
			ps, err := newPubSub(rctx, h, cfg.Router, t, cfg.Tune)
			if err != nil {
				return nil, fmt.Errorf("start %s: %w", cfg.Router, err)
			}
			topic, err := ps.Join(roomproto.Topic(roomName))
			if err != nil {
				return nil, err
			}
			opts := []pubsub.SubOpt{pubsub.WithBufferSize(chat.PeerQueueSize)}
			if cfg.Router == PlainGossipSub {
				opts = nil // default buffer of 32
			}
			sub, err := topic.Subscribe(opts...)
			if err != nil {
				return nil, err
			}
			r.tracers = append(r.tracers, t)
			r.wires = append(r.wires, t)
			r.topics = append(r.topics, topic)
			r.subs = append(r.subs, sub)
			r.wg.Add(1)
			go r.readSub(i, sub)
		}
	}
	if err := hs.Connect(rctx, r.edges); err != nil {
		return nil, fmt.Errorf("connect the room: %w", err)
	}
	return r, nil
}

// record notes the first arrival of seq at node.
func (r *room) record(node, seq int) {
	if seq < 0 || seq >= len(r.arrivals[node]) {
		return
	}
	now := time.Since(r.base).Nanoseconds()
	if !r.arrivals[node][seq].CompareAndSwap(0, now+1) {
		return
	}
	if seq < r.cfg.Measured {
		r.recvM.Add(1)
	} else {
		r.recvW.Add(1)
	}
	for {
		old := r.last.Load()
		if now <= old || r.last.CompareAndSwap(old, now) {
			return
		}
	}
}

func (r *room) readSub(node int, sub *pubsub.Subscription) {
	defer r.wg.Done()
	self := r.hosts.H[node].ID()
	for {
		msg, err := sub.Next(r.ctx)
		if err != nil {
			return
		}
		if msg.GetFrom() == self || len(msg.Data) < 4 {
			continue
		}
		r.record(node, int(binary.BigEndian.Uint32(msg.Data)))
	}
}

func (r *room) readChat(node int, sub *chat.Subscription, self peer.ID) {
	defer r.wg.Done()
	for st := range sub.C() {
		switch ev := st.Event.(type) {
		case chat.Message:
			if ev.From == self || len(ev.Text) < 8 {
				continue
			}
			if seq, err := strconv.Atoi(ev.Text[:8]); err == nil {
				r.record(node, seq)
			}
		case chat.PeerJoined:
			r.joined[node].Add(1)
		case chat.Error:
			r.chatErr.Add(1)
		}
	}
}

// publish sends message seq from node; it returns when the router's API
// call returns (Topic.Publish or Service.Send).
func (r *room) publish(ctx context.Context, node, seq int) error {
	if r.chats != nil {
		id, err := r.chats[node].Send(ctx, roomName, fmt.Sprintf("%08d ", seq)+r.filler)
		if err != nil && id != "" && ctx.Err() == nil {
			// Sent, but its own copy was not stored in time: the
			// deliveries and latencies measure the rest.
			r.lateSends.Add(1)
			return nil
		}
		return err
	}
	data := make([]byte, r.cfg.Size)
	rand.Read(data[4:])
	binary.BigEndian.PutUint32(data, uint32(seq))
	return r.topics[node].Publish(ctx, data)
}

// post is publish for a burst: Parley's Post (published in the
// background, several in flight), retried while chat says it is busy;
// the other routers' Topic.Publish as in publish.
func (r *room) post(ctx context.Context, node, seq int) error {
	if r.chats == nil {
		return r.publish(ctx, node, seq)
	}
	text := fmt.Sprintf("%08d ", seq) + r.filler
	for {
		_, err := r.chats[node].Post(roomName, text)
		if !errors.Is(err, chat.ErrBusy) {
			return err
		}
		if err := sleepCtx(ctx, 200*time.Microsecond); err != nil {
			return err
		}
	}
}

// waitReady waits until every member knows that each of its neighbours is
// in the room (subscriptions exchanged) and, for GossipSub, has at least
// one mesh peer; then one more heartbeat (1 s) lets the meshes settle.
func (r *room) waitReady(ctx context.Context, timeout time.Duration) error {
	return r.waitReadyShare(ctx, timeout, 1)
}

// waitReadyShare is waitReady for a share of the members.
func (r *room) waitReadyShare(ctx context.Context, timeout time.Duration, share float64) error {
	want := int(math.Ceil(share * float64(r.cfg.N)))
	ok := waitUntil(ctx, timeout, func() bool {
		n := 0
		for i := range r.cfg.N {
			if r.ready(i) {
				n++
			}
		}
		return n >= want
	})
	if !ok {
		return fmt.Errorf("%s room of %d: members did not see each other within %v", r.cfg.Router, r.cfg.N, timeout)
	}
	if r.cfg.Router != FloodSub {
		return sleepCtx(ctx, 1100*time.Millisecond)
	}
	return nil
}

// ready says whether member i knows each of its neighbours is in the
// room and, for GossipSub, has a mesh peer.
func (r *room) ready(i int) bool {
	if r.chats != nil {
		return int(r.joined[i].Load()) >= r.deg[i] && len(r.chats[i].MeshPeers(roomName)) > 0
	}
	if len(r.topics[i].ListPeers()) < r.deg[i] {
		return false
	}
	return r.cfg.Router == FloodSub || r.tracers[i].mesh.Load() > 0
}

// warmup publishes the warm-up messages, 20 ms apart from members in turn,
// and waits (at most 5 s) until they have reached everyone.
func (r *room) warmup(ctx context.Context) {
	for w := range r.cfg.Warmup {
		if err := r.publish(ctx, w%r.cfg.N, r.cfg.Measured+w); err != nil {
			return
		}
		if sleepCtx(ctx, 20*time.Millisecond) != nil {
			return
		}
	}
	want := int64(r.cfg.Warmup * (r.cfg.N - 1))
	waitUntil(ctx, 5*time.Second, func() bool { return r.recvW.Load() >= want })
}

// dups is the number of redundant copies received by all members so far.
func (r *room) dups() int64 {
	var n int64
	for _, t := range r.wires {
		n += t.dup.Load()
	}
	return n
}

// wire sums what all members sent so far, by kind.
func (r *room) wire() WireCount {
	var w WireCount
	for _, t := range r.wires {
		c := t.wire.count()
		w = w.Add(c)
	}
	return w
}

// unsent is the number of copies pubsub had no stream to send on so far
// (not drops: see chat.Service.Unsent).
func (r *room) unsent() int64 {
	return r.sum(func(t *psTracer) int64 { return t.unsent.Load() }, (*chat.Service).Unsent)
}

// dropped is the number of messages lost to full queues so far, as
// counted by the tracers or by chat.Service.Dropped.
func (r *room) dropped() int64 {
	return r.sum(func(t *psTracer) int64 { return t.dropped.Load() }, (*chat.Service).Dropped)
}

// sum adds up one count over the room's GossipSub tracers and Parley
// members.
func (r *room) sum(ofTracer func(*psTracer) int64, ofChat func(*chat.Service) int) int64 {
	var n int64
	for _, t := range r.tracers {
		n += ofTracer(t)
	}
	for _, c := range r.chats {
		n += int64(ofChat(c))
	}
	return n
}

// dropsByQueue sums the tracers' drops by queue: outbound, validation,
// subscription.
func (r *room) dropsByQueue() [3]int64 {
	var d [3]int64
	for _, t := range r.tracers {
		d[0] += t.outQ.Load()
		d[1] += t.valQ.Load()
		d[2] += t.subQ.Load()
	}
	return d
}

// meanDegree and the extremes of the topology.
func (r *room) degreeStats() (mean float64, lo, hi int) {
	lo, hi = slices.Min(r.deg), slices.Max(r.deg)
	return float64(2*len(r.edges)) / float64(r.cfg.N), lo, hi
}

func (r *room) close() {
	r.cancel()
	for _, s := range r.subs {
		s.Cancel()
	}
	for _, c := range r.chats {
		c.Close()
	}
	r.wg.Wait()
	for _, st := range r.stores {
		st.Close()
	}
	if r.dir != "" {
		os.RemoveAll(r.dir)
	}
	for _, t := range r.topics {
		t.Close()
	}
	r.hosts.Close()
}

// latencies are the first arrivals of the measured messages, message i
// sent by member from[i] at sendAt[i] (ns since base), at every other
// member that got it.
func (r *room) latencies(from []int, sendAt []int64) []time.Duration {
	var lat []time.Duration
	for node := range r.arrivals {
		for i := range from {
			if node == from[i] {
				continue
			}
			if a := r.arrivals[node][i].Load(); a > 0 {
				lat = append(lat, time.Duration(a-1-sendAt[i]))
			}
		}
	}
	return lat
}

package bench

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"math"
	mrand "math/rand/v2"
	"os"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	pubsub "github.com/libp2p/go-libp2p-pubsub"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"
	mocknet "github.com/libp2p/go-libp2p/p2p/net/mock"
	ma "github.com/multiformats/go-multiaddr"

	"github.com/parley-chat/parley/chat"
)

// A simulated network for rooms larger than one machine can carry on
// real sockets: go-libp2p's mocknet (in-process hosts, connections and
// streams, no TCP, Noise or yamux) with latency and bandwidth applied by
// a wrapper around every stream the application opens or accepts.
//
// mocknet's own LinkOptions are not used: its stream transport holds each
// write of 256 bytes or more until that write has arrived before it
// accepts the next, so one stream carries at most one such write per
// one-way latency (40 GossipSub RPCs a second at 25 ms), which no TCP
// connection does; and its token bucket lets a whole second's worth of
// bytes through at once before it limits anything.

// simNet applies one-way latency and per-link bandwidth to the streams of
// the hosts of one simulation, and counts what they write.
type simNet struct {
	latency time.Duration
	bw      float64 // bytes per second per link and direction; 0: unlimited
	ctx     context.Context
	writes  atomic.Int64

	mu    sync.Mutex
	links map[[2]peer.ID]*simLink
}

// simLink is one direction of a link: its bytes leave one after another.
type simLink struct {
	mu   sync.Mutex
	free time.Time // when the last byte queued so far has left
}

func (n *simNet) link(from, to peer.ID) *simLink {
	n.mu.Lock()
	defer n.mu.Unlock()
	k := [2]peer.ID{from, to}
	l := n.links[k]
	if l == nil {
		l = new(simLink)
		n.links[k] = l
	}
	return l
}

// arrival is when size bytes written on l now reach the other end: after
// the bytes queued before them have left, their own transmission time,
// and the latency.
func (n *simNet) arrival(l *simLink, size int) time.Time {
	now := time.Now()
	l.mu.Lock()
	start := now
	if l.free.After(now) {
		start = l.free
	}
	if n.bw > 0 {
		start = start.Add(time.Duration(float64(size) / n.bw * float64(time.Second)))
	}
	l.free = start
	l.mu.Unlock()
	return start.Add(n.latency)
}

// simHost is a mocknet host whose application streams (pubsub, history,
// DMs) are shaped and counted. identify and the protocol negotiation of
// a new stream run on mocknet's bare streams: set-up, not per message.
type simHost struct {
	host.Host
	net *simNet
	ctr *WireCounter
}

func (h *simHost) wrap(s network.Stream) *simStream {
	return &simStream{Stream: s, h: h, link: h.net.link(h.ID(), s.Conn().RemotePeer()), stop: make(chan struct{})}
}

func (h *simHost) NewStream(ctx context.Context, p peer.ID, pids ...protocol.ID) (network.Stream, error) {
	s, err := h.Host.NewStream(ctx, p, pids...)
	if err != nil {
		return nil, err
	}
	return h.wrap(s), nil
}

func (h *simHost) SetStreamHandler(pid protocol.ID, handler network.StreamHandler) {
	h.Host.SetStreamHandler(pid, func(s network.Stream) { handler(h.wrap(s)) })
}

func (h *simHost) SetStreamHandlerMatch(pid protocol.ID, m func(protocol.ID) bool, handler network.StreamHandler) {
	h.Host.SetStreamHandlerMatch(pid, m, func(s network.Stream) { handler(h.wrap(s)) })
}

// simStream delays what is written on it: Write returns at once, as on a
// TCP socket with room in its send buffer, and a goroutine (started by
// the first write) hands each write to the mocknet stream when it is due.
// Up to simQueue writes may be in flight; more block, as a full send
// buffer does.
type simStream struct {
	network.Stream
	h    *simHost
	link *simLink

	mu       sync.Mutex
	q        chan simFrame // nil until the first write
	closed   bool          // write side closed
	err      error
	stop     chan struct{} // closed on reset or a failed write
	stopOnce sync.Once
}

const simQueue = 1024

// simFrame is one write, or (b nil) the closing of the write side.
type simFrame struct {
	b    []byte
	at   time.Time
	full bool // Close rather than CloseWrite
}

var errSimClosed = errors.New("simulated stream: write after close")

func (s *simStream) queue() (chan simFrame, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case s.err != nil:
		return nil, s.err
	case s.closed:
		return nil, errSimClosed
	}
	if s.q == nil {
		s.q = make(chan simFrame, simQueue)
		go s.deliver(s.q)
	}
	return s.q, nil
}

func (s *simStream) Write(b []byte) (int, error) {
	q, err := s.queue()
	if err != nil {
		return 0, err
	}
	f := simFrame{b: bytes.Clone(b), at: s.h.net.arrival(s.link, len(b))}
	select {
	case q <- f:
	case <-s.stop:
		return 0, network.ErrReset
	case <-s.h.net.ctx.Done():
		return 0, network.ErrReset
	}
	s.h.ctr.Written.Add(int64(len(b)))
	s.h.net.writes.Add(1)
	return len(b), nil
}

func (s *simStream) deliver(q chan simFrame) {
	t := time.NewTimer(time.Hour)
	defer t.Stop()
	for {
		var f simFrame
		select {
		case f = <-q:
		case <-s.stop:
			return
		case <-s.h.net.ctx.Done():
			return
		}
		if d := time.Until(f.at); d > 0 {
			t.Reset(d)
			select {
			case <-t.C:
			case <-s.stop:
				return
			case <-s.h.net.ctx.Done():
				return
			}
		}
		if f.b == nil {
			if f.full {
				s.Stream.Close()
			} else {
				s.Stream.CloseWrite()
			}
			return
		}
		if _, err := s.Stream.Write(f.b); err != nil {
			s.mu.Lock()
			s.err = err
			s.mu.Unlock()
			s.halt()
			s.Stream.Reset()
			return
		}
	}
}

func (s *simStream) halt() { s.stopOnce.Do(func() { close(s.stop) }) }

// closeWrite closes the write side after what was written has arrived.
func (s *simStream) closeWrite(full bool) error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	q := s.q
	s.mu.Unlock()
	if q == nil {
		if full {
			return s.Stream.Close()
		}
		return s.Stream.CloseWrite()
	}
	select {
	case q <- simFrame{at: s.h.net.arrival(s.link, 0), full: full}:
	case <-s.stop:
	case <-s.h.net.ctx.Done():
	}
	return nil
}

func (s *simStream) CloseWrite() error { return s.closeWrite(false) }

func (s *simStream) Close() error {
	s.Stream.CloseRead()
	return s.closeWrite(true)
}

func (s *simStream) Reset() error {
	s.halt()
	return s.Stream.Reset()
}

func (s *simStream) ResetWithError(code network.StreamErrorCode) error {
	s.halt()
	return s.Stream.ResetWithError(code)
}

// SimHosts returns a maker of n hosts on one simulated network: every
// link delays each write by latency (one way) after the link's earlier
// bytes have left at bw bytes a second (each direction on its own; 0: no
// bound). Hosts are linked only where the room's topology dials, so
// nothing else (e.g. GossipSub peer exchange) can add connections.
func SimHosts(latency time.Duration, bw float64) func(n int) (*Hosts, error) {
	return func(n int) (*Hosts, error) {
		mn := mocknet.New()
		ctx, cancel := context.WithCancel(context.Background())
		sn := &simNet{latency: latency, bw: bw, ctx: ctx, links: make(map[[2]peer.ID]*simLink)}
		// Dialling is cheap here, and a room whose links come up over a
		// long time triggers more presence announcements (each member
		// announces itself again for every neighbour that joins after
		// the last announcement went out).
		// Its identify exchange waits for a core while the members
		// already connected announce themselves: allow minutes.
		hs := &Hosts{Done: func() { cancel(); mn.Close() }, Parallel: 64, DialTimeout: 3 * time.Minute}
		for i := range n {
			sk, _, err := crypto.GenerateEd25519Key(rand.Reader)
			if err != nil {
				hs.Close()
				return nil, err
			}
			// One address each in 198.18.0.0/15, the range set aside for
			// benchmarks (RFC 2544); mocknet never dials it anyway. Each
			// member has an IP of its own, as on the Internet: GossipSub's
			// peer score penalises many peers on one IP (or IPv6 /64).
			h, err := mn.AddPeer(sk, ma.StringCast(fmt.Sprintf("/ip4/198.%d.%d.%d/tcp/4001", 18+(i+1)>>16, (i+1)>>8&0xff, (i+1)&0xff)))
			if err != nil {
				hs.Close()
				return nil, fmt.Errorf("simulated host: %w", err)
			}
			c := new(WireCounter)
			hs.H = append(hs.H, &simHost{Host: h, net: sn, ctr: c})
			hs.Ctr = append(hs.Ctr, c)
		}
		hs.Link = func(a, b int) error {
			_, err := mn.LinkPeers(hs.H[a].ID(), hs.H[b].ID())
			return err
		}
		return hs, nil
	}
}

// SimConfig describes a room on the simulated network.
type SimConfig struct {
	Router       Router // Parley, or GossipSub for the baseline
	N            int    // members
	Degree       int    // links each member dials (RandomGraph)
	Messages     int    // measured messages
	Interval     time.Duration
	Size         int           // payload bytes
	OneWay       time.Duration // latency one way, per link
	Bandwidth    float64       // bytes a second, per link and direction
	Warmup       int
	Seed         uint64
	ReadyTimeout time.Duration // bound on the members seeing each other (0: 90 s × (N/100)²)
	// ReadyShare is the share of members that must see all their
	// neighbours (and have a mesh) before the measured phase (0: all).
	// The rest still count in delivery: a member without a mesh gets
	// messages through gossip, later, or not at all.
	ReadyShare float64
	Window     func(begin bool)
	Log        func(format string, args ...any) // progress, if set
}

// DefaultSimConfig is the section's default: 100 members each dialling
// 4, 25 ms one way (50 ms round trip), 20 Mbit/s, 40 messages of 300
// bytes 250 ms apart. 100, not 1,000: every member simulated shares the
// machine's cores, and the set-up (each member's announcement reaches the
// whole room: members² deliveries) takes 2.5 minutes at 1,000 and the
// measured phase outruns the CPU (docs/benchmarks.md, "1,000 members,
// simulated").
func DefaultSimConfig() SimConfig {
	return SimConfig{Router: Parley, N: 100, Degree: 4, Messages: 40, Interval: 250 * time.Millisecond, Size: 300,
		OneWay: 25 * time.Millisecond, Bandwidth: 20e6 / 8, Warmup: 3, Seed: 1}
}

// SimResult is what one simulated room measured. Latency, delivery and
// amplification are defined as for FanoutResult, except that the bytes
// are those the application protocols wrote to their streams (GossipSub
// RPCs, history, DMs): the simulation has no Noise or yamux, so Framed
// adds what their framing would (simFrameBytes a write) for comparison
// with the fan-out's TCP byte counts.
type SimResult struct {
	SimConfig
	Edges                int
	MeanDegree           float64
	MinDegree, MaxDegree int
	Setup                time.Duration // start the members, link and connect, members see each other
	// Settle is the wait after Setup until the room was quiet: nothing
	// delivered and no roster news for simQuiet (join announcements and
	// rosters still on their way are the room forming, not its messages).
	Settle time.Duration
	// GossipSub messages delivered to Parley members (all kinds: texts,
	// presence) during the set-up, and while measuring.
	SetupDeliveries, Deliveries int64
	Latency                     Dist
	Delivered, Expected         int
	WireBytes, Writes           int64
	Amplification               float64
	Framed                      float64
	Dropped                     int64
	ErrorEvents                 int64
	CPUBusy                     float64       // while measuring
	Wall                        time.Duration // the whole run, set-up and tear-down included
	PeakRSS                     int64
	PeakGoroutines              int
}

// simFrameBytes is what Noise (2-byte length, 16-byte tag) and yamux
// (12-byte header) add to one write of a small message on a real
// connection.
const simFrameBytes = 30

// Ratio is the share of expected deliveries that happened.
func (r SimResult) Ratio() float64 {
	if r.Expected == 0 {
		return 0
	}
	return float64(r.Delivered) / float64(r.Expected)
}

// RunSim builds a room on the simulated network, waits for its members to
// see each other, publishes cfg.Messages messages from random members
// cfg.Interval apart and measures their delivery.
func RunSim(ctx context.Context, cfg SimConfig) (res SimResult, err error) {
	res = SimResult{SimConfig: cfg}
	start := time.Now()
	peak := watchPeak(ctx)
	defer func() {
		res.Wall = time.Since(start)
		res.PeakRSS, res.PeakGoroutines = peak()
	}()
	// The default event queue (64 Ki events, 1 MB a member) is for
	// bursts; a thousand of them only feed the garbage collector.
	tr := new(deliveryTracer)
	r, err := newRoom(ctx, roomConfig{Router: cfg.Router, N: cfg.N, Degree: cfg.Degree, Size: cfg.Size, Seed: cfg.Seed,
		Measured: cfg.Messages, Warmup: cfg.Warmup, Unlimited: true, Hosts: SimHosts(cfg.OneWay, cfg.Bandwidth),
		EventBuffer: 1024, ChatOptions: []chat.Option{chat.WithHooks(chat.Hooks{PubSubTracer: tr, RosterFetched: tr.rosterFetched})}})
	if err != nil {
		return res, err
	}
	defer r.close()
	res.Edges = len(r.edges)
	res.MeanDegree, res.MinDegree, res.MaxDegree = r.degreeStats()
	logf := cfg.Log
	if logf == nil {
		logf = func(string, ...any) {}
	}
	logf("  %d members started and connected (%d links) after %s", cfg.N, res.Edges, FmtDur(time.Since(start)))
	stopProgress := make(chan struct{})
	go func() {
		t := time.NewTicker(10 * time.Second)
		defer t.Stop()
		for {
			select {
			case <-t.C:
			case <-stopProgress:
				return
			}
			n := 0
			var waiting []string
			for i := range cfg.N {
				if r.ready(i) {
					n++
				} else if len(waiting) < 3 {
					waiting = append(waiting, fmt.Sprintf("member %d: %d of %d neighbours, mesh %d",
						i, r.joined[i].Load(), r.deg[i], len(r.chats[i].MeshPeers(roomName))))
				}
			}
			rss, _ := RSS(os.Getpid())
			logf("  %d of %d members see all their neighbours after %s, RSS %s; waiting: %s",
				n, cfg.N, FmtDur(time.Since(start)), FmtMB(rss), strings.Join(waiting, "; "))
		}
	}()
	ready := cfg.ReadyTimeout
	if ready <= 0 {
		ready = time.Duration(max(1, float64(cfg.N*cfg.N)/1e4) * float64(90*time.Second))
	}
	share := cfg.ReadyShare
	if share <= 0 || share > 1 {
		share = 1
	}
	err = r.waitReadyShare(ctx, ready, share)
	close(stopProgress)
	if err != nil {
		return res, err
	}
	res.Setup = time.Since(start)
	res.Settle = waitStill(ctx, simQuiet, quietMax(cfg.N), func() int64 { return tr.delivered.Load() + tr.rosterNews.Load() }, math.MaxInt64)
	res.SetupDeliveries = tr.delivered.Load()
	r.warmup(ctx)

	rng := mrand.New(mrand.NewPCG(cfg.Seed, 1))
	sendAt := make([]int64, cfg.Messages)
	from := make([]int, cfg.Messages)
	if cfg.Window != nil {
		cfg.Window(true)
	}
	sn := r.hosts.H[0].(*simHost).net
	w0, n0, x0, e0, d0 := r.hosts.Written(), sn.writes.Load(), r.dropped(), r.chatErr.Load(), tr.delivered.Load()
	c0, t0 := CPUTime(), time.Now()
	tick := time.NewTicker(cfg.Interval)
	defer tick.Stop()
	var sends sync.WaitGroup
	defer sends.Wait() // before r.close
	for i := range cfg.Messages {
		from[i] = rng.IntN(cfg.N)
		sendAt[i] = time.Since(r.base).Nanoseconds()
		// Send returns once the message is stored and back: publish from
		// a goroutine so that one slow Send does not delay the schedule.
		sends.Add(1)
		go func() {
			defer sends.Done()
			if err := r.publish(ctx, from[i], i); err != nil && ctx.Err() == nil {
				r.chatErr.Add(1)
			}
		}()
		select {
		case <-tick.C:
		case <-ctx.Done():
			return res, ctx.Err()
		}
	}
	res.Expected = cfg.Messages * (cfg.N - 1)
	// Until everything arrived or nothing more does: a room that a loaded
	// process delivers slowly is measured late, not cut off at a bound.
	waitStill(ctx, simStall, simDrainMax, func() int64 { return r.recvM.Load() }, int64(res.Expected))
	sleepCtx(ctx, time.Second) // trailing gossip and IDONTWANT, as in the fan-out
	res.WireBytes, res.Writes = r.hosts.Written()-w0, sn.writes.Load()-n0
	res.CPUBusy = busy(CPUTime()-c0, time.Since(t0))
	if cfg.Window != nil {
		cfg.Window(false)
	}
	res.Dropped, res.ErrorEvents = r.dropped()-x0, r.chatErr.Load()-e0
	res.Deliveries = tr.delivered.Load() - d0

	lat := r.latencies(from, sendAt)
	res.Delivered = len(lat)
	res.Latency = NewDist(lat)
	payload := float64(int64(cfg.Size) * int64(res.Expected))
	res.Amplification = float64(res.WireBytes) / payload
	res.Framed = float64(res.WireBytes+simFrameBytes*res.Writes) / payload
	return res, nil
}

// deliveryTracer counts the GossipSub messages delivered to the members
// it is installed in (chat.Hooks).
type deliveryTracer struct {
	psTracer
	delivered  atomic.Int64
	rosterNews atomic.Int64
}

func (t *deliveryTracer) DeliverMessage(*pubsub.Message) { t.delivered.Add(1) }

// rosterFetched counts the presences a roster page brought that were new.
func (t *deliveryTracer) rosterFetched(_ string, _, fresh int) { t.rosterNews.Add(int64(fresh)) }

// simQuiet is how long a formed room must stay quiet before it is
// measured, and simQuietMax bounds the wait (longer for a bigger room:
// quietMax). After the last publish, the run waits for the rest of the
// deliveries until none came for simStall, at most simDrainMax.
const (
	simQuiet    = 2 * time.Second
	simQuietMax = time.Minute
	simStall    = 10 * time.Second
	simDrainMax = 5 * time.Minute
)

// quietMax bounds the wait for a room of n members to go quiet: a minute,
// and 150 ms a member past 400 (the set-up's roster exchanges drain in
// one process sharing 2 cores; what is still under way when measuring
// starts counts in the measured amplification).
func quietMax(n int) time.Duration {
	return max(simQuietMax, time.Duration(n)*150*time.Millisecond)
}

// waitStill waits until count reaches want, or has not changed for
// still, or max has passed, and returns how long it waited. With no
// target (want math.MaxInt64) it waits for the count to stop moving.
func waitStill(ctx context.Context, still, max time.Duration, count func() int64, want int64) time.Duration {
	start := time.Now()
	last, changed := count(), time.Now()
	for last < want && time.Since(changed) < still && time.Since(start) < max {
		if sleepCtx(ctx, 10*time.Millisecond) != nil {
			break
		}
		if n := count(); n != last {
			last, changed = n, time.Now()
		}
	}
	return time.Since(start)
}

// watchPeak samples this process's RSS and goroutines every 200 ms until
// ctx ends or the returned function is called, which reports the peaks.
func watchPeak(ctx context.Context) func() (int64, int) {
	ctx, cancel := context.WithCancel(ctx)
	var mu sync.Mutex
	var rss int64
	var gs int
	sample := func() {
		v, _ := RSS(os.Getpid())
		g := runtime.NumGoroutine()
		mu.Lock()
		rss, gs = max(rss, v), max(gs, g)
		mu.Unlock()
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		t := time.NewTicker(200 * time.Millisecond)
		defer t.Stop()
		for {
			sample()
			select {
			case <-t.C:
			case <-ctx.Done():
				return
			}
		}
	}()
	return func() (int64, int) {
		cancel()
		<-done
		sample()
		mu.Lock()
		defer mu.Unlock()
		return rss, gs
	}
}

package bench

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"time"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/peerstore"
	ma "github.com/multiformats/go-multiaddr"

	"github.com/parley-chat/parley/chat"
	"github.com/parley-chat/parley/internal/store"
	"github.com/parley-chat/parley/node"
)

// Sizes of the echo exchanges that stand in for a DM and its ack.
const (
	echoRequest = 160 // about a DM frame with a 100-byte text
	echoReply   = 40  // about an ack frame
)

// echoProtocol is the stream protocol of the libp2p echo reference.
const echoProtocol = "/parley-bench/echo/1.0.0"

// DMConfig bounds the DM benchmarks.
type DMConfig struct {
	RoundTrips  int // measured round trips (after Warmup)
	Warmup      int
	TextBytes   int // DM text length
	Throughput  int // DMs sent back to back for the throughput figure
	FirstDMRuns int // fresh receivers for the first-DM figure
	Timeout     time.Duration
	// SkipReferences skips the TCP and libp2p echo (for profiling the DM
	// path alone).
	SkipReferences bool
	Window         func(begin bool) // around the round trips; see FanoutConfig.Window
}

// DMResult is what the DM benchmarks measured.
//
// RTT is Service.SendDM until the sender's Delivered event, on a stream
// already open, one DM at a time. TCP is a raw TCP echo on loopback
// (160-byte request, 40-byte reply, Nagle off, as Go sets it): the
// physical floor. Stream is the same echo over a libp2p stream between the
// same two Parley nodes (TCP + Noise + yamux): the floor of any libp2p
// protocol. Throughput is DMs delivered per second when Throughput DMs are
// sent back to back to one peer (one stream, each waiting for its ack).
// FirstDM is SendDM to a peer whose address is known but that is not
// connected, until Delivered: dial, Noise and yamux handshakes, identify,
// stream negotiation, the DM and its ack.
type DMResult struct {
	DMConfig
	RTT, TCP, Stream Dist
	// The round trip in parts: the SendDM call itself, SendDM until the
	// receiver's DirectMessage event, and that event until the sender's
	// Delivered event.
	SendCall, OneWay, AckBack Dist
	Throughput                float64
	ThroughputTime            time.Duration
	Delivered                 int // of the Throughput DMs
	FirstDM                   Dist
	// The round trip and the throughput again with both nodes keeping
	// their state on disk (internal/store: SQLite, WAL, synchronous=NORMAL)
	// instead of in memory: DiskRoundTrips of them.
	DiskRTT        Dist
	DiskThroughput float64
}

// DiskRoundTrips is how many round trips are measured on disk.
const DiskRoundTrips = 500

// Ratio is the DM round trip over the raw TCP round trip, at p50 and p99.
func (r DMResult) Ratio() (p50, p99 float64) {
	if r.TCP.P50 == 0 || r.TCP.P99 == 0 {
		return 0, 0
	}
	return float64(r.RTT.P50) / float64(r.TCP.P50), float64(r.RTT.P99) / float64(r.TCP.P99)
}

// dmPeer is a real Parley node (node.New: TCP on 127.0.0.1, DHT, no mDNS)
// with a chat service.
type dmPeer struct {
	n   *node.Node
	svc *chat.Service
	st  *store.Store // nil: the service's own in-memory store
	// received gets the ID and arrival time of DirectMessage events when
	// the peer drains its own events (never blocking: dropped when full).
	received chan dmArrival
}

type dmArrival struct {
	id string
	at time.Time
}

func newDMPeer(drain bool) (*dmPeer, error) { return newDMPeerIn("", drain) }

// newDMPeerIn makes a dmPeer whose chat state is in an on-disk store in
// dir ("" for the in-memory default).
func newDMPeerIn(dir string, drain bool) (*dmPeer, error) {
	key, _, err := crypto.GenerateEd25519Key(rand.Reader)
	if err != nil {
		return nil, err
	}
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	n, err := node.New(node.WithIdentity(key), node.WithListenAddrs(ma.StringCast("/ip4/127.0.0.1/tcp/0")), node.WithLogger(quiet))
	if err != nil {
		return nil, err
	}
	// Unlimited: thousands of DMs a second to one peer measure the
	// protocol, not what a node accepts from one peer (chat.Limits).
	opts := []chat.Option{chat.WithLogger(quiet), chat.WithPathClassifier(n.RouteOf), chat.WithLimits(chat.Unlimited())}
	var st *store.Store
	if dir != "" {
		if st, err = store.Open(dir); err != nil {
			n.Close()
			return nil, err
		}
		opts = append(opts, chat.WithStore(st))
	}
	svc, err := chat.New(n.Host(), opts...)
	if err != nil {
		n.Close()
		if st != nil {
			st.Close()
		}
		return nil, err
	}
	p := &dmPeer{n: n, svc: svc, st: st, received: make(chan dmArrival, 4096)}
	if drain {
		sub, err := svc.Subscribe(chat.WithBuffer(eventBuffer))
		if err != nil {
			p.close()
			return nil, err
		}
		go func() {
			for st := range sub.C() {
				if dm, ok := st.Event.(chat.DirectMessage); ok {
					select {
					case p.received <- dmArrival{dm.ID, time.Now()}:
					default:
					}
				}
			}
		}()
	}
	return p, nil
}

func (p *dmPeer) close() {
	p.svc.Close()
	p.n.Close()
	if p.st != nil {
		p.st.Close()
	}
}

// awaitDelivered reads events until the Delivered event of id.
// eventBuffer is each benchmark reader's event queue: deeper than any
// burst the suite sends, so a reader never falls behind and loses events.
const eventBuffer = 1 << 16

func awaitDelivered(ctx context.Context, events <-chan chat.Stamped, id string, timeout time.Duration) error {
	t := time.NewTimer(timeout)
	defer t.Stop()
	for {
		select {
		case st, ok := <-events:
			if !ok {
				return errors.New("event stream closed")
			}
			switch ev := st.Event.(type) {
			case chat.Delivered:
				if ev.ID == id {
					return nil
				}
			case chat.Error:
				if ev.ID == id {
					return ev.Err
				}
			}
		case <-t.C:
			return fmt.Errorf("no ack within %v", timeout)
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// RunDM measures DM round trips, the TCP and libp2p echo references,
// throughput and the first DM to an unconnected peer.
func RunDM(ctx context.Context, cfg DMConfig) (DMResult, error) {
	res := DMResult{DMConfig: cfg}
	text := strings.Repeat("x", max(cfg.TextBytes, 1))

	if !cfg.SkipReferences {
		tcp, err := TCPEcho(ctx, cfg.Warmup, cfg.RoundTrips)
		if err != nil {
			return res, fmt.Errorf("tcp echo: %w", err)
		}
		res.TCP = tcp
	}

	a, err := newDMPeer(false)
	if err != nil {
		return res, err
	}
	defer a.close()
	b, err := newDMPeer(true)
	if err != nil {
		return res, err
	}
	defer b.close()
	if err := a.n.Host().Connect(ctx, peer.AddrInfo{ID: b.n.ID(), Addrs: b.n.Host().Addrs()}); err != nil {
		return res, err
	}

	// libp2p echo over the same connection.
	if !cfg.SkipReferences {
		b.n.Host().SetStreamHandler(echoProtocol, serveEcho)
		st, err := a.n.Host().NewStream(ctx, b.n.ID(), echoProtocol)
		if err != nil {
			return res, err
		}
		res.Stream, err = echoLoop(st, cfg.Warmup, cfg.RoundTrips)
		st.Reset()
		if err != nil {
			return res, fmt.Errorf("libp2p echo: %w", err)
		}
	}

	// DM round trips, one at a time; the first opens the stream.
	sub, err := a.svc.Subscribe(chat.WithBuffer(eventBuffer))
	if err != nil {
		return res, err
	}
	defer sub.Close()
	events := sub.C()
	if cfg.Window != nil {
		cfg.Window(true)
	}
	var call, oneWay, back []time.Duration
	res.RTT, err = dmRoundTrips(ctx, a, b, events, text, cfg.Warmup, cfg.RoundTrips, cfg.Timeout, &call, &oneWay, &back)
	if cfg.Window != nil {
		cfg.Window(false)
	}
	if err != nil {
		return res, err
	}
	res.SendCall, res.OneWay, res.AckBack = NewDist(call), NewDist(oneWay), NewDist(back)

	if cfg.Throughput > 0 {
		res.Delivered, res.ThroughputTime, err = dmThroughput(ctx, a, b, events, text, cfg.Throughput, cfg.Timeout)
		res.Throughput = float64(res.Delivered) / res.ThroughputTime.Seconds()
		if err != nil {
			return res, err
		}
		// The same with both stores on disk.
		if err := runDiskDM(ctx, cfg, text, &res); err != nil {
			return res, fmt.Errorf("on disk: %w", err)
		}
	}

	// First DM to a peer that is not connected, with fresh receivers.
	var first []time.Duration
	for range cfg.FirstDMRuns {
		c, err := newDMPeer(true)
		if err != nil {
			return res, err
		}
		a.n.Host().Peerstore().AddAddrs(c.n.ID(), c.n.Host().Addrs(), peerstore.TempAddrTTL)
		t0 := time.Now()
		id, err := a.svc.SendDM(c.n.ID().String(), text)
		if err == nil {
			err = awaitDelivered(ctx, events, id, cfg.Timeout)
		}
		d := time.Since(t0)
		c.close()
		if err != nil {
			return res, fmt.Errorf("first dm: %w", err)
		}
		first = append(first, d)
	}
	res.FirstDM = NewDist(first)
	return res, nil
}

// serveEcho answers every echoRequest-byte request with echoReply bytes.
func serveEcho(st network.Stream) {
	defer st.Close()
	req, reply := make([]byte, echoRequest), make([]byte, echoReply)
	for {
		if _, err := io.ReadFull(st, req); err != nil {
			return
		}
		if _, err := st.Write(reply); err != nil {
			return
		}
	}
}

// echoLoop times round trips of the echo on rw.
func echoLoop(rw io.ReadWriter, warmup, n int) (Dist, error) {
	req, reply := make([]byte, echoRequest), make([]byte, echoReply)
	samples := make([]time.Duration, 0, n)
	for i := range warmup + n {
		t0 := time.Now()
		if _, err := rw.Write(req); err != nil {
			return Dist{}, err
		}
		if _, err := io.ReadFull(rw, reply); err != nil {
			return Dist{}, err
		}
		if i >= warmup {
			samples = append(samples, time.Since(t0))
		}
	}
	return NewDist(samples), nil
}

// TCPEcho times n round trips of a raw TCP echo on 127.0.0.1.
func TCPEcho(ctx context.Context, warmup, n int) (Dist, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return Dist{}, err
	}
	defer l.Close()
	go func() {
		c, err := l.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		req, reply := make([]byte, echoRequest), make([]byte, echoReply)
		for {
			if _, err := io.ReadFull(c, req); err != nil {
				return
			}
			if _, err := c.Write(reply); err != nil {
				return
			}
		}
	}()
	var d net.Dialer
	c, err := d.DialContext(ctx, "tcp", l.Addr().String())
	if err != nil {
		return Dist{}, err
	}
	defer c.Close()
	return echoLoop(c, warmup, n)
}

// dmRoundTrips times n DM round trips from a to b, one at a time, after
// warmup more; call, oneWay and back (when not nil) get the parts.
func dmRoundTrips(ctx context.Context, a, b *dmPeer, events <-chan chat.Stamped, text string, warmup, n int, timeout time.Duration,
	call, oneWay, back *[]time.Duration) (Dist, error) {
	to := b.n.ID().String()
	samples := make([]time.Duration, 0, n)
	for i := range warmup + n {
		t0 := time.Now()
		id, err := a.svc.SendDM(to, text)
		if err != nil {
			return Dist{}, err
		}
		t1 := time.Now()
		if err := awaitDelivered(ctx, events, id, timeout); err != nil {
			return Dist{}, fmt.Errorf("dm %d: %w", i, err)
		}
		t3 := time.Now()
		if i < warmup {
			continue
		}
		samples = append(samples, t3.Sub(t0))
		if call == nil {
			continue
		}
		*call = append(*call, t1.Sub(t0))
	recv:
		for {
			select {
			case r := <-b.received:
				if r.id == id {
					*oneWay = append(*oneWay, r.at.Sub(t0))
					*back = append(*back, t3.Sub(r.at))
					break recv
				}
			case <-time.After(time.Second):
				break recv
			}
		}
	}
	return NewDist(samples), nil
}

// dmThroughput sends n DMs from a to b back to back (SendDM does not wait:
// several are in flight on the one stream) and times them until the last
// is Delivered.
func dmThroughput(ctx context.Context, a, b *dmPeer, events <-chan chat.Stamped, text string, n int, timeout time.Duration) (int, time.Duration, error) {
	to := b.n.ID().String()
	var got atomic.Int64
	done := make(chan struct{})
	stop := make(chan struct{})
	defer close(stop)
	go func() {
		defer close(done)
		for {
			select {
			case ev, ok := <-events:
				if !ok {
					return
				}
				if _, ok := ev.Event.(chat.Delivered); ok && got.Add(1) == int64(n) {
					return
				}
			case <-stop:
				return
			}
		}
	}()
	t0 := time.Now()
	for range n {
		if _, err := a.svc.SendDM(to, text); err != nil {
			return 0, time.Since(t0), err
		}
	}
	select {
	case <-done:
	case <-time.After(timeout):
	case <-ctx.Done():
		return 0, time.Since(t0), ctx.Err()
	}
	d := time.Since(t0)
	if int(got.Load()) < n {
		return int(got.Load()), d, fmt.Errorf("throughput: %d of %d DMs delivered within %v", got.Load(), n, timeout)
	}
	return n, d, nil
}

// runDiskDM measures the round trip and the throughput between two nodes
// whose stores are on disk.
func runDiskDM(ctx context.Context, cfg DMConfig, text string, res *DMResult) error {
	dir, err := os.MkdirTemp("", "parley-bench-dm-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	a, err := newDMPeerIn(filepath.Join(dir, "a"), false)
	if err != nil {
		return err
	}
	defer a.close()
	b, err := newDMPeerIn(filepath.Join(dir, "b"), true)
	if err != nil {
		return err
	}
	defer b.close()
	if err := a.n.Host().Connect(ctx, peer.AddrInfo{ID: b.n.ID(), Addrs: b.n.Host().Addrs()}); err != nil {
		return err
	}
	sub, err := a.svc.Subscribe(chat.WithBuffer(eventBuffer))
	if err != nil {
		return err
	}
	defer sub.Close()
	res.DiskRTT, err = dmRoundTrips(ctx, a, b, sub.C(), text, cfg.Warmup, DiskRoundTrips, cfg.Timeout, nil, nil, nil)
	if err != nil {
		return err
	}
	n, d, err := dmThroughput(ctx, a, b, sub.C(), text, cfg.Throughput, cfg.Timeout)
	res.DiskThroughput = float64(n) / d.Seconds()
	return err
}

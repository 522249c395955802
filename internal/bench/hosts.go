package bench

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/transport"
	yamux "github.com/libp2p/go-libp2p/p2p/muxer/yamux"
	"github.com/libp2p/go-libp2p/p2p/security/noise"
	"github.com/libp2p/go-libp2p/p2p/transport/tcp"
	manet "github.com/multiformats/go-multiaddr/net"
)

// WireCounter counts the bytes a host writes to and reads from its TCP
// sockets: everything on the wire above TCP (multistream, Noise frames and
// tags, yamux headers, pubsub RPCs, identify, ...).
type WireCounter struct {
	Written, Read atomic.Int64
}

// countingUpgrader wraps the raw TCP connection of every dial and accept
// in a byte counter before go-libp2p secures and multiplexes it.
type countingUpgrader struct {
	transport.Upgrader
	c *WireCounter
}

func (u countingUpgrader) Upgrade(ctx context.Context, t transport.Transport, c manet.Conn, dir network.Direction, p peer.ID, s network.ConnManagementScope) (transport.CapableConn, error) {
	return u.Upgrader.Upgrade(ctx, t, &countingConn{Conn: c, c: u.c}, dir, p, s)
}

func (u countingUpgrader) UpgradeGatedMaListener(t transport.Transport, l transport.GatedMaListener) transport.Listener {
	return u.Upgrader.UpgradeGatedMaListener(t, countingListener{GatedMaListener: l, c: u.c})
}

type countingListener struct {
	transport.GatedMaListener
	c *WireCounter
}

func (l countingListener) Accept() (manet.Conn, network.ConnManagementScope, error) {
	c, s, err := l.GatedMaListener.Accept()
	if err != nil {
		return c, s, err
	}
	return &countingConn{Conn: c, c: l.c}, s, nil
}

type countingConn struct {
	manet.Conn
	c *WireCounter
}

func (c *countingConn) Read(b []byte) (int, error) {
	n, err := c.Conn.Read(b)
	c.c.Read.Add(int64(n))
	return n, err
}

func (c *countingConn) Write(b []byte) (int, error) {
	n, err := c.Conn.Write(b)
	c.c.Written.Add(int64(n))
	return n, err
}

// NewLightHost starts a lighter libp2p host than node.New, for benchmarks
// with many hosts in one process: TCP on 127.0.0.1 only, Noise, yamux, no
// DHT, no relay, no QUIC, no resource limits, and the bytes of its TCP
// connections counted in c (if not nil).
func NewLightHost(c *WireCounter) (host.Host, error) {
	if c == nil {
		c = new(WireCounter)
	}
	tr := func(u transport.Upgrader, rcmgr network.ResourceManager) (*tcp.TcpTransport, error) {
		return tcp.NewTCPTransport(countingUpgrader{Upgrader: u, c: c}, rcmgr, nil)
	}
	return libp2p.New(
		libp2p.ListenAddrStrings("/ip4/127.0.0.1/tcp/0"),
		libp2p.Transport(tr),
		libp2p.Security(noise.ID, noise.New),
		libp2p.Muxer(yamux.ID, yamux.DefaultTransport),
		libp2p.ResourceManager(&network.NullResourceManager{}),
		libp2p.DisableRelay(),
		libp2p.DisableMetrics(),
		// Loopback hosts have nothing to learn from AutoNAT, and its
		// ambient service once hung a host's Close for minutes at the end
		// of a 50-member run.
		libp2p.ForceReachabilityPrivate(),
	)
}

// Hosts is a set of light hosts with their wire counters.
type Hosts struct {
	H   []host.Host
	Ctr []*WireCounter
	// Link, if set, is called before a dials b: a simulated network
	// (SimHosts) must lay the link first.
	Link func(a, b int) error
	// Done, if set, is called by Close after the hosts are closed.
	Done func()
	// Parallel bounds the dials under way at once (default 8), and
	// DialTimeout each dial with its identify exchange (default 20 s).
	Parallel    int
	DialTimeout time.Duration
}

// NewHosts starts n light hosts.
func NewHosts(n int) (*Hosts, error) {
	hs := &Hosts{}
	for range n {
		c := new(WireCounter)
		h, err := NewLightHost(c)
		if err != nil {
			hs.Close()
			return nil, fmt.Errorf("start host: %w", err)
		}
		hs.H = append(hs.H, h)
		hs.Ctr = append(hs.Ctr, c)
	}
	return hs, nil
}

// Written is the sum of the bytes all hosts wrote to their sockets.
func (hs *Hosts) Written() int64 {
	var sum int64
	for _, c := range hs.Ctr {
		sum += c.Written.Load()
	}
	return sum
}

// Close closes every host.
func (hs *Hosts) Close() {
	for _, h := range hs.H {
		h.Close()
	}
	if hs.Done != nil {
		hs.Done()
	}
}

// Info returns what another host needs to dial h.
func Info(h host.Host) peer.AddrInfo { return peer.AddrInfo{ID: h.ID(), Addrs: h.Addrs()} }

// RandomGraph returns the edges of the topology used for rooms: node i > 0
// first dials one node started before it, chosen uniformly (a random
// recursive tree, so the graph is connected), then every node dials further
// distinct random peers until it has dialed k. Links are undirected and
// not repeated, so the mean degree is just under 2k; this is what a node
// that connects to the few members its discovery returned produces.
// k >= n-1 gives the full mesh that mDNS produces on one LAN.
func RandomGraph(n, k int, rng *rand.Rand) [][2]int {
	if n < 2 {
		return nil
	}
	k = min(max(k, 1), n-1)
	type key struct{ a, b int }
	seen := make(map[key]bool)
	var edges [][2]int
	add := func(a, b int) bool {
		if a == b {
			return false
		}
		kk := key{min(a, b), max(a, b)}
		if seen[kk] {
			return false
		}
		seen[kk] = true
		edges = append(edges, [2]int{a, b})
		return true
	}
	dialed := make([]int, n)
	for i := 1; i < n; i++ {
		add(i, rng.IntN(i))
		dialed[i]++
	}
	if k == n-1 {
		for a := range n {
			for b := a + 1; b < n; b++ {
				add(a, b)
			}
		}
		return edges
	}
	for i := range n {
		// Bounded: at most 20 n tries per node.
		for try := 0; dialed[i] < k && try < 20*n; try++ {
			if add(i, rng.IntN(n)) {
				dialed[i]++
			}
		}
	}
	return edges
}

// Degrees returns each node's number of links.
func Degrees(n int, edges [][2]int) []int {
	d := make([]int, n)
	for _, e := range edges {
		d[e[0]]++
		d[e[1]]++
	}
	return d
}

// Connect dials the edges (a dials b), a few at a time.
func (hs *Hosts) Connect(ctx context.Context, edges [][2]int) error {
	var wg sync.WaitGroup
	sem := make(chan struct{}, cmp.Or(hs.Parallel, 8))
	errs := make([]error, len(edges))
	for i, e := range edges {
		if hs.Link != nil {
			if errs[i] = hs.Link(e[0], e[1]); errs[i] != nil {
				continue
			}
		}
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			// On a loaded machine a handshake now and then outlasts its
			// timeout: one lost link is not what a run measures, so it
			// is dialled once more (past the dial backoff).
			for attempt := range 2 {
				cctx, cancel := context.WithTimeout(ctx, cmp.Or(hs.DialTimeout, 20*time.Second))
				if attempt > 0 {
					cctx = network.WithForceDirectDial(cctx, "retry after a failed dial")
				}
				errs[i] = hs.H[e[0]].Connect(cctx, Info(hs.H[e[1]]))
				cancel()
				if errs[i] == nil || ctx.Err() != nil {
					break
				}
			}
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

// waitUntil polls cond every 10 ms until it holds, ctx ends or d passes.
func waitUntil(ctx context.Context, d time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) || ctx.Err() != nil {
			return false
		}
		time.Sleep(10 * time.Millisecond)
	}
	return true
}

// sleepCtx sleeps for d or until ctx ends.
func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

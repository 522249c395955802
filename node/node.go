package node

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	dht "github.com/libp2p/go-libp2p-kad-dht"
	"github.com/libp2p/go-libp2p-kad-dht/dual"
	p2pconfig "github.com/libp2p/go-libp2p/config"
	"github.com/libp2p/go-libp2p/core/event"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/routing"
	tpt "github.com/libp2p/go-libp2p/core/transport"
	drouting "github.com/libp2p/go-libp2p/p2p/discovery/routing"
	"github.com/libp2p/go-libp2p/p2p/host/autorelay"
	bhost "github.com/libp2p/go-libp2p/p2p/host/basic"
	"github.com/libp2p/go-libp2p/p2p/host/peerstore/pstoremem"
	rcmgr "github.com/libp2p/go-libp2p/p2p/host/resource-manager"
	yamux "github.com/libp2p/go-libp2p/p2p/muxer/yamux"
	"github.com/libp2p/go-libp2p/p2p/net/connmgr"
	"github.com/libp2p/go-libp2p/p2p/net/swarm"
	tptu "github.com/libp2p/go-libp2p/p2p/net/upgrader"
	relayv2 "github.com/libp2p/go-libp2p/p2p/protocol/circuitv2/relay"
	"github.com/libp2p/go-libp2p/p2p/protocol/holepunch"
	"github.com/libp2p/go-libp2p/p2p/security/noise"
	libp2ptls "github.com/libp2p/go-libp2p/p2p/security/tls"
	libp2pquic "github.com/libp2p/go-libp2p/p2p/transport/quic"
	"github.com/libp2p/go-libp2p/p2p/transport/tcp"
	ma "github.com/multiformats/go-multiaddr"
	"go.uber.org/fx"
)

// DHTProtocolPrefix keeps Parley's DHT apart from the public IPFS one.
const DHTProtocolPrefix = "/parley"

// ErrClosed is returned by methods of a closed Node.
var ErrClosed = errors.New("node closed")

// Node is a running libp2p host with Parley's transports, limits, DHT,
// discovery and NAT traversal.
type Node struct {
	cfg  config
	host host.Host
	dht  *dual.DHT
	disc *drouting.RoutingDiscovery
	log  *slog.Logger

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	closeOnce   sync.Once
	mdns        interface{ Close() error }
	punches     punchTracker
	relays      *relayState
	gater       *gater
	lan         lanPeers      // found by mDNS
	pathChanged event.Emitter // EvtPathChanged
	started     time.Time
	natReady    chan struct{} // closed when discovery may dial (see watchNAT)
	observed    observations  // identify's view of this node, per peer
	reach       reachState    // AutoNAT v2's last verdicts (watchReachability)
}

// reachState is AutoNAT v2's last verdict on the node's addresses.
type reachState struct {
	mu                     sync.Mutex
	checked                bool
	reachable, unreachable []ma.Multiaddr
}

// New starts a node. It listens before it returns; Close stops it.
func New(opts ...Option) (*Node, error) {
	cfg := defaults()
	for _, o := range opts {
		if err := o(&cfg); err != nil {
			return nil, err
		}
	}
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	if len(cfg.listen) == 0 {
		for _, s := range DefaultListenAddrs {
			cfg.listen = append(cfg.listen, ma.StringCast(s))
		}
	}

	ctx, cancel := context.WithCancel(context.Background())
	n := &Node{cfg: cfg, log: cfg.logger, ctx: ctx, cancel: cancel, started: time.Now()}
	n.punches.next = cfg.holePunchTracer
	n.punches.report = cfg.onHolePunch
	n.punches.direct = func(p peer.ID) (string, string) {
		r := n.RouteOf(p)
		return r.Family, r.Transport
	}
	n.natReady = make(chan struct{})
	n.relays = newRelayState()
	n.gater = &gater{next: cfg.gater}

	hc, err := n.hostConfig()
	if err != nil {
		cancel()
		return nil, fmt.Errorf("start libp2p host: %w", err)
	}
	h, err := hc.NewNode()
	if err != nil {
		cancel()
		return nil, fmt.Errorf("start libp2p host: %w", err)
	}
	n.host = h
	n.gater.net.Store(&netHolder{h.Network()})
	kick := make(chan struct{}, 1)
	h.Network().Notify(&network.NotifyBundle{ConnectedF: func(_ network.Network, c network.Conn) {
		if c.Stat().Direction == network.DirInbound {
			select {
			case kick <- struct{}{}:
			default:
			}
		}
	}})
	n.wg.Add(1)
	go n.keepInboundRoom(kick)
	if n.dht == nil {
		n.Close()
		return nil, errors.New("start libp2p host: DHT was not constructed")
	}
	n.disc = drouting.NewRoutingDiscovery(n.dht)
	if n.pathChanged, err = h.EventBus().Emitter(new(EvtPathChanged)); err != nil {
		n.Close()
		return nil, fmt.Errorf("start libp2p host: %w", err)
	}

	h.SetStreamHandler(ClockProtocol, handleClock)
	idSub, err := n.subscribeIdentify()
	if err != nil {
		n.Close()
		return nil, fmt.Errorf("start libp2p host: %w", err)
	}
	behindNAT := needsNATWait(cfg.bootstrap) && !cfg.public
	n.wg.Add(1)
	go n.watchIdentify(idSub, behindNAT)

	for _, p := range cfg.bootstrap {
		h.ConnManager().Protect(p.ID, "parley-bootstrap")
		n.wg.Add(1)
		go n.keepConnected(p)
	}
	if n.cfg.private {
		n.wg.Add(2)
		go n.watchRelays()
		go n.watchReachability()
	}
	if behindNAT {
		n.wg.Add(2)
		go n.watchNAT()
		go n.upgradeRelayed()
	} else {
		close(n.natReady)
	}
	if cfg.mdns {
		if err := n.startMDNS(); err != nil {
			n.Close()
			return nil, err
		}
	}
	return n, nil
}

// connGrace is how long a new connection is never trimmed.
const connGrace = 10 * time.Second

// hostConfig is the configuration of the libp2p host, given field by field
// instead of through go-libp2p's root package (libp2p.New and its options):
// that package's defaults name the WebSocket, WebTransport and WebRTC
// transports, so importing it links them (and pion's WebRTC stack) into
// every binary, used or not. Parley speaks TCP and QUIC only (DESIGN.md);
// leaving them out makes the release binary 4.2 MB smaller and an idle
// node 2.2–2.7 MB smaller in RSS (docs/benchmarks.md, "What the parley
// binary's memory is"). go-libp2p's config package still imports the
// WebRTC transport for one type, so pion's package initialisers remain.
// What libp2p.New would add by default is set here too, and a test checks
// that go-libp2p's fallback defaults find nothing left to fill in.
func (n *Node) hostConfig() (*p2pconfig.Config, error) {
	cfg := &n.cfg
	limits := rcmgr.PartialLimitConfig{
		System: rcmgr.ResourceLimits{
			Conns:         rcmgr.LimitVal(cfg.maxConns),
			ConnsInbound:  rcmgr.LimitVal(cfg.maxConns / 2),
			ConnsOutbound: rcmgr.LimitVal(cfg.maxConns / 2),
			Streams:       rcmgr.LimitVal(cfg.maxConns * 16),
		},
	}.Build(rcmgr.DefaultLimits.AutoScale())
	rm, err := rcmgr.NewResourceManager(rcmgr.NewFixedLimiter(limits))
	if err != nil {
		return nil, fmt.Errorf("resource manager: %w", err)
	}
	// A new connection is safe from trimming for connGrace (go-libp2p: a
	// minute): long enough to be tagged as a room or DM peer, short enough
	// that idle connections held by fresh identities cannot keep honest
	// newcomers out for long.
	cm, err := connmgr.NewConnManager(cfg.connLow, cfg.connHigh, connmgr.WithGracePeriod(connGrace))
	if err != nil {
		rm.Close()
		return nil, fmt.Errorf("connection manager: %w", err)
	}
	ps, err := pstoremem.NewPeerstore()
	if err != nil {
		rm.Close()
		cm.Close()
		return nil, fmt.Errorf("peerstore: %w", err)
	}

	hc := &p2pconfig.Config{
		PeerKey:     cfg.key,
		ListenAddrs: cfg.listen,
		Transports:  []fx.Option{transport(tcp.NewTCPTransport), transport(libp2pquic.NewTransport)},
		SecurityTransports: []p2pconfig.Security{
			{ID: noise.ID, Constructor: noise.New},
			{ID: libp2ptls.ID, Constructor: libp2ptls.New},
		},
		Muxers:              []tptu.StreamMuxer{{ID: yamux.ID, Muxer: yamux.DefaultTransport}},
		Peerstore:           ps,
		ConnManager:         cm,
		ResourceManager:     relayExemptRM{rm},
		ConnectionGater:     n.gater,
		UserAgent:           n.agent(),
		DialTimeout:         cfg.dialTimeout,
		RelayCustom:         true,
		Relay:               true,
		EnableHolePunching:  true,
		HolePunchingOptions: []holepunch.Option{holepunch.WithTracer(&n.punches)},
		Routing: func(h host.Host) (routing.PeerRouting, error) {
			d, err := n.newDHT(h)
			n.dht = d
			return d, err
		},
		// AutoNAT v2 on every node: a client that checks each of the
		// node's public addresses, and a server that checks its peers'.
		EnableAutoNATv2: true,
		// libp2p.New's black-hole detectors: a low success rate of dials
		// over UDP or IPv6 stops dialing them.
		UDPBlackHoleSuccessCounter:        &swarm.BlackHoleSuccessCounter{N: 100, MinSuccesses: 5, Name: "UDP"},
		CustomUDPBlackHoleSuccessCounter:  true,
		IPv6BlackHoleSuccessCounter:       &swarm.BlackHoleSuccessCounter{N: 100, MinSuccesses: 5, Name: "IPv6"},
		CustomIPv6BlackHoleSuccessCounter: true,
	}
	if cfg.metrics != nil {
		hc.PrometheusRegisterer = cfg.metrics
		// WithTracer alone would replace the metrics tracer go-libp2p adds
		// and lose the hole-punch metrics: keep both.
		hc.HolePunchingOptions = []holepunch.Option{holepunch.WithMetricsAndEventTracer(
			holepunch.NewMetricsTracer(holepunch.WithRegisterer(cfg.metrics)), &n.punches)}
	} else {
		// Without WithMetrics nothing reads go-libp2p's collectors (its
		// default is Prometheus' global registry, which parley never
		// serves): keep them off rather than update them on every
		// connection, stream and event.
		hc.DisableMetrics = true
	}
	if cfg.upnp {
		hc.NATManager = bhost.NewNATManager
	}
	if len(cfg.announce) > 0 {
		announce := cfg.announce
		hc.AddrsFactory = func([]ma.Multiaddr) []ma.Multiaddr { return announce }
	}
	if cfg.relayService {
		hc.EnableRelayService = true
		hc.RelayServiceOpts = []relayv2.Option{relayv2.WithResources(cfg.relayRes)}
		hc.AutoNATConfig.EnableService = true
	}
	switch {
	case cfg.public:
		public := network.ReachabilityPublic
		hc.AutoNATConfig.ForceReachability = &public
	case len(cfg.bootstrap) > 0:
		// Bootstrap peers double as static relays. The node declares itself
		// private at start, whatever its interfaces carry, so that it
		// reserves a slot on every one of them at once (measured: ~30 ms,
		// against ~17 s when AutoNAT v1 decides first, and never for a
		// NATed host with a public-looking interface address). It gives
		// the reservations up only when AutoNAT v2 confirms it is
		// reachable directly: see watchReachability.
		n.cfg.private = true
		private := network.ReachabilityPrivate
		hc.AutoNATConfig.ForceReachability = &private
		hc.EnableAutoRelay = true
		hc.AutoRelayOpts = []autorelay.Option{
			autorelay.WithStaticRelays(cfg.bootstrap),
			autorelay.WithBackoff(5 * time.Second),
			autorelay.WithMinInterval(time.Second),
			// Reserve on the first relay that answers: with several
			// relays and one of them down, AutoRelay would otherwise
			// wait for all of them (its boot delay is 3 minutes).
			autorelay.WithBootDelay(0),
		}
	}
	return hc, nil
}

// transport is libp2p.Transport for a constructor without options: it
// hands the constructor to go-libp2p's dependency injection, which calls
// it with what it asks for (upgrader, key, resource manager...).
func transport(constructor any) fx.Option {
	return fx.Provide(fx.Annotate(constructor,
		fx.As(new(tpt.Transport)),
		fx.ResultTags(`group:"transport"`)))
}

// Agents are the identify agent versions of Parley nodes: a relay says it
// is one, so that chat shows it as the relay and not as a nameless member
// of every room it carries.
const (
	Agent      = "parley"
	RelayAgent = "parley-relay"
)

func (n *Node) agent() string {
	if n.cfg.relayService {
		return RelayAgent
	}
	return Agent
}

// IsRelayAgent reports whether an identify agent version is a Parley
// relay's.
func IsRelayAgent(agent string) bool {
	return agent == RelayAgent || strings.HasPrefix(agent, RelayAgent+"/")
}

func (n *Node) newDHT(h host.Host) (*dual.DHT, error) {
	keepAll := func(addrs []ma.Multiaddr) []ma.Multiaddr { return addrs }
	wanMode := dht.ModeAuto
	if n.cfg.public {
		wanMode = dht.ModeServer
	}
	d, err := dual.New(n.ctx, h,
		// No dht.BootstrapPeers: the DHT is built before the host listens,
		// and kad-dht dials its bootstrap peers at once, from a random
		// port instead of the listen port. An observed address of that
		// connection is useless for hole punching (go-libp2p only records
		// observations of connections from a listen port), which broke
		// DCUtR in about one run in four. keepConnected dials the
		// bootstrap peers after listening, and the DHT adds them to its
		// routing table when they connect.
		dual.DHTOption(dht.ProtocolPrefix(DHTProtocolPrefix)),
		dual.WanDHTOption(dht.Mode(wanMode)),
		// The LAN side answers queries from every private peer, loopback
		// included, and keeps their private addresses: that is what lets
		// nodes on one machine or one LAN find each other.
		dual.LanDHTOption(dht.Mode(dht.ModeServer), dht.AddressFilter(keepAll)),
	)
	if err != nil {
		return nil, fmt.Errorf("start DHT: %w", err)
	}
	return d, nil
}

// Host returns the libp2p host.
func (n *Node) Host() host.Host { return n.host }

// ID returns the node's peer ID.
func (n *Node) ID() peer.ID { return n.host.ID() }

// Addrs returns the node's full multiaddrs, each ending in /p2p/<id>.
func (n *Node) Addrs() []ma.Multiaddr {
	addrs, err := peer.AddrInfoToP2pAddrs(&peer.AddrInfo{ID: n.host.ID(), Addrs: n.host.Addrs()})
	if err != nil {
		return nil
	}
	return addrs
}

// Close stops discovery, closes every connection and waits for the node's
// goroutines. It is safe to call more than once.
func (n *Node) Close() error {
	var errs []error
	n.closeOnce.Do(func() {
		n.cancel()
		if n.mdns != nil { // first, so that no new dial starts
			errs = append(errs, n.mdns.Close())
		}
		n.wg.Wait() // keepers and discovery loops end with n.ctx
		n.punches.close()
		if n.dht != nil {
			errs = append(errs, n.dht.Close())
		}
		if n.pathChanged != nil {
			n.pathChanged.Close()
		}
		if n.host != nil {
			errs = append(errs, n.host.Close())
		}
	})
	return errors.Join(errs...)
}

package node

import (
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"time"

	"github.com/libp2p/go-libp2p/core/connmgr"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"
	relayv2 "github.com/libp2p/go-libp2p/p2p/protocol/circuitv2/relay"
	"github.com/libp2p/go-libp2p/p2p/protocol/holepunch"
	ma "github.com/multiformats/go-multiaddr"
	"github.com/prometheus/client_golang/prometheus"
)

// DefaultListenAddrs are used when no WithListenAddrs option is given:
// TCP and QUIC v1 on every IPv4 and IPv6 interface, on a random port.
var DefaultListenAddrs = []string{
	"/ip4/0.0.0.0/tcp/0",
	"/ip4/0.0.0.0/udp/0/quic-v1",
	"/ip6/::/tcp/0",
	"/ip6/::/udp/0/quic-v1",
}

// Option configures a Node.
type Option func(*config) error

type config struct {
	key       crypto.PrivKey
	listen    []ma.Multiaddr
	announce  []ma.Multiaddr
	bootstrap []peer.AddrInfo
	mdns      bool
	upnp      bool
	logger    *slog.Logger

	// Relay/bridge role.
	relayService bool
	relayRes     relayv2.Resources
	public       bool

	holePunchTracer holepunch.EventTracer
	metrics         prometheus.Registerer
	onRelay         func([]ma.Multiaddr)
	onHolePunch     func(HolePunchResult)
	gater           connmgr.ConnectionGater
	private         bool // set by New: starts private, AutoRelay on (see watchReachability)

	connLow, connHigh int
	maxConns          int
	dialTimeout       time.Duration
}

func defaults() config {
	return config{
		logger:      slog.Default(),
		connLow:     96,
		connHigh:    192,
		maxConns:    512,
		dialTimeout: 15 * time.Second,
	}
}

func (c *config) validate() error {
	if c.key == nil {
		return errors.New("no identity: use WithIdentity")
	}
	return nil
}

// WithIdentity sets the node's private key (see LoadOrCreateIdentity).
func WithIdentity(key crypto.PrivKey) Option {
	return func(c *config) error { c.key = key; return nil }
}

// WithListenAddrs replaces DefaultListenAddrs.
func WithListenAddrs(addrs ...ma.Multiaddr) Option {
	return func(c *config) error { c.listen = append(c.listen, addrs...); return nil }
}

// WithAnnounceAddrs makes the node advertise exactly these addresses, e.g.
// the public address of a port forward, instead of what it observes.
func WithAnnounceAddrs(addrs ...ma.Multiaddr) Option {
	return func(c *config) error { c.announce = append(c.announce, addrs...); return nil }
}

// WithBootstrap gives peers that are dialed at start, kept connected
// (reconnecting with backoff) and used as DHT entry points and static relays.
// Entries for one peer are merged: give a relay's IPv4 and IPv6, TCP and
// QUIC addresses, and the node dials whichever works.
func WithBootstrap(peers ...peer.AddrInfo) Option {
	return func(c *config) error {
		for _, p := range peers {
			i := slices.IndexFunc(c.bootstrap, func(q peer.AddrInfo) bool { return q.ID == p.ID })
			if i < 0 {
				c.bootstrap = append(c.bootstrap, peer.AddrInfo{ID: p.ID, Addrs: slices.Clone(p.Addrs)})
				continue
			}
			for _, a := range p.Addrs {
				if !slices.ContainsFunc(c.bootstrap[i].Addrs, a.Equal) {
					c.bootstrap[i].Addrs = append(c.bootstrap[i].Addrs, a)
				}
			}
		}
		return nil
	}
}

// WithMDNS turns LAN discovery by mDNS on or off (off by default, so that
// tests and embedders never multicast on real interfaces by accident).
func WithMDNS(on bool) Option {
	return func(c *config) error { c.mdns = on; return nil }
}

// WithUPnP asks the gateway for a port mapping (UPnP/NAT-PMP). Off by default.
func WithUPnP(on bool) Option {
	return func(c *config) error { c.upnp = on; return nil }
}

// WithLogger sets the structured logger.
func WithLogger(l *slog.Logger) Option {
	return func(c *config) error { c.logger = l; return nil }
}

// WithRelayService makes the node a public relay: circuit relay v2 service
// with the given resources, AutoNAT service, reachability forced public and
// the DHT in server mode on both sides.
func WithRelayService(res relayv2.Resources) Option {
	return func(c *config) error {
		c.relayService = true
		c.relayRes = res
		c.public = true
		return nil
	}
}

// WithHolePunchTracer observes hole punching attempts (to tell a
// hole-punched connection from one that was direct from the start).
func WithHolePunchTracer(t holepunch.EventTracer) Option {
	return func(c *config) error { c.holePunchTracer = t; return nil }
}

// WithConnLimits sets the connection manager's low and high water marks and
// the resource manager's hard cap on connections: 0 < low <= high <= max.
// Above high connections, the connection manager closes the least useful
// ones down to low; the resource manager refuses any past max.
func WithConnLimits(low, high, max int) Option {
	return func(c *config) error {
		var reason string
		switch {
		case low <= 0:
			reason = "the low water mark must be positive"
		case high < low:
			reason = "the high water mark must not be below the low one"
		case max < high:
			reason = "the hard cap must not be below the high water mark, or connections are refused before the connection manager trims any"
		default:
			c.connLow, c.connHigh, c.maxConns = low, high, max
			return nil
		}
		return fmt.Errorf("node.WithConnLimits(%d, %d, %d): %s", low, high, max, reason)
	}
}

// WithRelayHook calls f whenever the node's relay reservations change,
// with the circuit addresses of those it holds (through its bootstrap
// relays): at the first reservation, when a relay is lost or comes back,
// and with none once all are lost or given up (AutoNAT confirmed the node
// is reachable directly). Calls come one at a time from one goroutine; f
// must not block.
func WithRelayHook(f func(addrs []ma.Multiaddr)) Option {
	return func(c *config) error { c.onRelay = f; return nil }
}

// WithHolePunchHook calls f whenever a round of hole punching with a peer
// ends: with the direct connection's family and transport when a try got
// through, or with the last error once the round's tries (up to 3) all
// failed. Calls come from go-libp2p's goroutines; f must not block.
func WithHolePunchHook(f func(HolePunchResult)) Option {
	return func(c *config) error { c.onHolePunch = f; return nil }
}

// WithConnectionGater refuses connections the gater refuses (a block
// list, or a test that keeps two peers apart).
func WithConnectionGater(g connmgr.ConnectionGater) Option {
	return func(c *config) error { c.gater = g; return nil }
}

// WithMetrics registers go-libp2p's collectors (resource manager, swarm,
// identify, hole punching, relay service and client, AutoNAT, event bus)
// on reg. Without it they are off.
func WithMetrics(reg prometheus.Registerer) Option {
	return func(c *config) error {
		if reg == nil {
			return errors.New("node.WithMetrics: nil registerer")
		}
		c.metrics = reg
		return nil
	}
}

package node

import (
	"slices"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/event"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/p2p/host/eventbus"
	"github.com/libp2p/go-libp2p/p2p/protocol/holepunch"
	ma "github.com/multiformats/go-multiaddr"
	manet "github.com/multiformats/go-multiaddr/net"
)

// natReadyTimeout bounds how long discovery waits for NAT traversal.
const natReadyTimeout = 10 * time.Second

// watchNAT closes n.natReady once the node can take part in hole punching
// and, when it declared itself private, has a relay address to advertise.
//
// Why discovery waits for this: go-libp2p's DCUtR service registers its
// handler, and starts watching for relayed connections to upgrade, only
// after the host learns a public address from an observer. A relayed
// connection opened before that is never upgraded, and a provider record
// advertised before the relay reservation carries no address others can
// dial. The wait only applies to nodes that reached a bootstrap peer over a
// public address (on a LAN or loopback there is nothing to wait for) and
// is bounded by natReadyTimeout.
func (n *Node) watchNAT() {
	defer n.wg.Done()
	defer close(n.natReady)
	sub, err := n.host.EventBus().Subscribe([]any{
		new(event.EvtLocalProtocolsUpdated),
		new(event.EvtPeerConnectednessChanged),
		new(event.EvtLocalAddressesUpdated),
	})
	if err != nil {
		n.log.Warn("watch NAT traversal", "err", err)
		return
	}
	defer sub.Close()
	timeout := time.NewTimer(natReadyTimeout)
	defer timeout.Stop()
	for {
		relaysChanged := n.relays.changed() // before reading, so no change is missed
		if n.natTraversalReady(len(n.RelayAddrs()) > 0) {
			n.log.Info("ready for NAT traversal", "after", time.Since(n.started).Round(time.Millisecond))
			return
		}
		select {
		case <-n.ctx.Done():
			return
		case <-timeout.C:
			n.log.Warn("no public address learned from the bootstrap peers in time: hole punching may not work", "waited", natReadyTimeout)
			return
		case <-sub.Out():
		case <-relaysChanged:
		}
	}
}

func (n *Node) natTraversalReady(reserved bool) bool {
	if !n.publicBootstrapConnected() {
		return false
	}
	if !slices.Contains(n.host.Mux().Protocols(), holepunch.Protocol) {
		return false
	}
	return reserved || !n.cfg.private
}

// publicBootstrapConnected reports whether a bootstrap peer is connected
// over a public address.
func (n *Node) publicBootstrapConnected() bool {
	for _, p := range n.cfg.bootstrap {
		for _, c := range n.host.Network().ConnsToPeer(p.ID) {
			if manet.IsPublicAddr(c.RemoteMultiaddr()) && !isRelayed(c) {
				return true
			}
		}
	}
	return false
}

// needsNATWait reports whether discovery should wait for watchNAT: only
// when some bootstrap address is public.
func needsNATWait(bootstrap []peer.AddrInfo) bool {
	for _, p := range bootstrap {
		for _, a := range p.Addrs {
			if manet.IsPublicAddr(a) {
				return true
			}
		}
	}
	return false
}

// RelayAddrs returns the node's circuit addresses: those of the
// reservations it holds on its relays, none once it gave them up because
// AutoNAT confirmed it is reachable directly.
func (n *Node) RelayAddrs() []ma.Multiaddr { return n.relays.current() }

// relayState is what the node knows of its relay reservations.
type relayState struct {
	mu      sync.Mutex
	circuit []ma.Multiaddr // AutoRelay's circuit addresses, one set per reservation
	public  bool           // AutoNAT v2 confirmed direct reachability: reservations given up
	next    chan struct{}  // closed and replaced on every change
}

func newRelayState() *relayState { return &relayState{next: make(chan struct{})} }

// current returns the circuit addresses of the reservations in use.
func (r *relayState) current() []ma.Multiaddr {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.public {
		return nil
	}
	return slices.Clone(r.circuit)
}

// changed returns a channel that is closed at the next change.
func (r *relayState) changed() <-chan struct{} {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.next
}

func (r *relayState) update(f func()) {
	r.mu.Lock()
	defer r.mu.Unlock()
	f()
	close(r.next)
	r.next = make(chan struct{})
}

func (r *relayState) setCircuit(addrs []ma.Multiaddr) {
	r.update(func() { r.circuit = slices.Clone(addrs) })
}

func (r *relayState) setPublic(public bool) {
	r.update(func() { r.public = public })
}

// watchRelays follows AutoRelay's reservations and reports every change
// of the node's circuit addresses to the relay hook: the first
// reservation, one more or one fewer (a relay died, or came back), and
// none (all lost, or given up once reachable directly).
func (n *Node) watchRelays() {
	defer n.wg.Done()
	sub, err := n.host.EventBus().Subscribe(new(event.EvtAutoRelayAddrsUpdated), eventbus.Name("parley relays"))
	if err != nil {
		n.log.Warn("watch relay reservations", "err", err)
		return
	}
	defer sub.Close()
	var reported []ma.Multiaddr
	for {
		changed := n.relays.changed()
		if now := n.relays.current(); !sameAddrs(now, reported) {
			switch {
			case len(now) == 0:
				n.log.Info("no relay reservation any more", "after", time.Since(n.started).Round(time.Millisecond))
			case len(reported) == 0:
				n.log.Info("relay reservation made", "after", time.Since(n.started).Round(time.Millisecond), "addrs", now)
			default:
				n.log.Info("relay reservations changed", "after", time.Since(n.started).Round(time.Millisecond), "addrs", now)
			}
			reported = now
			if n.cfg.onRelay != nil {
				n.cfg.onRelay(slices.Clone(now))
			}
		}
		select {
		case <-n.ctx.Done():
			return
		case e, ok := <-sub.Out():
			if !ok {
				return
			}
			n.relays.setCircuit(e.(event.EvtAutoRelayAddrsUpdated).RelayAddrs)
		case <-changed:
		}
	}
}

func sameAddrs(a, b []ma.Multiaddr) bool {
	return slices.EqualFunc(a, b, func(x, y ma.Multiaddr) bool { return x.Equal(y) })
}

// waitNATReady blocks until watchNAT is done or ctx ends.
func (n *Node) waitNATReady(done <-chan struct{}) bool {
	select {
	case <-n.natReady:
		return true
	case <-done:
		return false
	}
}

// RelayAddrsChanged returns a channel closed at the next change of the
// relay reservations (RelayAddrs).
func (n *Node) RelayAddrsChanged() <-chan struct{} { return n.relays.changed() }

package node

import (
	"slices"
	"time"

	"github.com/libp2p/go-libp2p/core/event"
	"github.com/libp2p/go-libp2p/core/peer"
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
		new(event.EvtAutoRelayAddrsUpdated),
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
	reserved := false
	for {
		if !reserved && len(n.RelayAddrs()) > 0 {
			reserved = true
			n.log.Info("relay reservation made", "after", time.Since(n.started).Round(time.Millisecond), "addrs", n.RelayAddrs())
			if n.cfg.onRelay != nil {
				n.cfg.onRelay(n.RelayAddrs())
			}
		}
		if n.natTraversalReady(reserved) {
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

// RelayAddrs returns the node's circuit addresses (through its relays).
func (n *Node) RelayAddrs() []ma.Multiaddr {
	var out []ma.Multiaddr
	for _, a := range n.host.Addrs() {
		if _, err := a.ValueForProtocol(ma.P_CIRCUIT); err == nil {
			out = append(out, a)
		}
	}
	return out
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

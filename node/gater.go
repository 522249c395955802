package node

import (
	"sync"
	"sync/atomic"

	"github.com/libp2p/go-libp2p/core/connmgr"
	"github.com/libp2p/go-libp2p/core/control"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"
)

// gater refuses to dial circuit addresses through a bootstrap relay the
// node has lost, and otherwise asks the user's gater (WithConnectionGater),
// if any.
//
// Why: go-libp2p's circuit client dials a peer through one relay at a
// time. With a relay gone, a dial to a peer through it waits for the dial
// to the relay to time out (5 s for QUIC, whose ICMP errors are ignored;
// up to the dial timeout for a host that vanished) before the peer is
// tried through another relay, and DMs to it wait as long. The peer's
// circuit addresses through the dead relay stay known (the peerstore,
// provider records in the DHT) until they expire; refusing them at dial
// time makes a dial go straight to the relays that work. keepConnected
// redials the relay itself, and circuits through it are dialed again
// once it is back.
type gater struct {
	next connmgr.ConnectionGater   // may be nil
	net  atomic.Pointer[netHolder] // set once the host exists

	mu   sync.Mutex
	seen map[peer.ID]bool // bootstrap relays connected at least once
}

type netHolder struct{ network.Network }

var _ connmgr.ConnectionGater = (*gater)(nil)

// connected records that the node reached a bootstrap relay: from then
// on, circuits through it are dialed only while it is connected.
func (g *gater) connected(relay peer.ID) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.seen == nil {
		g.seen = make(map[peer.ID]bool)
	}
	g.seen[relay] = true
}

// relayLost reports whether relay is a bootstrap relay the node was
// connected to and has no open direct connection to now. The connection
// itself is asked (IsClosed): its muxer knows it is dead before the swarm
// has removed it, and the circuits on it die, and get redialed, at once.
func (g *gater) relayLost(relay peer.ID) bool {
	g.mu.Lock()
	seen := g.seen[relay]
	g.mu.Unlock()
	h := g.net.Load()
	if !seen || h == nil {
		return false
	}
	for _, c := range h.ConnsToPeer(relay) {
		if !c.IsClosed() && !isRelayed(c) {
			return false
		}
	}
	return true
}

// circuitRelay returns the relay of a circuit address, "" for any other.
func circuitRelay(a ma.Multiaddr) peer.ID {
	head, tail := ma.SplitFunc(a, func(c ma.Component) bool { return c.Protocol().Code == ma.P_CIRCUIT })
	if len(tail) == 0 {
		return ""
	}
	info, err := peer.AddrInfoFromP2pAddr(head)
	if err != nil {
		return ""
	}
	return info.ID
}

func (g *gater) InterceptPeerDial(p peer.ID) bool {
	return g.next == nil || g.next.InterceptPeerDial(p)
}

func (g *gater) InterceptAddrDial(p peer.ID, a ma.Multiaddr) bool {
	if r := circuitRelay(a); r != "" && g.relayLost(r) {
		return false
	}
	return g.next == nil || g.next.InterceptAddrDial(p, a)
}

func (g *gater) InterceptAccept(c network.ConnMultiaddrs) bool {
	return g.next == nil || g.next.InterceptAccept(c)
}

func (g *gater) InterceptSecured(d network.Direction, p peer.ID, c network.ConnMultiaddrs) bool {
	return g.next == nil || g.next.InterceptSecured(d, p, c)
}

func (g *gater) InterceptUpgraded(c network.Conn) (bool, control.DisconnectReason) {
	if g.next == nil {
		return true, 0
	}
	return g.next.InterceptUpgraded(c)
}

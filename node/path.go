package node

import (
	"sync"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/p2p/protocol/holepunch"
	ma "github.com/multiformats/go-multiaddr"
	manet "github.com/multiformats/go-multiaddr/net"
)

// How a peer is reached, best first.
const (
	PathLAN         = "lan"          // a private or loopback address
	PathHolePunched = "hole-punched" // a direct connection made by DCUtR
	PathDirect      = "direct"       // a public address
	PathRelayed     = "relayed"      // a circuit through a relay
)

// PathOf names the best open connection to p and, for a relayed one, the
// relay. It returns "" when p is not connected.
func (n *Node) PathOf(p peer.ID) (path string, relay peer.ID) {
	for _, c := range n.host.Network().ConnsToPeer(p) {
		cp, r := n.connPath(c)
		if rank(cp) > rank(path) {
			path, relay = cp, r
		}
	}
	return path, relay
}

func rank(path string) int {
	switch path {
	case PathLAN, PathDirect, PathHolePunched:
		return 2
	case PathRelayed:
		return 1
	}
	return 0
}

func (n *Node) connPath(c network.Conn) (string, peer.ID) {
	addr := c.RemoteMultiaddr()
	if isRelayed(c) {
		var relay peer.ID
		head, _ := ma.SplitFunc(addr, func(c ma.Component) bool { return c.Protocol().Code == ma.P_CIRCUIT })
		if info, err := peer.AddrInfoFromP2pAddr(head); err == nil {
			relay = info.ID
		}
		return PathRelayed, relay
	}
	if manet.IsPrivateAddr(addr) || manet.IsIPLoopback(addr) {
		return PathLAN, ""
	}
	if n.punches.punched(c.RemotePeer()) {
		return PathHolePunched, ""
	}
	return PathDirect, ""
}

func isRelayed(c network.Conn) bool {
	if c.Stat().Limited {
		return true
	}
	_, err := c.RemoteMultiaddr().ValueForProtocol(ma.P_CIRCUIT)
	return err == nil
}

// punchTracker remembers the peers that DCUtR is punching or has punched
// to, so that the direct connection it makes is named "hole-punched".
type punchTracker struct {
	mu    sync.Mutex
	peers map[peer.ID]bool // true once a punch succeeded
	next  holepunch.EventTracer
}

func (t *punchTracker) Trace(evt *holepunch.Event) {
	t.mu.Lock()
	if t.peers == nil {
		t.peers = make(map[peer.ID]bool)
	}
	switch e := evt.Evt.(type) {
	case *holepunch.StartHolePunchEvt:
		if !t.peers[evt.Remote] {
			t.peers[evt.Remote] = false
		}
	case *holepunch.EndHolePunchEvt:
		if e.Success {
			t.peers[evt.Remote] = true
		} else if !t.peers[evt.Remote] {
			delete(t.peers, evt.Remote)
		}
	}
	t.mu.Unlock()
	if t.next != nil {
		t.next.Trace(evt)
	}
}

// punched reports whether a direct connection to p came from hole punching
// (a punch is under way or succeeded).
func (t *punchTracker) punched(p peer.ID) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	_, ok := t.peers[p]
	return ok
}

package node

import (
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/p2p/protocol/holepunch"
	ma "github.com/multiformats/go-multiaddr"
	manet "github.com/multiformats/go-multiaddr/net"
)

// How a peer is reached, best first.
const (
	PathLAN         = "lan"          // found by mDNS on the local network, and reached there
	PathHolePunched = "hole-punched" // a direct connection made by DCUtR
	PathDirect      = "direct"       // a dialed (or dialing) address, public, private or loopback
	PathRelayed     = "relayed"      // a circuit through a relay
)

// EvtPathChanged is emitted on the host's event bus when a connected
// peer's path may have changed without any connection opening or closing:
// mDNS found on the LAN a peer that was connected already. Connection
// watchers (chat) ask PathOf again.
type EvtPathChanged struct{ Peer peer.ID }

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
	// "lan" means what a person reads it as: found on the local network
	// (by mDNS) and reached there. A private or loopback address dialed
	// through --bootstrap or found in the DHT is just direct.
	if (manet.IsPrivateAddr(addr) || manet.IsIPLoopback(addr)) && n.lan.has(c.RemotePeer()) {
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

// punchTracker follows go-libp2p's hole punching: which peers it has
// tried to reach directly, and to which a punch made the connection, so
// that the connection is named "hole-punched".
type punchTracker struct {
	mu        sync.Mutex
	attempted map[peer.ID]time.Time // last event about the peer
	punching  map[peer.ID]bool      // a punch started, or succeeded
	outcome   map[peer.ID]PunchOutcome
	next      holepunch.EventTracer
}

// PunchOutcome is how go-libp2p's last attempt to reach a peer directly
// (DCUtR: a direct dial, then hole punching) ended.
type PunchOutcome struct {
	At       time.Time
	Kind     string // "direct dial" or "hole punch"
	Success  bool
	Attempts int // hole punch rounds
	Elapsed  time.Duration
	Err      string
	Pending  bool // started, not ended yet
}

func (t *punchTracker) Trace(evt *holepunch.Event) {
	t.mu.Lock()
	if t.attempted == nil || len(t.attempted) >= maxLANPeers {
		// Bounded: forgetting a peer only loses its "hole-punched" name.
		t.attempted, t.punching = make(map[peer.ID]time.Time), make(map[peer.ID]bool)
		t.outcome = make(map[peer.ID]PunchOutcome)
	}
	now := time.Now()
	t.attempted[evt.Remote] = now
	switch e := evt.Evt.(type) {
	case *holepunch.StartHolePunchEvt:
		t.punching[evt.Remote] = true
		t.outcome[evt.Remote] = PunchOutcome{At: now, Kind: "hole punch", Pending: true}
	case *holepunch.HolePunchAttemptEvt:
		o := t.outcome[evt.Remote]
		o.Attempts = e.Attempt
		t.outcome[evt.Remote] = o
	case *holepunch.EndHolePunchEvt:
		if !e.Success {
			delete(t.punching, evt.Remote)
		}
		t.outcome[evt.Remote] = PunchOutcome{At: now, Kind: "hole punch", Success: e.Success,
			Attempts: t.outcome[evt.Remote].Attempts, Elapsed: e.EllapsedTime, Err: e.Error}
	case *holepunch.DirectDialEvt:
		t.outcome[evt.Remote] = PunchOutcome{At: now, Kind: "direct dial", Success: e.Success, Elapsed: e.EllapsedTime, Err: e.Error}
	}
	t.mu.Unlock()
	if t.next != nil {
		t.next.Trace(evt)
	}
}

// punched reports whether a direct connection to p comes from a punch.
func (t *punchTracker) punched(p peer.ID) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.punching[p]
}

// lastTry says when go-libp2p last did something to reach p directly
// (zero if never).
func (t *punchTracker) lastTry(p peer.ID) time.Time {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.attempted[p]
}

// lanPeers are the peers mDNS found on the local network.
type lanPeers struct {
	mu sync.Mutex
	m  map[peer.ID]struct{}
}

// maxLANPeers bounds the peers remembered as found by mDNS.
const maxLANPeers = 4096

// add notes p and reports whether it is new.
func (l *lanPeers) add(p peer.ID) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if _, ok := l.m[p]; ok {
		return false
	}
	if l.m == nil || len(l.m) >= maxLANPeers {
		l.m = make(map[peer.ID]struct{}) // forgetting only names a path "direct"
	}
	l.m[p] = struct{}{}
	return true
}

func (l *lanPeers) has(p peer.ID) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	_, ok := l.m[p]
	return ok
}

// lastOutcome returns how the last attempt to reach p directly ended.
func (t *punchTracker) lastOutcome(p peer.ID) (PunchOutcome, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	o, ok := t.outcome[p]
	return o, ok && !o.At.IsZero()
}

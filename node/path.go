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

// Address families and transports of a Route.
const (
	FamilyIP4     = "ip4"
	FamilyIP6     = "ip6"
	TransportTCP  = "tcp"
	TransportQUIC = "quic"
)

// Route is how a connected peer is reached: the path of the best open
// connection and, read from that connection's remote address, its address
// family and transport. For a relayed connection these are of the hop to
// the relay, which is what the traffic rides on.
type Route struct {
	Path      string  // PathLAN, PathDirect, PathHolePunched, PathRelayed; "" when not connected
	Relay     peer.ID // the relay, when Path is PathRelayed and it is known
	Family    string  // FamilyIP4 or FamilyIP6; "" when the address has no IP (a DNS name)
	Transport string  // TransportTCP, TransportQUIC, or the name of another transport
}

// AddrRoute returns the address family and transport of a connection's
// remote multiaddr, e.g. "ip6" and "quic" for /ip6/…/udp/…/quic-v1. A
// circuit address is read up to /p2p-circuit: the hop to the relay.
func AddrRoute(addr ma.Multiaddr) (family, transport string) {
	for _, c := range addr {
		switch c.Protocol().Code {
		case ma.P_IP4:
			family = FamilyIP4
		case ma.P_IP6:
			family = FamilyIP6
		case ma.P_TCP:
			transport = TransportTCP
		case ma.P_UDP:
			if transport == "" {
				transport = "udp"
			}
		case ma.P_QUIC, ma.P_QUIC_V1:
			transport = TransportQUIC
		case ma.P_WEBTRANSPORT, ma.P_WEBRTC_DIRECT, ma.P_WEBRTC, ma.P_WS, ma.P_WSS:
			transport = c.Protocol().Name
		case ma.P_CIRCUIT:
			return family, transport
		}
	}
	return family, transport
}

// EvtPathChanged is emitted on the host's event bus when a connected
// peer's path may have changed without any connection opening or closing:
// mDNS found on the LAN a peer that was connected already. Connection
// watchers (chat) ask PathOf again.
type EvtPathChanged struct{ Peer peer.ID }

// PathOf names the best open connection to p and, for a relayed one, the
// relay. It returns "" when p is not connected.
func (n *Node) PathOf(p peer.ID) (path string, relay peer.ID) {
	r := n.RouteOf(p)
	return r.Path, r.Relay
}

// RouteOf says how p is reached: the best open connection's path, relay,
// address family and transport. Its Path is "" when p is not connected.
// Of several equally good connections it names the one go-libp2p's swarm
// opens new streams on: the one with the most streams, then the newest.
func (n *Node) RouteOf(p peer.ID) Route {
	var best Route
	streams := -1
	var opened time.Time
	for _, c := range n.host.Network().ConnsToPeer(p) {
		cp, relay := n.connPath(c)
		ns, o := len(c.GetStreams()), c.Stat().Opened
		if r, b := rank(cp), rank(best.Path); r < b || r == b && (ns < streams || ns == streams && o.Before(opened)) {
			continue
		}
		best = Route{Path: cp, Relay: relay}
		best.Family, best.Transport = AddrRoute(c.RemoteMultiaddr())
		streams, opened = ns, o
	}
	return best
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

// HolePunchResult is how a round of hole punching with a peer ended:
// go-libp2p's DCUtR tries up to 3 times in a row, then gives up until a
// new relayed connection (see upgradeRelayed) starts another round.
type HolePunchResult struct {
	Peer      peer.ID
	OK        bool          // a direct connection was made
	Attempts  int           // tries in this round
	Elapsed   time.Duration // of the last try's dial
	Family    string        // of the direct connection, when OK
	Transport string        // of the direct connection, when OK
	Err       string        // why the last try failed, when not OK
}

// punchRetryWait is how long after a failed try the tracker waits for
// the next one of the same round before it reports the round as failed:
// DCUtR starts its next try after one round trip over the relay.
const punchRetryWait = 2 * time.Second

// punchTracker follows go-libp2p's hole punching: which peers it has
// tried to reach directly, to which a punch made the connection (so that
// the connection is named "hole-punched"), which punches are under way
// (so that upgradeRelayed leaves them alone), and how each round ended.
type punchTracker struct {
	mu        sync.Mutex
	attempted map[peer.ID]time.Time // last event about the peer
	punching  map[peer.ID]bool      // a punch started, or succeeded
	rounds    map[peer.ID]*punchRound
	outcome   map[peer.ID]PunchOutcome // the last attempt, for /why
	next      holepunch.EventTracer
	report    func(HolePunchResult) // nil: nobody listens
	direct    func(peer.ID) (family, transport string)
}

// punchRound is a round of tries with one peer under way.
type punchRound struct {
	tries    int
	inFlight bool // a try started and has not ended
	lastErr  string
	elapsed  time.Duration
	timer    *time.Timer // reports the failed round unless another try starts
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
		t.rounds = make(map[peer.ID]*punchRound)
		t.outcome = make(map[peer.ID]PunchOutcome)
	}
	p := evt.Remote
	now := time.Now()
	t.attempted[p] = now
	var done *HolePunchResult
	switch e := evt.Evt.(type) {
	case *holepunch.StartHolePunchEvt:
		t.punching[p] = true
		t.outcome[p] = PunchOutcome{At: now, Kind: "hole punch", Pending: true}
		r := t.rounds[p]
		if r == nil {
			r = &punchRound{}
			t.rounds[p] = r
		}
		if r.timer != nil {
			r.timer.Stop()
			r.timer = nil
		}
		r.tries++
		r.inFlight = true
	case *holepunch.HolePunchAttemptEvt:
		o := t.outcome[p]
		o.Attempts = e.Attempt
		t.outcome[p] = o
	case *holepunch.DirectDialEvt:
		t.outcome[p] = PunchOutcome{At: now, Kind: "direct dial", Success: e.Success, Elapsed: e.EllapsedTime, Err: e.Error}
	case *holepunch.EndHolePunchEvt:
		t.outcome[p] = PunchOutcome{At: now, Kind: "hole punch", Success: e.Success,
			Attempts: t.outcome[p].Attempts, Elapsed: e.EllapsedTime, Err: e.Error}
		r := t.rounds[p]
		if r == nil {
			r = &punchRound{tries: 1}
		}
		r.inFlight, r.lastErr, r.elapsed = false, e.Error, e.EllapsedTime
		if e.Success {
			delete(t.rounds, p)
			done = &HolePunchResult{Peer: p, OK: true, Attempts: r.tries, Elapsed: e.EllapsedTime}
			break
		}
		delete(t.punching, p)
		t.rounds[p] = r
		r.timer = time.AfterFunc(punchRetryWait, func() { t.roundFailed(p, r) })
	}
	report, direct := t.report, t.direct
	t.mu.Unlock()
	if done != nil && report != nil {
		if direct != nil {
			done.Family, done.Transport = direct(p)
		}
		report(*done)
	}
	if t.next != nil {
		t.next.Trace(evt)
	}
}

// roundFailed reports a round whose last try failed and was not followed
// by another.
func (t *punchTracker) roundFailed(p peer.ID, r *punchRound) {
	t.mu.Lock()
	if t.rounds[p] != r || r.inFlight {
		t.mu.Unlock()
		return
	}
	delete(t.rounds, p)
	res := HolePunchResult{Peer: p, Attempts: r.tries, Elapsed: r.elapsed, Err: r.lastErr}
	report := t.report
	t.mu.Unlock()
	if report != nil {
		report(res)
	}
}

// busy reports whether a round of punching with p is under way: a try
// is dialing, or one failed and the next may follow.
func (t *punchTracker) busy(p peer.ID) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	_, ok := t.rounds[p]
	return ok
}

// close stops the timers of rounds under way; nothing is reported after.
func (t *punchTracker) close() {
	t.mu.Lock()
	defer t.mu.Unlock()
	for p, r := range t.rounds {
		if r.timer != nil {
			r.timer.Stop()
		}
		delete(t.rounds, p)
	}
	t.report = nil
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

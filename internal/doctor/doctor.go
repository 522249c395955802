// Package doctor checks how well a node can reach others and says, in
// plain words, what works, what does not and what to do about it: the
// engine of `parley doctor`.
//
// It runs on a temporary node (node.Node) and reads only what the node
// observes: its listen addresses, each bootstrap peer (reached? how
// fast? a Parley relay?), the relay reservation, what identify says the
// NAT does to ports (the same local port seen as different public ports
// by different peers means hole punching cannot work), AutoNAT v2's
// verdict, the DHT's routing tables, mDNS, and clock skew against peers
// (node.ClockProtocol; room messages more than 5 minutes off are refused).
package doctor

import (
	"context"
	"fmt"
	"math"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/p2p/protocol/ping"
	ma "github.com/multiformats/go-multiaddr"
	manet "github.com/multiformats/go-multiaddr/net"

	"github.com/parley-chat/parley/node"
)

// MaxClockSkew is how far off a room message's sent-at may be from the
// receiver's clock before it is refused.
const MaxClockSkew = 5 * time.Minute

// Config says what to check.
type Config struct {
	Bootstrap []peer.AddrInfo
	// Wait bounds the whole check (default 15 s): a bootstrap peer not
	// reached by then is reported unreachable.
	Wait time.Duration
}

// Status of one finding.
const (
	OK   = "ok"
	Warn = "warn"
	Fail = "fail"
	Info = "info"
)

// Finding is one line of the diagnosis: what was found and what to do.
type Finding struct {
	Check  string `json:"check"` // listen, bootstrap, relay, nat, reachability, dht, mdns, clock
	Status string `json:"status"`
	Text   string `json:"text"`
	Advice string `json:"advice,omitempty"`
}

// PeerCheck is what was found about one bootstrap peer.
type PeerCheck struct {
	Peer      string   `json:"peer"`
	Addrs     []string `json:"addrs"`
	Reached   bool     `json:"reached"`
	Via       string   `json:"via,omitempty"`
	ConnectMs float64  `json:"connect_ms,omitempty"`
	RTTMs     float64  `json:"rtt_ms,omitempty"`
	Agent     string   `json:"agent,omitempty"`
	Relay     bool     `json:"relay"` // a Parley relay (it says so in identify)
	// ClockOffsetMs is how far the peer's clock is ahead of this one's.
	ClockOffsetMs *float64 `json:"clock_offset_ms,omitempty"`
	Error         string   `json:"error,omitempty"`
}

// Observation is one peer's view of this node's address.
type Observation struct {
	Peer      string `json:"peer"`
	Transport string `json:"transport"` // tcp or udp
	Local     string `json:"local"`     // ip:port this node used
	Observed  string `json:"observed"`  // ip:port the peer saw
}

// NAT kinds, from what peers observed.
const (
	NATNone           = "none"            // the node has the address peers see
	NATPortPreserving = "port-preserving" // public port = local port
	NATConsistent     = "consistent"      // another port, but the same for every peer
	NATRandom         = "random"          // a different port for every peer (symmetric)
	NATPortChanged    = "port-changed"    // another port, one observer only
	NATUnknown        = "unknown"         // no observation
)

// Hole punching verdicts.
const (
	PunchNotNeeded  = "not needed"
	PunchShouldWork = "should work"
	PunchUnlikely   = "unlikely"
	PunchCannot     = "cannot work"
	PunchUnknown    = "unknown"
)

// NAT is what the node's NAT does to ports, and so whether hole punching
// can work.
type NAT struct {
	Kind         string        `json:"kind"`
	HolePunching string        `json:"hole_punching"`
	Public       []string      `json:"public,omitempty"` // ip:port as peers see it
	Observations []Observation `json:"observations"`
}

// Report is the whole diagnosis.
type Report struct {
	Peer      string      `json:"peer"`
	TookMs    float64     `json:"took_ms"`
	Listen    []string    `json:"listen"`
	Addrs     []string    `json:"addrs"`
	Bootstrap []PeerCheck `json:"bootstrap"`
	Relay     struct {
		Reserved bool     `json:"reserved"`
		Addrs    []string `json:"addrs"`
	} `json:"relay"`
	NAT          NAT `json:"nat"`
	Reachability struct {
		Checked     bool     `json:"checked"`
		Reachable   []string `json:"reachable"`
		Unreachable []string `json:"unreachable"`
	} `json:"reachability"`
	DHT struct {
		WAN int `json:"wan"`
		LAN int `json:"lan"`
	} `json:"dht"`
	MDNS struct {
		Enabled    bool     `json:"enabled"`
		Interfaces []string `json:"interfaces"`
		Found      int      `json:"found"`
	} `json:"mdns"`
	Findings []Finding `json:"findings"`
	Summary  string    `json:"verdict"` // Verdict(), for scripts
}

// Run checks n, which must have been started with cfg.Bootstrap as its
// bootstrap peers, until every check has an answer or cfg.Wait passes.
func Run(ctx context.Context, n *node.Node, cfg Config) *Report {
	if cfg.Wait <= 0 {
		cfg.Wait = 15 * time.Second
	}
	start := time.Now()
	ctx, cancel := context.WithTimeout(ctx, cfg.Wait)
	defer cancel()

	checks := make([]PeerCheck, len(cfg.Bootstrap))
	var wg sync.WaitGroup
	for i, p := range cfg.Bootstrap {
		wg.Add(1)
		go func() {
			defer wg.Done()
			checks[i] = checkPeer(ctx, n, p)
		}()
	}
	peersDone := make(chan struct{})
	go func() { wg.Wait(); close(peersDone) }()

	// Wait until the peers are checked, each reached one has told this
	// node how it sees it, and a relay reservation exists (when a relay
	// was reached), or until the time is up.
	settled := func() bool {
		select {
		case <-peersDone:
		default:
			return false
		}
		seen := make(map[peer.ID]bool)
		for _, ob := range n.Observations() {
			seen[ob.Peer] = true
		}
		relayReached := false
		for i, c := range checks {
			if c.Reached && !seen[cfg.Bootstrap[i].ID] {
				return false
			}
			relayReached = relayReached || (c.Reached && c.Relay && c.public())
		}
		return !relayReached || len(n.RelayAddrs()) > 0
	}
	for !settled() {
		relays, obs := n.RelayAddrsChanged(), n.ObservationsChanged()
		if settled() {
			break
		}
		select {
		case <-ctx.Done():
		case <-peersDone:
			continue
		case <-relays:
			continue
		case <-obs:
			continue
		}
		break
	}
	wg.Wait() // ctx is done or the peers were: quick either way

	r := &Report{Peer: n.ID().String(), Bootstrap: checks}
	d := n.Diagnose()
	for _, l := range d.Listen {
		if _, err := l.ValueForProtocol(ma.P_CIRCUIT); err != nil { // the circuit listener is no address
			r.Listen = append(r.Listen, l.String())
		}
	}
	r.Addrs = strs(n.Host().Addrs())
	r.Relay.Addrs = strs(n.RelayAddrs())
	r.Relay.Reserved = len(r.Relay.Addrs) > 0
	r.NAT = analyseNAT(n.Observations(), d.Listen)
	r.Reachability.Checked = d.ReachChecked
	r.Reachability.Reachable, r.Reachability.Unreachable = strs(d.Reachable), strs(d.Unreachable)
	r.DHT.WAN, r.DHT.LAN = d.WANTable, d.LANTable
	r.MDNS.Enabled, r.MDNS.Interfaces, r.MDNS.Found = d.MDNS, d.MDNSIfaces, d.MDNSFound
	r.TookMs = ms(time.Since(start))
	r.Findings = findings(r, cfg)
	r.Summary = r.Verdict()
	return r
}

// public reports whether the peer was reached over a public address: only
// then is a relay reservation made (and needed).
func (c PeerCheck) public() bool {
	a, err := ma.NewMultiaddr(c.Via)
	return err == nil && manet.IsPublicAddr(a)
}

// checkPeer connects to p, measures the round trip and asks for its time.
func checkPeer(ctx context.Context, n *node.Node, p peer.AddrInfo) PeerCheck {
	c := PeerCheck{Peer: p.ID.String(), Addrs: strs(p.Addrs)}
	h := n.Host()
	start := time.Now()
	if err := h.Connect(ctx, p); err != nil {
		c.Error = err.Error()
		return c
	}
	c.Reached = true
	c.ConnectMs = ms(time.Since(start))
	for _, conn := range h.Network().ConnsToPeer(p.ID) {
		if !conn.Stat().Limited {
			c.Via = conn.RemoteMultiaddr().String()
			break
		}
	}
	pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	res := <-ping.Ping(network.WithAllowLimitedConn(pctx, "doctor"), h, p.ID)
	cancel()
	if res.Error == nil {
		c.RTTMs = ms(res.RTT)
	}
	if off, _, err := n.ClockOffset(ctx, p.ID); err == nil {
		v := ms(off)
		c.ClockOffsetMs = &v
	}
	// Identify has run by now (ping and the clock stream wait for it).
	if v, err := h.Peerstore().Get(p.ID, "AgentVersion"); err == nil {
		c.Agent, _ = v.(string)
	}
	c.Relay = node.IsRelayAgent(c.Agent)
	return c
}

// analyseNAT compares, per transport, the local address of each
// connection with the address the peer observed.
func analyseNAT(obs []node.Observation, listen []ma.Multiaddr) NAT {
	out := NAT{Kind: NATUnknown, HolePunching: PunchUnknown, Observations: []Observation{}}
	type key struct{ transport, local string }
	seen := make(map[key]map[string]bool) // local ip:port → observed ip:ports
	var kinds []string
	listenPorts := make(map[string]bool)
	for _, l := range listen {
		if tr, _, port, ok := split(l); ok {
			listenPorts[tr+"/"+port] = true
		}
	}
	for _, ob := range obs {
		if ob.Relayed {
			continue
		}
		tr, lip, lport, ok := split(ob.Local)
		otr, oip, oport, ok2 := split(ob.Observed)
		if !ok || !ok2 || tr != otr || manet.IsIPLoopback(ob.Local) {
			continue
		}
		// Only connections from a listen port say anything about what a
		// peer could dial back (go-libp2p reuses the listen port).
		if len(listenPorts) > 0 && !listenPorts[tr+"/"+lport] {
			continue
		}
		local, observed := lip+":"+lport, oip+":"+oport
		out.Observations = append(out.Observations, Observation{Peer: ob.Peer.String(), Transport: tr, Local: local, Observed: observed})
		k := key{tr, local}
		if seen[k] == nil {
			seen[k] = make(map[string]bool)
		}
		seen[k][observed] = true
		if !slices.Contains(out.Public, observed) {
			out.Public = append(out.Public, observed)
		}
	}
	for k, observed := range seen {
		lip, lport := cutPort(k.local)
		samePort, sameAddr := true, true
		for o := range observed {
			oip, oport := cutPort(o)
			samePort = samePort && oport == lport
			sameAddr = sameAddr && oip == lip
		}
		switch {
		case sameAddr && samePort:
			kinds = append(kinds, NATNone)
		case samePort:
			kinds = append(kinds, NATPortPreserving)
		case len(observed) > 1:
			kinds = append(kinds, NATRandom)
		case countObservers(out.Observations, k.transport, k.local) > 1:
			kinds = append(kinds, NATConsistent)
		default:
			kinds = append(kinds, NATPortChanged)
		}
	}
	// The worst transport decides: one NAT treats TCP and UDP alike.
	for _, k := range []string{NATRandom, NATPortChanged, NATConsistent, NATPortPreserving, NATNone} {
		if slices.Contains(kinds, k) {
			out.Kind = k
			break
		}
	}
	switch out.Kind {
	case NATNone:
		out.HolePunching = PunchNotNeeded
	case NATPortPreserving, NATConsistent:
		out.HolePunching = PunchShouldWork
	case NATPortChanged:
		out.HolePunching = PunchUnlikely
	case NATRandom:
		out.HolePunching = PunchCannot
	}
	slices.Sort(out.Public)
	return out
}

// cutPort splits "ip:port" (an IPv6 ip has colons too).
func cutPort(hostport string) (ip, port string) {
	i := strings.LastIndexByte(hostport, ':')
	return hostport[:i], hostport[i+1:]
}

func countObservers(obs []Observation, transport, local string) int {
	peers := make(map[string]bool)
	for _, o := range obs {
		if o.Transport == transport && o.Local == local {
			peers[o.Peer] = true
		}
	}
	return len(peers)
}

// split returns the transport (tcp, udp), IP and port of an address.
func split(a ma.Multiaddr) (transport, ip, port string, ok bool) {
	var err error
	if len(a) == 0 {
		return "", "", "", false
	}
	if ip, err = a.ValueForProtocol(ma.P_IP4); err != nil {
		if ip, err = a.ValueForProtocol(ma.P_IP6); err != nil {
			return "", "", "", false
		}
	}
	if port, err := a.ValueForProtocol(ma.P_TCP); err == nil {
		return "tcp", ip, port, true
	}
	if port, err := a.ValueForProtocol(ma.P_UDP); err == nil {
		return "udp", ip, port, true
	}
	return "", "", "", false
}

func strs(addrs []ma.Multiaddr) []string {
	out := make([]string, 0, len(addrs))
	for _, a := range addrs {
		out = append(out, a.String())
	}
	return out
}

func ms(d time.Duration) float64 { return math.Round(float64(d)/float64(time.Millisecond)*10) / 10 }

func short(id string) string { return id[max(0, len(id)-6):] }

// findings turns the report into plain words, with what to do.
func findings(r *Report, cfg Config) []Finding {
	var f []Finding
	add := func(check, status, text, advice string) {
		f = append(f, Finding{Check: check, Status: status, Text: text, Advice: advice})
	}
	if len(r.Listen) == 0 {
		add("listen", Fail, "not listening on any address", "check --listen: nothing could be opened")
	} else {
		add("listen", OK, "listening on "+strings.Join(r.Listen, ", "), "")
	}

	reachedRelay, reachedPublic := false, false
	if len(cfg.Bootstrap) == 0 {
		add("bootstrap", Warn, "no --bootstrap peer given: only peers on this LAN (mDNS) can be found",
			"to chat across networks, give a relay: parley doctor --bootstrap /ip4/…/tcp/4001/p2p/12D3… (parley relay prints its addresses)")
	}
	for _, c := range r.Bootstrap {
		who := "[" + short(c.Peer) + "]"
		if !c.Reached {
			add("bootstrap", Fail, fmt.Sprintf("cannot reach %s at %s: %s", who, strings.Join(c.Addrs, ", "), firstLine(c.Error)),
				"check the address (parley relay prints its own at start), that the relay runs, and that no firewall blocks its TCP/UDP port")
			continue
		}
		what := "a peer"
		reachedPublic = reachedPublic || c.public()
		if c.Relay && c.public() {
			reachedRelay = true
		}
		if c.Relay {
			what = "a Parley relay"
		}
		text := fmt.Sprintf("reached %s %s over %s in %.0f ms", what, who, c.Via, c.ConnectMs)
		if c.RTTMs > 0 {
			text += fmt.Sprintf(", round trip %.1f ms", c.RTTMs)
		}
		status, advice := OK, ""
		if !c.Relay {
			status, advice = Info, "it is not a Parley relay (its agent is "+quoteOr(c.Agent, "unknown")+"): it helps find peers but does not carry rooms"
		}
		if c.RTTMs > 500 {
			status, advice = Warn, "a slow round trip: messages through this relay will lag; a relay nearer to you helps"
		}
		add("bootstrap", status, text, advice)
	}

	switch {
	case r.Relay.Reserved:
		add("relay", OK, fmt.Sprintf("reachable through a relay (%d circuit address(es)): peers behind any NAT can reach you", len(r.Relay.Addrs)), "")
	case reachedRelay:
		add("relay", Fail, "a relay was reached but gave no reservation in time",
			"the relay may be full (--max-reservations) or refuse this node; try again, or another relay")
	case len(cfg.Bootstrap) > 0 && slices.ContainsFunc(r.Bootstrap, func(c PeerCheck) bool { return c.Reached }):
		add("relay", Info, "no relay reservation: the relay was reached over a private or loopback address, where none is needed", "")
	case len(cfg.Bootstrap) > 0:
		add("relay", Fail, "no relay reservation: no relay was reached", "fix the bootstrap addresses above")
	}

	nat := r.NAT
	public := strings.Join(nat.Public, ", ")
	relayWord := "the relay"
	if !reachedRelay {
		relayWord = "a relay (give one with --bootstrap)"
	}
	switch nat.Kind {
	case NATNone:
		add("nat", OK, "no NAT: peers see this machine at its own address ("+public+")", "")
	case NATPortPreserving:
		add("nat", OK, "behind a NAT that keeps the port (peers see "+public+"): hole punching should work, so chats start through "+relayWord+" and move to a direct connection within seconds", "")
	case NATConsistent:
		add("nat", OK, "behind a NAT that maps the port the same way for every peer (seen as "+public+"): hole punching should work", "")
	case NATPortChanged:
		add("nat", Warn, "behind a NAT that changes the port (seen as "+public+" by one peer only): hole punching is unlikely to work; chat will go through "+relayWord,
			"give a second relay with --bootstrap to tell whether the NAT maps every connection differently")
	case NATRandom:
		add("nat", Warn, "behind a NAT that gives every connection a new random port (peers saw "+public+"): hole punching cannot work from here, so chat will go through "+relayWord+": the address a peer learns for you is never the one that would reach you. It works, but every message passes the relay and its limits",
			"for direct connections: a router with endpoint-independent mapping (\"full cone\", often called NAT type 2 or open), a port forward with --announce, or --upnp")
	case NATUnknown:
		if !reachedPublic && slices.ContainsFunc(r.Bootstrap, func(c PeerCheck) bool { return c.Reached }) {
			add("nat", Info, "peers were reached over private or loopback addresses only: no NAT lies between, and none was looked at", "")
		} else {
			add("nat", Info, "no peer told this node how it sees it, so the NAT is unknown", "reach a bootstrap peer on the internet first")
		}
	}

	switch {
	case r.Reachability.Checked && len(r.Reachability.Reachable) > 0:
		add("reachability", OK, "AutoNAT v2: reachable directly at "+strings.Join(r.Reachability.Reachable, ", "), "")
	case r.Reachability.Checked:
		add("reachability", Info, "AutoNAT v2: not reachable directly at "+strings.Join(r.Reachability.Unreachable, ", ")+"; others reach you through "+relayWord, "")
	default:
		add("reachability", Info, "AutoNAT v2 has no verdict yet (it needs several Parley peers or relays to dial back, and takes minutes with one)", "")
	}

	if r.DHT.WAN+r.DHT.LAN == 0 {
		add("dht", Warn, "the DHT routing table is empty: rooms are found only through the relay's own table and mDNS", "give a bootstrap peer")
	} else {
		add("dht", OK, fmt.Sprintf("DHT routing table: %d peer(s) on the internet side, %d on the LAN side", r.DHT.WAN, r.DHT.LAN), "")
	}

	switch {
	case !r.MDNS.Enabled:
		add("mdns", Info, "mDNS is off (--no-mdns): peers on this LAN are not looked for", "")
	case len(r.MDNS.Interfaces) == 0:
		add("mdns", Warn, "mDNS is on but no interface can multicast: LAN peers will not be found", "check the network interface is up")
	default:
		text := "mDNS looks for LAN peers on " + strings.Join(r.MDNS.Interfaces, ", ")
		if r.MDNS.Found > 0 {
			text += fmt.Sprintf("; it found %d", r.MDNS.Found)
		}
		add("mdns", OK, text, "")
	}

	var worst float64
	var worstPeer string
	checked := 0
	for _, c := range r.Bootstrap {
		if c.ClockOffsetMs != nil {
			checked++
			if math.Abs(*c.ClockOffsetMs) >= math.Abs(worst) {
				worst, worstPeer = *c.ClockOffsetMs, c.Peer
			}
		}
	}
	switch {
	case checked == 0:
		add("clock", Info, "clock not compared: no peer answered (Parley relays before this version do not)", "")
	case math.Abs(worst) >= float64(MaxClockSkew/time.Millisecond):
		dir := "behind"
		if worst > 0 {
			dir = "ahead of"
		}
		add("clock", Fail, fmt.Sprintf("this clock is %s %s [%s]: room messages more than 5 min off are refused, so yours or theirs will not be shown",
			time.Duration(math.Abs(worst)*float64(time.Millisecond)).Round(time.Second), flip(dir), short(worstPeer)),
			"set the clock right, e.g. timedatectl set-ntp true")
	case math.Abs(worst) >= 30_000:
		add("clock", Warn, fmt.Sprintf("this clock is %.0f s off [%s]: messages are still accepted (±5 min) but sort oddly", math.Abs(worst)/1000, short(worstPeer)), "turn on time synchronisation (NTP)")
	default:
		add("clock", OK, fmt.Sprintf("clock within %.1f s of %d peer(s) (messages past ±5 min are refused)", math.Abs(worst)/1000, checked), "")
	}
	return f
}

// flip turns "the peer is ahead of us" into "we are behind the peer".
func flip(dir string) string {
	if dir == "ahead of" {
		return "behind"
	}
	return "ahead of"
}

func firstLine(s string) string {
	s, _, _ = strings.Cut(s, "\n")
	if len(s) > 300 {
		s = s[:300] + "…"
	}
	return s
}

func quoteOr(s, or string) string {
	if s == "" {
		return or
	}
	return fmt.Sprintf("%q", s)
}

// Verdict is one sentence on what chat will do.
func (r *Report) Verdict() string {
	for _, f := range r.Findings {
		if f.Status == Fail && (f.Check == "bootstrap" || f.Check == "relay" || f.Check == "listen") {
			return "Chat across networks will not work until the problems marked FAIL are fixed."
		}
	}
	switch r.NAT.HolePunching {
	case PunchNotNeeded:
		return "Peers can reach you directly."
	case PunchShouldWork:
		return "Chat works: through the relay at first, then directly once hole punching succeeds."
	case PunchCannot, PunchUnlikely:
		if r.Relay.Reserved {
			return "Chat works through the relay; direct connections to peers behind NATs will not happen."
		}
	}
	if r.Relay.Reserved {
		return "Chat works through the relay."
	}
	return "Only peers on this LAN can be reached."
}

// Text renders the report for a person.
func (r *Report) Text() string {
	var b strings.Builder
	fmt.Fprintf(&b, "parley doctor: checked with a temporary node [%s] in %v\n\n", short(r.Peer), (time.Duration(r.TookMs) * time.Millisecond).Round(time.Millisecond))
	for _, f := range r.Findings {
		fmt.Fprintf(&b, "%-4s  %-12s %s\n", strings.ToUpper(f.Status), f.Check, f.Text)
		if f.Advice != "" {
			fmt.Fprintf(&b, "      %-12s → %s\n", "", f.Advice)
		}
	}
	fmt.Fprintf(&b, "\n%s\n", r.Verdict())
	return b.String()
}

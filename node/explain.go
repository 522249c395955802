package node

import (
	"context"
	"net"
	"slices"
	"time"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/p2p/protocol/holepunch"
	"github.com/libp2p/go-libp2p/p2p/protocol/ping"
	ma "github.com/multiformats/go-multiaddr"
)

// ConnInfo describes one open connection to a peer.
type ConnInfo struct {
	Remote    ma.Multiaddr
	Local     ma.Multiaddr
	Direction string // "inbound" or "outbound"
	Relayed   bool
	Opened    time.Time
}

// PeerPath explains how a peer is reached: what `/why PEER` shows.
type PeerPath struct {
	Peer  peer.ID
	Path  string // PathLAN, PathDirect, PathHolePunched, PathRelayed, or "" (not connected)
	Relay peer.ID
	Conns []ConnInfo
	Agent string
	// RTT is go-libp2p's moving average of round trips to the peer (ping,
	// identify); zero when none was measured.
	RTT time.Duration
	// DCUtR says whether both ends speak the hole punching protocol.
	DCUtR bool
	// LastPunch is how go-libp2p's last attempt to reach the peer directly
	// ended (Punched false: none since this node started).
	LastPunch PunchOutcome
	Punched   bool
}

// Explain says how p is reached now. When p is connected it pings p
// (bounded by ctx and 2 s) for a fresh round trip; otherwise, or if the
// ping fails, RTT is go-libp2p's moving average, if any.
func (n *Node) Explain(ctx context.Context, p peer.ID) PeerPath {
	out := PeerPath{Peer: p}
	out.Path, out.Relay = n.PathOf(p)
	for _, c := range n.host.Network().ConnsToPeer(p) {
		st := c.Stat()
		dir := "outbound"
		if st.Direction == network.DirInbound {
			dir = "inbound"
		}
		out.Conns = append(out.Conns, ConnInfo{Remote: c.RemoteMultiaddr(), Local: c.LocalMultiaddr(),
			Direction: dir, Relayed: isRelayed(c), Opened: st.Opened})
	}
	if v, err := n.host.Peerstore().Get(p, "AgentVersion"); err == nil {
		out.Agent, _ = v.(string)
	}
	out.RTT = n.host.Peerstore().LatencyEWMA(p)
	if len(out.Conns) > 0 {
		pctx, cancel := context.WithTimeout(network.WithAllowLimitedConn(ctx, "why"), 2*time.Second)
		if res := <-ping.Ping(pctx, n.host, p); res.Error == nil {
			out.RTT = res.RTT
		}
		cancel()
	}
	if protos, err := n.host.Peerstore().SupportsProtocols(p, holepunch.Protocol); err == nil {
		out.DCUtR = len(protos) > 0
	}
	out.LastPunch, out.Punched = n.punches.lastOutcome(p)
	if out.Punched && out.LastPunch.Pending && out.Path == PathHolePunched {
		// The punch made the connection; go-libp2p traces its end just
		// after the connection opens.
		out.LastPunch.Pending, out.LastPunch.Success = false, true
		out.LastPunch.Elapsed = time.Since(out.LastPunch.At)
	}
	return out
}

// Diagnostics is what `parley doctor` reads of a node beyond its
// addresses and relay reservations.
type Diagnostics struct {
	Listen       []ma.Multiaddr // what the node listens on
	WANTable     int            // peers in the WAN DHT's routing table
	LANTable     int            // peers in the LAN DHT's routing table
	MDNS         bool           // mDNS runs
	MDNSFound    int            // peers mDNS found
	MDNSIfaces   []string       // interfaces mDNS can use: up, multicast, not loopback, with an address
	Reachable    []ma.Multiaddr // AutoNAT v2: confirmed reachable
	Unreachable  []ma.Multiaddr // AutoNAT v2: confirmed unreachable
	ReachChecked bool           // AutoNAT v2 gave any verdict
}

// Diagnose returns the node's diagnostics now.
func (n *Node) Diagnose() Diagnostics {
	d := Diagnostics{Listen: n.host.Network().ListenAddresses(), MDNS: n.mdns != nil}
	if n.dht != nil {
		d.WANTable = n.dht.WAN.RoutingTable().Size()
		d.LANTable = n.dht.LAN.RoutingTable().Size()
	}
	n.lan.mu.Lock()
	d.MDNSFound = len(n.lan.m)
	n.lan.mu.Unlock()
	d.MDNSIfaces = multicastInterfaces()
	n.reach.mu.Lock()
	d.Reachable, d.Unreachable = slices.Clone(n.reach.reachable), slices.Clone(n.reach.unreachable)
	d.ReachChecked = n.reach.checked
	n.reach.mu.Unlock()
	return d
}

// multicastInterfaces lists the interfaces mDNS can use.
func multicastInterfaces() []string {
	ifaces, err := net.Interfaces()
	if err != nil {
		return nil
	}
	var out []string
	for _, ifc := range ifaces {
		if ifc.Flags&net.FlagUp == 0 || ifc.Flags&net.FlagMulticast == 0 || ifc.Flags&net.FlagLoopback != 0 {
			continue
		}
		if addrs, err := ifc.Addrs(); err == nil && len(addrs) > 0 {
			out = append(out, ifc.Name)
		}
	}
	return out
}

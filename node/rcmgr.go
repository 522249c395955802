package node

import (
	"github.com/libp2p/go-libp2p/core/network"
	ma "github.com/multiformats/go-multiaddr"
)

// relayExemptRM is go-libp2p's resource manager, except that a relayed
// connection is not counted against the relay's IP address.
//
// go-libp2p reads the IP of a connection's endpoint for its per-IP limits
// (8 connections at once per IPv4 address or IPv6 /56, and a rate of new
// connections: a burst of 16, then one every 5 s). The endpoint of a
// relayed connection is the relay's address with /p2p-circuit/… after it,
// so every relayed connection of a NATed node, in both directions, counted
// as one more connection to and from the relay, on top of the node's own
// connection to it. Through one relay, a few peers and the redials that
// make DCUtR punch (upgradeRelayed) were enough to exhaust both: relayed
// connections were refused ("connections per ip limit exceeded", "rate
// limit exceeded"), and with them the hole punches they coordinate. The
// relay limits what a circuit may carry itself (its Resources); here a
// relayed connection still counts against the system-wide and per-peer
// connection caps.
type relayExemptRM struct {
	network.ResourceManager
}

func (r relayExemptRM) OpenConnection(dir network.Direction, usefd bool, endpoint ma.Multiaddr) (network.ConnManagementScope, error) {
	if _, tail := ma.SplitFunc(endpoint, func(c ma.Component) bool { return c.Protocol().Code == ma.P_CIRCUIT }); len(tail) > 0 {
		// Without an IP component, the per-IP limits do not apply.
		return r.ResourceManager.OpenConnection(dir, usefd, tail)
	}
	return r.ResourceManager.OpenConnection(dir, usefd, endpoint)
}

package node

import (
	"slices"
	"time"

	"github.com/libp2p/go-libp2p/core/event"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/p2p/host/eventbus"
	ma "github.com/multiformats/go-multiaddr"
)

// Reachability from evidence.
//
// A node with bootstrap peers starts out private whatever its interfaces
// carry (libp2p.ForceReachabilityPrivate), so AutoRelay reserves a slot on
// its static relays at once. Interface addresses are no evidence either
// way: a global IPv6 address behind a stateful firewall, a public IPv4 on
// an interface that is not reachable and CGNAT's 100.64.0.0/10 all look
// public or at least routable, and the host is still unreachable.
//
// The evidence is AutoNAT v2: servers (relays, and every other Parley
// node) dial each of the node's public addresses back, and go-libp2p
// confirms an address as reachable or unreachable once two more answers
// say one thing than the other (EvtHostReachableAddrsChanged).
// watchReachability turns that into the host's reachability: public once
// every address family that has a confirmed address has a reachable one,
// private again when that stops being true. AutoRelay listens to the same
// event: public stops its relay finder (the reservations are neither
// renewed nor advertised any more), private starts it again. The DHT
// follows too (server when public).

// reachableDirectly applies the rule to AutoNAT v2's verdicts: some
// address is reachable, and no address family (IPv4, IPv6) has only
// unreachable addresses. A host reachable over IPv6 but NATed on IPv4 keeps
// its relay, or IPv4-only peers could not reach it.
func reachableDirectly(reachable, unreachable []ma.Multiaddr) bool {
	if len(reachable) == 0 {
		return false
	}
	for _, u := range unreachable {
		fam := family(u)
		if !slices.ContainsFunc(reachable, func(r ma.Multiaddr) bool { return family(r) == fam }) {
			return false
		}
	}
	return true
}

// family returns "ip4", "ip6" or "" (DNS and others) for an address.
func family(a ma.Multiaddr) string {
	if len(a) == 0 {
		return ""
	}
	switch a[0].Protocol().Code {
	case ma.P_IP4:
		return "ip4"
	case ma.P_IP6, ma.P_IP6ZONE:
		return "ip6"
	}
	return ""
}

// watchReachability follows AutoNAT v2 and announces the host's
// reachability on the event bus (see above). It runs on nodes whose
// reachability was forced private at start.
func (n *Node) watchReachability() {
	defer n.wg.Done()
	bus := n.host.EventBus()
	sub, err := bus.Subscribe(new(event.EvtHostReachableAddrsChanged), eventbus.Name("parley reachability"))
	if err != nil {
		n.log.Warn("watch reachability: the node stays private", "err", err)
		return
	}
	defer sub.Close()
	em, err := bus.Emitter(new(event.EvtLocalReachabilityChanged), eventbus.Stateful)
	if err != nil {
		n.log.Warn("announce reachability: the node stays private", "err", err)
		return
	}
	defer em.Close()
	public := false
	for {
		select {
		case <-n.ctx.Done():
			return
		case e, ok := <-sub.Out():
			if !ok {
				return
			}
			ev := e.(event.EvtHostReachableAddrsChanged)
			n.reach.mu.Lock()
			n.reach.checked = len(ev.Reachable)+len(ev.Unreachable) > 0
			n.reach.reachable, n.reach.unreachable = slices.Clone(ev.Reachable), slices.Clone(ev.Unreachable)
			n.reach.mu.Unlock()
			now := reachableDirectly(ev.Reachable, ev.Unreachable)
			if now == public {
				continue
			}
			public = now
			r := network.ReachabilityPrivate
			if public {
				r = network.ReachabilityPublic
				n.log.Info("AutoNAT v2 confirmed direct reachability: giving up relay reservations", "after", time.Since(n.started).Round(time.Millisecond), "reachable", ev.Reachable)
			} else {
				n.log.Info("no longer reachable directly: reserving relay slots again", "reachable", ev.Reachable, "unreachable", ev.Unreachable)
			}
			n.relays.setPublic(public)
			if err := em.Emit(event.EvtLocalReachabilityChanged{Reachability: r}); err != nil {
				n.log.Warn("announce reachability", "err", err)
			}
		}
	}
}

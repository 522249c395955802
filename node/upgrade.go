package node

import (
	"time"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/p2p/protocol/holepunch"
)

// Upgrading relayed connections that DCUtR missed.
const (
	upgradeCheckEvery = 250 * time.Millisecond
	upgradeGrace      = 500 * time.Millisecond // let go-libp2p's own punch go first
	upgradeAttempts   = 3
)

type upgradeState struct {
	since    time.Time // when the peer became eligible
	attempts int
}

// upgradeRelayed fixes what go-libp2p leaves undone: DCUtR starts when a
// relayed connection comes in, but only if the receiving side's hole punch
// service was already running, which it is only once the host has learned
// its public address (~250 ms after start). A relayed connection opened
// earlier, e.g. by a DM sent right after start, stays relayed for its
// whole life.
//
// So once both sides speak DCUtR, a peer reached only through a relay for
// which no punch was ever started is dialed again through the relay: the
// new incoming relayed connection makes the other side punch. The old
// relayed connection has to be closed first, because the swarm hands out an
// existing connection instead of dialing a second one. At most
// upgradeAttempts times per peer, with growing pauses.
func (n *Node) upgradeRelayed() {
	defer n.wg.Done()
	select {
	case <-n.natReady:
	case <-n.ctx.Done():
		return
	}
	tick := time.NewTicker(upgradeCheckEvery)
	defer tick.Stop()
	state := make(map[peer.ID]*upgradeState)
	for {
		select {
		case <-n.ctx.Done():
			return
		case now := <-tick.C:
			seen := make(map[peer.ID]bool)
			for _, p := range n.host.Network().Peers() {
				if !n.upgradeEligible(p) {
					continue
				}
				seen[p] = true
				st := state[p]
				if st == nil {
					st = &upgradeState{since: now}
					state[p] = st
				}
				if st.attempts >= upgradeAttempts || now.Sub(st.since) < upgradeGrace*time.Duration(1<<st.attempts) {
					continue
				}
				st.attempts++
				n.log.Debug("relayed connection not upgraded; dialing again through the relay", "peer", p, "attempt", st.attempts)
				n.redialThroughRelay(p)
			}
			for p := range state {
				if !seen[p] && n.host.Network().Connectedness(p) != network.Limited {
					delete(state, p) // direct now, or gone
				}
			}
		}
	}
}

// upgradeEligible: p is reached only through relays, both sides speak
// DCUtR, and go-libp2p never tried to reach p directly.
func (n *Node) upgradeEligible(p peer.ID) bool {
	if n.host.Network().Connectedness(p) != network.Limited || n.punches.tried(p) {
		return false
	}
	protos, err := n.host.Peerstore().SupportsProtocols(p, holepunch.Protocol)
	return err == nil && len(protos) > 0
}

func (n *Node) redialThroughRelay(p peer.ID) {
	for _, c := range n.host.Network().ConnsToPeer(p) {
		if isRelayed(c) {
			c.Close()
		}
	}
	n.connectAsync(peer.AddrInfo{ID: p}, "upgrade")
}

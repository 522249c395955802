package node

import (
	"time"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/p2p/protocol/holepunch"
)

// Upgrading relayed connections that DCUtR missed or failed.
const (
	upgradeCheckEvery = 250 * time.Millisecond
	upgradeFirstDelay = 500 * time.Millisecond // let go-libp2p's own punch go first
	upgradeMaxDelay   = time.Minute
	upgradeAttempts   = 5 // after 0.5 s, 2 s, 8 s, 32 s, 60 s
)

type upgradeState struct {
	since    time.Time // when the peer became reachable only by relay
	last     time.Time // last redial
	attempts int
}

func upgradeDelay(attempt int) time.Duration {
	d := upgradeFirstDelay
	for i := 0; i < attempt && d < upgradeMaxDelay; i++ {
		d *= 4
	}
	return min(d, upgradeMaxDelay)
}

// upgradeRelayed fixes what go-libp2p leaves undone. DCUtR starts when a
// relayed connection comes in, but only if the receiving side's hole punch
// service was already running, which it is only once the host has learned
// its public address (~250 ms after start): a relayed connection opened
// earlier, e.g. by a DM sent right after start, stays relayed for its whole
// life. And a punch that failed (DCUtR gives up after 3 quick tries) is
// never tried again.
//
// So while a peer is reached only through a relay and both sides speak
// DCUtR, it is dialed again through the relay whenever go-libp2p has been
// quiet about it for a growing delay: the new incoming relayed connection
// makes the other side punch. The old relayed connection is closed first,
// because the swarm would hand it out again instead of dialing.
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
			for p := range state {
				if n.host.Network().Connectedness(p) != network.Limited {
					delete(state, p) // direct now, or gone
				}
			}
			for _, p := range n.host.Network().Peers() {
				if !n.bothSpeakDCUtR(p) {
					continue
				}
				st := state[p]
				if st == nil {
					st = &upgradeState{since: now}
					state[p] = st
				}
				quietSince := st.since
				if t := n.punches.lastTry(p); t.After(quietSince) {
					quietSince = t
				}
				if st.last.After(quietSince) {
					quietSince = st.last
				}
				if st.attempts >= upgradeAttempts || now.Sub(quietSince) < upgradeDelay(st.attempts) {
					continue
				}
				st.attempts++
				st.last = now
				n.log.Debug("peer still reached only through a relay; dialing it again so that DCUtR punches", "peer", p, "attempt", st.attempts)
				n.redialThroughRelay(p)
			}
		}
	}
}

// bothSpeakDCUtR: p is reached only through relays and both sides can
// hole-punch.
func (n *Node) bothSpeakDCUtR(p peer.ID) bool {
	if n.host.Network().Connectedness(p) != network.Limited {
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

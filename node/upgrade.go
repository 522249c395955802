package node

import (
	"context"
	"time"

	ma "github.com/multiformats/go-multiaddr"
	manet "github.com/multiformats/go-multiaddr/net"

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
//
// A punch under way is never interrupted (punchInProgress): closing the
// relayed connection in the middle of DCUtR's exchange, or during its
// direct dial, aborted it, and the redial started a second one that raced
// the first. Seen on the test bed as IPv6 punches failing in about one run
// in four, where DCUtR first dials the peer's public addresses for up to
// 10 s before it punches.
func (n *Node) upgradeRelayed() {
	defer n.wg.Done()
	select {
	case <-n.natReady:
	case <-n.ctx.Done():
		return
	}
	readyAt := time.Now() // DCUtR runs for relayed connections opened from now on
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
				if n.punchInProgress(p, now, readyAt) {
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

// directDialPhase bounds how long DCUtR may spend dialing a peer's public
// addresses before it punches: go-libp2p's hole punch direct dial timeout
// (10 s) and a margin.
const directDialPhase = 12 * time.Second

// punchInProgress reports whether DCUtR is working on p: a round of tries
// is under way, its coordination stream is open on a relayed connection,
// or a relayed connection opened since hole punching was ready is young
// enough that DCUtR may still be dialing p's public addresses directly
// (it does that first, and only, when p has any).
func (n *Node) punchInProgress(p peer.ID, now, readyAt time.Time) bool {
	if n.punches.busy(p) {
		return true
	}
	hasPublic := n.hasPublicAddr(p)
	for _, c := range n.host.Network().ConnsToPeer(p) {
		if !isRelayed(c) {
			continue
		}
		for _, s := range c.GetStreams() {
			if s.Protocol() == holepunch.Protocol {
				return true
			}
		}
		if hasPublic && c.Stat().Opened.After(readyAt) && now.Sub(c.Stat().Opened) < directDialPhase {
			return true
		}
	}
	return false
}

func (n *Node) redialThroughRelay(p peer.ID) {
	for _, c := range n.host.Network().ConnsToPeer(p) {
		if isRelayed(c) {
			c.Close()
		}
	}
	n.connectAsync(peer.AddrInfo{ID: p}, "upgrade")
}

// directAlongsideTimeout bounds the direct dial made alongside DCUtR's.
const directAlongsideTimeout = 10 * time.Second

// dialDirectAlongside mirrors, on the side that dialed a peer through a
// relay, the first step DCUtR takes on the other side: when the peer has
// public addresses (IPv6 hosts behind stateful firewalls have global
// ones), DCUtR there dials them directly, for up to 10 s, before it
// punches. Its packets open its own firewall to this node but are
// dropped by this node's firewall, so alone that dial times out, and the
// punch that follows comes 10 s late. Dialing the peer's public addresses
// from here at the same time makes the two dials a simultaneous open
// that both firewalls let through: the IPv6 case goes direct in
// milliseconds instead of after the 10 s. Peers without public addresses
// (behind IPv4 NATs) are left to DCUtR alone.
//
// watchIdentify calls it for each identified connection: identify has run
// on the relayed connection when the peer's addresses are known, the
// moment DCUtR on the other side starts too.
func (n *Node) dialDirectAlongside(c network.Conn) {
	if !isRelayed(c) || c.Stat().Direction != network.DirOutbound {
		return
	}
	p := c.RemotePeer()
	if !n.hasPublicAddr(p) || n.host.Network().Connectedness(p) == network.Connected {
		return
	}
	n.wg.Add(1)
	go func() {
		defer n.wg.Done()
		ctx, cancel := context.WithTimeout(network.WithForceDirectDial(n.ctx, "parley: direct dial alongside DCUtR"), directAlongsideTimeout)
		defer cancel()
		if err := n.host.Connect(ctx, peer.AddrInfo{ID: p}); err != nil {
			n.log.Debug("direct dial alongside DCUtR failed", "peer", p, "err", err)
			return
		}
		n.log.Debug("direct dial alongside DCUtR succeeded", "peer", p)
	}()
}

// hasPublicAddr reports whether the peerstore holds a public address of
// p that is not a circuit.
func (n *Node) hasPublicAddr(p peer.ID) bool {
	for _, a := range n.host.Peerstore().Addrs(p) {
		if _, err := a.ValueForProtocol(ma.P_CIRCUIT); err != nil && manet.IsPublicAddr(a) {
			return true
		}
	}
	return false
}

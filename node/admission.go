package node

import (
	"slices"
	"time"

	"github.com/libp2p/go-libp2p/core/network"
)

// idleAge is how long an inbound connection may carry no stream before it
// counts as idle. A peer that came to chat opens a stream within
// milliseconds of connecting (GossipSub, a DM, history, the DHT);
// identify's own stream is closed again by then.
const idleAge = 2 * time.Second

// inboundReserve is the share of inbound connection slots kept free for
// newcomers: when fewer are free, idle inbound connections are closed,
// oldest first.
func inboundReserve(limit int) int { return max(2, limit/8) }

// keepInboundRoom keeps inboundReserve(limit) inbound slots free by closing
// idle connections (see evictIdleInbound), checking at every new inbound
// connection and every idleAge.
//
// Without it, peers that connect and sit idle fill the resource manager's
// inbound limit and every newcomer is refused until the connection
// manager trims them, which it does only after their grace period and at
// its next trim (~20 s measured with a 10 s grace). Connections that
// carry a stream, that the connection manager values (room members, DM
// peers, DHT neighbours) or protects (relays, bootstrap peers) are never
// closed here.
func (n *Node) keepInboundRoom(kick <-chan struct{}) {
	defer n.wg.Done()
	tick := time.NewTicker(idleAge)
	defer tick.Stop()
	for {
		select {
		case <-n.ctx.Done():
			return
		case <-kick:
		case <-tick.C:
		}
		if closed := n.evictIdleInbound(time.Now()); closed > 0 {
			n.log.Debug("closed idle inbound connections to keep room for newcomers", "closed", closed)
		}
	}
}

// evictIdleInbound closes idle inbound connections, oldest first, until
// the reserve of free inbound slots is back (or no idle one is left), and
// returns how many it closed.
func (n *Node) evictIdleInbound(now time.Time) int {
	limit := n.cfg.maxConns / 2 // the resource manager's ConnsInbound
	mark := limit - inboundReserve(limit)
	conns := n.host.Network().Conns()
	inbound := 0
	for _, c := range conns {
		if c.Stat().Direction == network.DirInbound {
			inbound++
		}
	}
	excess := inbound - mark
	if excess <= 0 {
		return 0 // the usual case: look no further
	}
	cm := n.host.ConnManager()
	var idle []network.Conn
	for _, c := range conns {
		st := c.Stat()
		if st.Direction != network.DirInbound {
			continue
		}
		p := c.RemotePeer()
		if now.Sub(st.Opened) < idleAge || len(c.GetStreams()) > 0 || cm.IsProtected(p, "") {
			continue
		}
		if ti := cm.GetTagInfo(p); ti != nil && ti.Value > 0 {
			continue
		}
		idle = append(idle, c)
	}
	if len(idle) == 0 {
		return 0
	}
	slices.SortFunc(idle, func(a, b network.Conn) int { return a.Stat().Opened.Compare(b.Stat().Opened) })
	idle = idle[:min(excess, len(idle))]
	for _, c := range idle {
		c.Close()
	}
	return len(idle)
}

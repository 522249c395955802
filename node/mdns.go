package node

import (
	"fmt"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/p2p/discovery/mdns"
)

// MDNSServiceName is the DNS-SD service Parley nodes announce on the LAN.
const MDNSServiceName = "_parley._udp"

type mdnsNotifee struct{ n *Node }

// HandlePeerFound is called from the mDNS resolver's goroutine: it must not
// block, so the dial happens in the background.
func (m mdnsNotifee) HandlePeerFound(p peer.AddrInfo) {
	if p.ID == m.n.host.ID() || m.n.ctx.Err() != nil {
		return
	}
	m.n.foundOnLAN(p.ID)
	m.n.connectAsync(p, "mdns")
}

// foundOnLAN notes that mDNS found p, so that its connections over a LAN
// address are named "lan"; if p is connected already, path watchers hear
// of it (EvtPathChanged).
func (n *Node) foundOnLAN(p peer.ID) {
	if !n.lan.add(p) || n.host.Network().Connectedness(p) != network.Connected {
		return
	}
	if n.pathChanged != nil {
		n.pathChanged.Emit(EvtPathChanged{Peer: p})
	}
}

func (n *Node) startMDNS() error {
	svc := mdns.NewMdnsService(n.host, MDNSServiceName, mdnsNotifee{n})
	if err := svc.Start(); err != nil {
		return fmt.Errorf("start mDNS: %w", err)
	}
	n.mdns = svc
	return nil
}

package chat

import (
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"
	manet "github.com/multiformats/go-multiaddr/net"
)

// ClassifyPath names the best open connection to p: "lan" for a private or
// loopback address, "direct" for a public one, "relayed" for a circuit
// (with the relay's ID). It returns "" when p is not connected.
func ClassifyPath(h host.Host, p peer.ID) (string, peer.ID) {
	best, relay := "", peer.ID("")
	for _, c := range h.Network().ConnsToPeer(p) {
		path, r := connPath(c)
		if rank(path) > rank(best) {
			best, relay = path, r
		}
	}
	return best, relay
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

func connPath(c network.Conn) (string, peer.ID) {
	addr := c.RemoteMultiaddr()
	if _, err := addr.ValueForProtocol(ma.P_CIRCUIT); err == nil || c.Stat().Limited {
		var relay peer.ID
		if head, _ := ma.SplitFunc(addr, func(c ma.Component) bool { return c.Protocol().Code == ma.P_CIRCUIT }); head != nil {
			if info, err := peer.AddrInfoFromP2pAddr(head); err == nil {
				relay = info.ID
			}
		}
		return PathRelayed, relay
	}
	if manet.IsPrivateAddr(addr) || manet.IsIPLoopback(addr) {
		return PathLAN, ""
	}
	return PathDirect, ""
}

// watchConnections emits a Connection event whenever the path to a peer
// is first known or changes.
func (s *Service) watchConnections() {
	changed := make(chan peer.ID, 256)
	notify := func(_ network.Network, c network.Conn) {
		select {
		case changed <- c.RemotePeer():
		default: // a burst of connections: the next change catches up
		}
	}
	nb := &network.NotifyBundle{ConnectedF: notify, DisconnectedF: notify}
	s.h.Network().Notify(nb)
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		defer s.h.Network().StopNotify(nb)
		for {
			select {
			case <-s.ctx.Done():
				return
			case p := <-changed:
				path, relay := "", peer.ID("")
				if s.h.Network().Connectedness(p) == network.Connected {
					path, relay = s.cfg.pathOf(p)
				}
				s.mu.Lock()
				old := s.paths[p]
				if path == "" {
					delete(s.paths, p)
				} else {
					s.paths[p] = path
				}
				s.mu.Unlock()
				if path != "" && path != old {
					s.emit(Connection{Peer: p, Path: path, Relay: relay})
				}
			}
		}
	}()
}

package chat

import (
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
)

// simplePath is the classifier used without WithPathClassifier.
func simplePath(h host.Host, p peer.ID) (string, peer.ID) {
	path := ""
	for _, c := range h.Network().ConnsToPeer(p) {
		if !c.Stat().Limited {
			return PathDirect, ""
		}
		path = PathRelayed
	}
	return path, ""
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
	// Peers connected before the service started (bootstrap peers) get
	// their event too.
	for _, p := range s.h.Network().Peers() {
		select {
		case changed <- p:
		default:
		}
	}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		defer s.h.Network().StopNotify(nb)
		paths := make(map[peer.ID]string) // owned by this goroutine
		for {
			select {
			case <-s.ctx.Done():
				return
			case p := <-changed:
				s.refreshPath(paths, p)
			}
		}
	}()
}

func (s *Service) refreshPath(paths map[peer.ID]string, p peer.ID) {
	path, relay := "", peer.ID("")
	if connected(s.h, p) {
		path, relay = s.cfg.pathOf(p)
	}
	old := paths[p]
	if path == "" {
		delete(paths, p)
	} else {
		paths[p] = path
	}
	if path != "" && path != old {
		s.emit(Connection{Peer: p, Path: path, Relay: relay})
	}
}

// connected reports whether p has any open connection, relayed ("limited")
// ones included.
func connected(h host.Host, p peer.ID) bool {
	c := h.Network().Connectedness(p)
	return c == network.Connected || c == network.Limited
}

package chat

import (
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/parley-chat/parley/node"
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
	// A path can also change with no connection event: the node found on
	// the LAN a peer connected before (node.EvtPathChanged).
	var found <-chan any
	sub, err := s.h.EventBus().Subscribe(new(node.EvtPathChanged))
	if err == nil {
		found = sub.Out()
	}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		defer s.h.Network().StopNotify(nb)
		if sub != nil {
			defer sub.Close()
		}
		paths := make(map[peer.ID]string) // owned by this goroutine
		for {
			select {
			case <-s.ctx.Done():
				return
			case p := <-changed:
				s.refreshPath(paths, p)
			case ev, ok := <-found:
				if !ok {
					found = nil
					continue
				}
				if e, ok := ev.(node.EvtPathChanged); ok {
					s.refreshPath(paths, e.Peer)
				}
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

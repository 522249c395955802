package chat

import (
	"github.com/libp2p/go-libp2p/core/event"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/parley-chat/parley/node"
)

// simplePath is the classifier used without WithPathClassifier.
func simplePath(h host.Host, p peer.ID) node.Route {
	var r node.Route
	for _, c := range h.Network().ConnsToPeer(p) {
		if !c.Stat().Limited {
			r = node.Route{Path: PathDirect}
			r.Family, r.Transport = node.AddrRoute(c.RemoteMultiaddr())
			return r
		}
		r = node.Route{Path: PathRelayed}
		r.Family, r.Transport = node.AddrRoute(c.RemoteMultiaddr())
	}
	return r
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
	// A path can also change with no connection event (the node found on
	// the LAN a peer connected before: node.EvtPathChanged), and a peer's
	// role is known once identify has run.
	var bus <-chan any
	sub, err := s.h.EventBus().Subscribe([]any{new(node.EvtPathChanged),
		new(event.EvtPeerIdentificationCompleted), new(event.EvtPeerIdentificationFailed)})
	if err == nil {
		bus = sub.Out()
	}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		defer s.h.Network().StopNotify(nb)
		if sub != nil {
			defer sub.Close()
		}
		seen := make(map[peer.ID]Connection) // owned by this goroutine
		for {
			select {
			case <-s.ctx.Done():
				return
			case p := <-changed:
				s.refreshPath(seen, p, false)
			case ev, ok := <-bus:
				if !ok {
					bus = nil
					continue
				}
				switch e := ev.(type) {
				case node.EvtPathChanged:
					s.refreshPath(seen, e.Peer, false)
				case event.EvtPeerIdentificationCompleted:
					s.roles.identified(e.Peer)
					s.refreshPath(seen, e.Peer, true)
				case event.EvtPeerIdentificationFailed:
					s.roles.identified(e.Peer)
					s.refreshPath(seen, e.Peer, true)
				}
			}
		}
	}()
}

// refreshPath emits a Connection event when p's path or role changed. A
// new connection is announced once identify has run (or failed), so that
// a relay is named as one from its first event.
func (s *Service) refreshPath(seen map[peer.ID]Connection, p peer.ID, identifyDone bool) {
	c := Connection{Peer: p}
	if connected(s.h, p) {
		r := s.cfg.pathOf(p)
		c.Path, c.Relay, c.Family, c.Transport = r.Path, r.Relay, r.Family, r.Transport
	}
	if c.Path == "" {
		if _, ok := seen[p]; ok {
			// Disconnected: a member heard through a bridge that had a
			// connection of its own (a relayed one, usually) is gone.
			for _, r := range s.rooms.list() {
				r.gone(p)
			}
		}
		delete(seen, p)
		return
	}
	role, known := s.roles.known(p)
	if !known && !identifyDone {
		return
	}
	c.Role = role
	if old, ok := seen[p]; ok && old == c {
		return
	}
	seen[p] = c
	s.emit(c)
}

// connected reports whether p has any open connection, relayed ("limited")
// ones included.
func connected(h host.Host, p peer.ID) bool {
	c := h.Network().Connectedness(p)
	return c == network.Connected || c == network.Limited
}

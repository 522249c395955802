package node

import (
	"slices"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/event"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/p2p/host/eventbus"
	ma "github.com/multiformats/go-multiaddr"
)

// Observation is what identify told about one connection: the address
// this node was seen from (Observed) against the one it used (Local).
// Comparing them over several peers shows what a NAT does to the port.
type Observation struct {
	Peer     peer.ID
	Agent    string
	Local    ma.Multiaddr // this node's end of the connection
	Remote   ma.Multiaddr // the peer's end
	Observed ma.Multiaddr // this node's address as the peer saw it
	Relayed  bool
	At       time.Time
}

// maxObservations bounds the peers whose last observation is kept.
const maxObservations = 256

// observations keeps the newest identify observation per peer.
type observations struct {
	mu   sync.Mutex
	m    map[peer.ID]Observation
	next chan struct{} // closed and replaced on every change
}

func (o *observations) add(ob Observation) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.m == nil || len(o.m) >= maxObservations {
		o.m = make(map[peer.ID]Observation) // forgetting only weakens a diagnosis
	}
	o.m[ob.Peer] = ob
	if o.next != nil {
		close(o.next)
	}
	o.next = make(chan struct{})
}

func (o *observations) changed() <-chan struct{} {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.next == nil {
		o.next = make(chan struct{})
	}
	return o.next
}

// Observations returns the newest identify observation of each peer
// (bounded), oldest first.
func (n *Node) Observations() []Observation {
	n.observed.mu.Lock()
	out := make([]Observation, 0, len(n.observed.m))
	for _, ob := range n.observed.m {
		out = append(out, ob)
	}
	n.observed.mu.Unlock()
	slices.SortFunc(out, func(a, b Observation) int { return a.At.Compare(b.At) })
	return out
}

// ObservationsChanged returns a channel closed at the next observation.
func (n *Node) ObservationsChanged() <-chan struct{} { return n.observed.changed() }

// subscribeIdentify subscribes before the node dials anyone, so that no
// observation is missed.
func (n *Node) subscribeIdentify() (event.Subscription, error) {
	return n.host.EventBus().Subscribe(new(event.EvtPeerIdentificationCompleted), eventbus.Name("parley identify"))
}

// watchIdentify is the node's one reader of identify results: it keeps
// what peers observed of this node's address and, behind a NAT or
// firewall (alongside), dials public peers reached through a relay
// directly while DCUtR does (dialDirectAlongside).
func (n *Node) watchIdentify(sub event.Subscription, alongside bool) {
	defer n.wg.Done()
	defer sub.Close()
	for {
		select {
		case <-n.ctx.Done():
			return
		case e, ok := <-sub.Out():
			if !ok {
				return
			}
			ev := e.(event.EvtPeerIdentificationCompleted)
			if ev.Conn == nil {
				continue
			}
			if alongside {
				n.dialDirectAlongside(ev.Conn)
			}
			if ev.ObservedAddr == nil {
				continue
			}
			n.observed.add(Observation{
				Peer: ev.Peer, Agent: ev.AgentVersion,
				Local: ev.Conn.LocalMultiaddr(), Remote: ev.Conn.RemoteMultiaddr(),
				Observed: ev.ObservedAddr, Relayed: isRelayed(ev.Conn), At: time.Now(),
			})
		}
	}
}

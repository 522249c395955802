package chat

import (
	"fmt"
	"sync"
	"time"

	pubsub "github.com/libp2p/go-libp2p-pubsub"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"

	roomproto "github.com/parley-chat/parley/chat/protocol/room"
)

// meshTracer follows GossipSub's mesh per topic and counts rejected
// messages. Pubsub calls it from its event loop, so it never blocks.
type meshTracer struct {
	mu       sync.Mutex
	mesh     map[string]map[peer.ID]struct{}
	rejected int
	dropped  map[peer.ID]int // messages dropped since last reported
	total    int             // messages dropped in all
	wake     chan struct{}   // signalled when something was dropped
	// Peers pubsub has a stream to send on, and the copies it had none
	// for (unsent): see DropRPC.
	writers map[peer.ID]bool
	unsent  int
}

var _ pubsub.RawTracer = (*meshTracer)(nil)

func newMeshTracer() *meshTracer {
	return &meshTracer{
		mesh:    make(map[string]map[peer.ID]struct{}),
		dropped: make(map[peer.ID]int),
		wake:    make(chan struct{}, 1),
		writers: make(map[peer.ID]bool),
	}
}

func (t *meshTracer) peers(topic string) []peer.ID {
	t.mu.Lock()
	defer t.mu.Unlock()
	out := make([]peer.ID, 0, len(t.mesh[topic]))
	for p := range t.mesh[topic] {
		out = append(out, p)
	}
	return out
}

func (t *meshTracer) Graft(p peer.ID, topic string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.mesh[topic] == nil {
		t.mesh[topic] = make(map[peer.ID]struct{})
	}
	t.mesh[topic][p] = struct{}{}
}

// Prune is also called by chat when p leaves the topic or disconnects:
// pubsub traces no prune for that.
func (t *meshTracer) Prune(p peer.ID, topic string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	delete(t.mesh[topic], p)
}

func (t *meshTracer) Leave(topic string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	delete(t.mesh, topic)
}

func (t *meshTracer) RejectMessage(msg *pubsub.Message, reason string) {
	if reason == pubsub.RejectValidationQueueFull || reason == pubsub.RejectValidationThrottled {
		// Not the sender's fault: this node could not keep up.
		t.drop(msg.ReceivedFrom, 1)
		return
	}
	if reason != pubsub.RejectValidationFailed && reason != pubsub.RejectInvalidSignature &&
		reason != pubsub.RejectMissingSignature && reason != pubsub.RejectUnexpectedSignature {
		return
	}
	t.mu.Lock()
	t.rejected++
	t.mu.Unlock()
}

// DropRPC is called when pubsub drops what it would have sent to p. From
// a full queue, that is loss that must not stay silent. But pubsub also
// calls it for a peer it has no stream to yet (or any more): it knows a
// just-connected peer's rooms from the peer's own stream before its
// stream to the peer is open, and sends it a message it publishes (flood
// publishing). Nothing was queued there, and the peer gets the message
// from its other neighbours, by gossip, or at the latest as history; it
// is counted (Unsent), not reported as a drop.
func (t *meshTracer) DropRPC(rpc *pubsub.RPC, p peer.ID) {
	n := len(rpc.GetPublish())
	if n == 0 { // control messages only
		return
	}
	t.mu.Lock()
	writer := t.writers[p]
	if !writer {
		t.unsent += n
	}
	t.mu.Unlock()
	if writer {
		t.drop(p, n)
	}
}

// UndeliverableMessage is called when a room's subscription buffer is full
// and a message cannot be handed to the reader.
func (t *meshTracer) UndeliverableMessage(msg *pubsub.Message) {
	t.drop(msg.ReceivedFrom, 1)
}

func (t *meshTracer) drop(p peer.ID, n int) {
	t.mu.Lock()
	t.dropped[p] += n
	t.total += n
	t.mu.Unlock()
	select {
	case t.wake <- struct{}{}:
	default:
	}
}

// takeDropped returns and resets the per-peer drop counts.
func (t *meshTracer) takeDropped() map[peer.ID]int {
	t.mu.Lock()
	defer t.mu.Unlock()
	d := t.dropped
	t.dropped = make(map[peer.ID]int)
	return d
}

func (t *meshTracer) OnNewOutboundStream(p peer.ID, _ protocol.ID) {
	t.mu.Lock()
	t.writers[p] = true
	t.mu.Unlock()
}

func (t *meshTracer) OnClosedOutboundStream(p peer.ID) {
	t.mu.Lock()
	delete(t.writers, p)
	t.mu.Unlock()
}

func (t *meshTracer) Join(string)                      {}
func (t *meshTracer) ValidateMessage(*pubsub.Message)  {}
func (t *meshTracer) DeliverMessage(*pubsub.Message)   {}
func (t *meshTracer) DuplicateMessage(*pubsub.Message) {}
func (t *meshTracer) ThrottlePeer(peer.ID)             {}
func (t *meshTracer) RecvRPC(*pubsub.RPC)              {}
func (t *meshTracer) SendRPC(*pubsub.RPC, peer.ID)     {}

// MeshPeers lists the peers that GossipSub forwards room traffic to (its
// mesh for the room). Right after a peer joins, it is a member of the room
// but not yet of the mesh until the next heartbeat.
func (s *Service) MeshPeers(room string) []peer.ID {
	return s.tracer.peers(roomproto.Topic(s.wireOf(room)))
}

// Dropped counts room messages pubsub dropped because a queue was full: a
// peer's outbound queue, the validation queue or a room's subscription
// buffer. They are also reported as Error events.
func (s *Service) Dropped() int {
	s.tracer.mu.Lock()
	defer s.tracer.mu.Unlock()
	return s.tracer.total
}

// Unsent counts copies of room messages pubsub had no stream to send on:
// to a peer that had just connected (or whose stream had just closed).
// They are not drops (see meshTracer.DropRPC).
func (s *Service) Unsent() int {
	s.tracer.mu.Lock()
	defer s.tracer.mu.Unlock()
	return s.tracer.unsent
}

// reportDrops turns drops into Error events, at most one per peer per
// second, so a flood of drops is one line, not thousands.
func (s *Service) reportDrops() {
	defer s.wg.Done()
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	pending := false
	for {
		select {
		case <-s.ctx.Done():
			return
		case <-s.tracer.wake:
			pending = true
		case <-tick.C:
			if !pending {
				continue
			}
			pending = false
			for p, n := range s.tracer.takeDropped() {
				s.log.Warn("room messages dropped", "peer", p, "count", n)
				s.emit(Error{Err: fmt.Errorf("%d room messages to or from %s were dropped: the peer or the room was too busy", n, short(p))})
			}
		}
	}
}

// Rejected counts room messages that failed validation or signature checks.
func (s *Service) Rejected() int {
	s.tracer.mu.Lock()
	defer s.tracer.mu.Unlock()
	return s.tracer.rejected
}

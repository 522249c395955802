package chat

import (
	"sync"

	pubsub "github.com/libp2p/go-libp2p-pubsub"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"
)

// meshTracer follows GossipSub's mesh per topic and counts rejected
// messages. Pubsub calls it from its event loop, so it never blocks.
type meshTracer struct {
	mu       sync.Mutex
	mesh     map[string]map[peer.ID]struct{}
	rejected int
	dropped  int
}

var _ pubsub.RawTracer = (*meshTracer)(nil)

func newMeshTracer() *meshTracer {
	return &meshTracer{mesh: make(map[string]map[peer.ID]struct{})}
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

func (t *meshTracer) Prune(p peer.ID, topic string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	delete(t.mesh[topic], p)
}

// forget drops p from topic's mesh when it leaves the topic or
// disconnects: pubsub traces no prune for that.
func (t *meshTracer) forget(topic string, p peer.ID) {
	t.mu.Lock()
	defer t.mu.Unlock()
	delete(t.mesh[topic], p)
}

func (t *meshTracer) Leave(topic string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	delete(t.mesh, topic)
}

func (t *meshTracer) RejectMessage(_ *pubsub.Message, reason string) {
	if reason != pubsub.RejectValidationFailed && reason != pubsub.RejectInvalidSignature &&
		reason != pubsub.RejectMissingSignature && reason != pubsub.RejectUnexpectedSignature {
		return
	}
	t.mu.Lock()
	t.rejected++
	t.mu.Unlock()
}

func (t *meshTracer) DropRPC(*pubsub.RPC, peer.ID) {
	t.mu.Lock()
	t.dropped++
	t.mu.Unlock()
}

func (t *meshTracer) OnNewOutboundStream(peer.ID, protocol.ID) {}
func (t *meshTracer) OnClosedOutboundStream(peer.ID)           {}
func (t *meshTracer) Join(string)                              {}
func (t *meshTracer) ValidateMessage(*pubsub.Message)          {}
func (t *meshTracer) DeliverMessage(*pubsub.Message)           {}
func (t *meshTracer) DuplicateMessage(*pubsub.Message)         {}
func (t *meshTracer) ThrottlePeer(peer.ID)                     {}
func (t *meshTracer) RecvRPC(*pubsub.RPC)                      {}
func (t *meshTracer) SendRPC(*pubsub.RPC, peer.ID)             {}
func (t *meshTracer) UndeliverableMessage(*pubsub.Message)     {}

// MeshPeers lists the peers that GossipSub forwards room traffic to (its
// mesh for the room). Right after a peer joins, it is a member of the room
// but not yet of the mesh until the next heartbeat.
func (s *Service) MeshPeers(room string) []peer.ID {
	return s.tracer.peers(TopicPrefix + room)
}

// Rejected counts room messages that failed validation or signature checks.
func (s *Service) Rejected() int {
	s.tracer.mu.Lock()
	defer s.tracer.mu.Unlock()
	return s.tracer.rejected
}

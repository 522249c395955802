package chat

import (
	"testing"

	pubsub "github.com/libp2p/go-libp2p-pubsub"
	pubsubpb "github.com/libp2p/go-libp2p-pubsub/pb"
	"github.com/libp2p/go-libp2p/core/peer"
)

// A copy pubsub drops from the queue of a peer it sends to is a drop (an
// Error event); one it had no stream for (a peer that just connected or
// just went) is only counted: nothing waited in a queue, and the peer gets
// the message from its other neighbours.
func TestDropsAreTheCopiesLostFromAQueue(t *testing.T) {
	const writer, fresh peer.ID = "writer", "fresh"
	publish := func(n int) *pubsub.RPC {
		rpc := &pubsub.RPC{}
		for range n {
			rpc.Publish = append(rpc.Publish, &pubsubpb.Message{})
		}
		return rpc
	}
	control := &pubsub.RPC{}
	control.Control = &pubsubpb.ControlMessage{}

	tests := []struct {
		name    string
		closed  bool // the writer's stream closed before the drops
		dropped int
	}{
		{name: "stream open", dropped: 3},
		{name: "stream closed", closed: true, dropped: 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tr := newMeshTracer()
			tr.OnNewOutboundStream(writer, "/meshsub/1.2.0")
			if tt.closed {
				tr.OnClosedOutboundStream(writer)
			}
			tr.DropRPC(publish(2), writer)
			tr.DropRPC(publish(1), writer)
			tr.DropRPC(publish(4), fresh)
			tr.DropRPC(control, writer)

			if tr.total != tt.dropped || tr.dropped[writer] != tt.dropped {
				t.Errorf("dropped %d (to the writer %d), want %d", tr.total, tr.dropped[writer], tt.dropped)
			}
			if want := 7 - tt.dropped; tr.unsent != want {
				t.Errorf("unsent %d, want %d", tr.unsent, want)
			}
		})
	}
}

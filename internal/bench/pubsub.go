package bench

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"

	pubsub "github.com/libp2p/go-libp2p-pubsub"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"

	"github.com/parley-chat/parley/chat"
)

// Router names a way to carry a room.
type Router string

// The routers compared.
const (
	// GossipSub is go-libp2p-pubsub's GossipSub with the options
	// chat.Service uses (strict signing, flood publishing, peer exchange,
	// per-peer queue chat.PeerQueueSize), driven directly.
	GossipSub Router = "gossipsub"
	// FloodSub is go-libp2p-pubsub's FloodSub with strict signing and the
	// same queue sizes: the flood fill of simple P2P chats.
	FloodSub Router = "floodsub"
	// Parley is the real chat.Service (GossipSub as above, plus envelopes,
	// validators, the event stream).
	Parley Router = "parley"
	// PlainGossipSub is GossipSub with go-libp2p-pubsub's defaults (queues
	// of 32, no flood publishing), as the go-libp2p chat example uses it.
	PlainGossipSub Router = "plain-gossipsub"
)

// GossipTune changes GossipSub's parameters from chat's, for experiments
// (zero fields keep go-libp2p-pubsub's defaults).
type GossipTune struct {
	set            map[string]int // D, Dlo, Dhi, Dout, Dlazy, idontwant
	NoFloodPublish bool
}

// ParseTune parses "D=4,Dlo=3,Dhi=6,Dout=1,Dlazy=4,flood=false,idontwant=256".
func ParseTune(s string) (*GossipTune, error) {
	t := &GossipTune{set: make(map[string]int)}
	for _, kv := range strings.Split(s, ",") {
		k, v, ok := strings.Cut(strings.TrimSpace(kv), "=")
		if !ok {
			return nil, fmt.Errorf("tune %q: want key=value", kv)
		}
		if k == "flood" {
			b, err := strconv.ParseBool(v)
			if err != nil {
				return nil, fmt.Errorf("tune %q: %w", kv, err)
			}
			t.NoFloodPublish = !b
			continue
		}
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			return nil, fmt.Errorf("tune %q: want a count", kv)
		}
		switch k {
		case "D", "Dlo", "Dhi", "Dout", "Dlazy", "idontwant":
			t.set[k] = n
		default:
			return nil, fmt.Errorf("tune %q: unknown parameter (D, Dlo, Dhi, Dout, Dlazy, flood, idontwant)", kv)
		}
	}
	if _, err := t.params(); err != nil {
		return nil, err
	}
	return t, nil
}

// params applies the tune to go-libp2p's default parameters (not chat's),
// so that a tune describes a whole configuration.
func (t *GossipTune) params() (pubsub.GossipSubParams, error) {
	p := pubsub.DefaultGossipSubParams()
	for k, dst := range map[string]*int{"D": &p.D, "Dlo": &p.Dlo, "Dhi": &p.Dhi, "Dout": &p.Dout, "Dlazy": &p.Dlazy,
		"idontwant": &p.IDontWantMessageThreshold} {
		if v, ok := t.set[k]; ok {
			*dst = v
		}
	}
	p.Dscore = min(p.Dscore, p.Dhi)
	if !(p.Dlo <= p.D && p.D <= p.Dhi && p.Dout < p.Dlo && p.Dout < p.D/2) {
		return p, fmt.Errorf("GossipSub parameters D=%d Dlo=%d Dhi=%d Dout=%d: need Dlo ≤ D ≤ Dhi and Dout < Dlo, Dout < D/2", p.D, p.Dlo, p.Dhi, p.Dout)
	}
	return p, nil
}

// String describes the changes, e.g. "D=4 Dlo=3 Dhi=6, no flood publishing".
func (t *GossipTune) String() string {
	if t == nil {
		return ""
	}
	p, _ := t.params()
	s := fmt.Sprintf("D=%d Dlo=%d Dhi=%d Dout=%d Dlazy=%d", p.D, p.Dlo, p.Dhi, p.Dout, p.Dlazy)
	if v, ok := t.set["idontwant"]; ok {
		s += fmt.Sprintf(", IDONTWANT from %d B", v)
	}
	if t.NoFloodPublish {
		s += ", no flood publishing"
	} else {
		s += ", flood publishing"
	}
	return s
}

// newPubSub starts the pubsub router r on h with tracer t; tune (GossipSub
// only) may change its parameters.
func newPubSub(ctx context.Context, h host.Host, r Router, t *psTracer, tune *GossipTune) (*pubsub.PubSub, error) {
	switch r {
	case FloodSub:
		return pubsub.NewFloodSub(ctx, h,
			pubsub.WithRawTracer(t),
			pubsub.WithMessageSignaturePolicy(pubsub.StrictSign),
			pubsub.WithMaxMessageSize(64<<10),
			pubsub.WithPeerOutboundQueueSize(chat.PeerQueueSize),
			pubsub.WithValidateQueueSize(chat.PeerQueueSize),
		)
	case PlainGossipSub:
		return pubsub.NewGossipSub(ctx, h, pubsub.WithRawTracer(t))
	default:
		// chat's own options; a tune overrides them (later options win).
		opts := chat.PubSubOptions(t, func(peer.ID) float64 { return 0 })
		if tune != nil {
			p, err := tune.params()
			if err != nil {
				return nil, err
			}
			opts = append(opts, pubsub.WithFloodPublish(!tune.NoFloodPublish), pubsub.WithGossipSubParams(p))
		}
		return pubsub.NewGossipSub(ctx, h, opts...)
	}
}

// psTracer counts what pubsub does on one node.
type psTracer struct {
	dup     atomic.Int64 // redundant copies received (and discarded)
	dropped atomic.Int64 // messages lost to a full queue, in or out
	mesh    atomic.Int64 // current mesh size (one topic per node here)
	// dropped, by queue: outbound to a peer, validation, subscription
	outQ, valQ, subQ atomic.Int64
	wire             wireTracer
	// unsent: copies pubsub had no stream to send on (a peer just
	// connected or gone), not counted as drops, as in chat's tracer.
	unsent    atomic.Int64
	writersMu sync.Mutex
	writers   map[peer.ID]bool
}

var _ pubsub.RawTracer = (*psTracer)(nil)

func (t *psTracer) Graft(peer.ID, string) { t.mesh.Add(1) }
func (t *psTracer) Prune(peer.ID, string) { t.mesh.Add(-1) }
func (t *psTracer) DuplicateMessage(*pubsub.Message) {
	t.dup.Add(1)
	t.wire.dup.Add(1)
}
func (t *psTracer) DropRPC(rpc *pubsub.RPC, p peer.ID) {
	n := int64(len(rpc.GetPublish()))
	t.writersMu.Lock()
	writer := t.writers[p]
	t.writersMu.Unlock()
	if !writer {
		t.unsent.Add(n)
		return
	}
	t.dropped.Add(n)
	t.outQ.Add(n)
}
func (t *psTracer) UndeliverableMessage(*pubsub.Message) {
	t.dropped.Add(1)
	t.subQ.Add(1)
}
func (t *psTracer) RejectMessage(_ *pubsub.Message, reason string) {
	if reason == pubsub.RejectValidationQueueFull || reason == pubsub.RejectValidationThrottled {
		t.dropped.Add(1)
		t.valQ.Add(1)
	}
}
func (t *psTracer) OnNewOutboundStream(p peer.ID, _ protocol.ID) {
	t.writersMu.Lock()
	defer t.writersMu.Unlock()
	if t.writers == nil {
		t.writers = make(map[peer.ID]bool)
	}
	t.writers[p] = true
}
func (t *psTracer) OnClosedOutboundStream(p peer.ID) {
	t.writersMu.Lock()
	defer t.writersMu.Unlock()
	delete(t.writers, p)
}
func (t *psTracer) Join(string)                        {}
func (t *psTracer) Leave(string)                       {}
func (t *psTracer) ValidateMessage(*pubsub.Message)    { t.wire.valid.Add(1) }
func (t *psTracer) DeliverMessage(*pubsub.Message)     {}
func (t *psTracer) ThrottlePeer(peer.ID)               {}
func (t *psTracer) RecvRPC(*pubsub.RPC)                {}
func (t *psTracer) SendRPC(rpc *pubsub.RPC, _ peer.ID) { t.wire.sent(rpc) }

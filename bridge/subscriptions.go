package bridge

import (
	"sync"

	pubsub "github.com/libp2p/go-libp2p-pubsub"
	pubsubpb "github.com/libp2p/go-libp2p-pubsub/pb"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"

	roomproto "github.com/parley-chat/parley/chat/protocol/room"
)

// DefaultMaxTopicsPerPeer bounds the room topics one peer may be
// subscribed to in the relay's eyes, and DefaultMaxRoomsPerPeer the rooms
// the relay starts carrying because of one peer.
const (
	DefaultMaxTopicsPerPeer = 256
	DefaultMaxRoomsPerPeer  = 32
)

// subscriptionFilter is pubsub's subscription filter on the relay: it
// keeps only subscriptions to valid room topics and at most max per peer,
// so that what pubsub remembers per peer is bounded (a peer subscribing
// to thousands of topics grew a relay by 110 MB, never freed). It
// forgets a peer when its last connection closes, as pubsub does.
type subscriptionFilter struct {
	max int

	mu   sync.Mutex
	subs map[peer.ID]map[string]struct{}
}

var _ pubsub.SubscriptionFilter = (*subscriptionFilter)(nil)

func newSubscriptionFilter(max int, n network.Network) *subscriptionFilter {
	f := &subscriptionFilter{max: max, subs: make(map[peer.ID]map[string]struct{})}
	n.Notify(&network.NotifyBundle{DisconnectedF: func(n network.Network, c network.Conn) {
		if n.Connectedness(c.RemotePeer()) != network.Connected {
			f.mu.Lock()
			delete(f.subs, c.RemotePeer())
			f.mu.Unlock()
		}
	}})
	return f
}

// CanSubscribe reports whether the relay itself may join topic.
func (f *subscriptionFilter) CanSubscribe(topic string) bool {
	_, ok := validRoomTopic(topic)
	return ok
}

// FilterIncomingSubscriptions keeps the subscriptions pubsub should take
// from one RPC of from: unsubscriptions always, subscriptions to valid
// room topics while from is under its bound.
func (f *subscriptionFilter) FilterIncomingSubscriptions(from peer.ID, subs []*pubsubpb.RPC_SubOpts) ([]*pubsubpb.RPC_SubOpts, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	mine := f.subs[from]
	out := subs[:0:0]
	for _, s := range subs {
		topic := s.GetTopicid()
		if !s.GetSubscribe() {
			if _, ok := mine[topic]; ok {
				delete(mine, topic)
				out = append(out, s)
			}
			continue
		}
		if _, ok := validRoomTopic(topic); !ok {
			continue
		}
		if _, ok := mine[topic]; !ok && len(mine) >= f.max {
			continue
		}
		if mine == nil {
			mine = make(map[string]struct{})
			f.subs[from] = mine
		}
		mine[topic] = struct{}{}
		out = append(out, s)
	}
	return out, nil
}

// topics is how many topics from is subscribed to, as far as the filter
// let it.
func (f *subscriptionFilter) topics(from peer.ID) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.subs[from])
}

func validRoomTopic(topic string) (string, bool) {
	room, ok := roomproto.NameOf(topic)
	return room, ok && roomproto.ValidateName(room) == nil
}

package bridge_test

import (
	"context"
	"fmt"
	"slices"
	"testing"

	pubsub "github.com/libp2p/go-libp2p-pubsub"

	"github.com/parley-chat/parley/bridge"
	"github.com/parley-chat/parley/chat"
	roomproto "github.com/parley-chat/parley/chat/protocol/room"
	"github.com/parley-chat/parley/internal/testutil"
)

// A peer subscribing to thousands of topics (valid room names, invalid
// ones, other protocols' topics) gets a bounded share of the relay: the
// subscriptions it holds there, the rooms it makes the relay carry; an
// honest member's new room is still carried, and the relay forgets the
// peer when it leaves.
func TestSubscriptionFloodIsBoundedPerPeer(t *testing.T) {
	const perPeer = 8
	b := testutil.NewBridge(t, bridge.WithMaxRooms(16), bridge.WithMaxRoomsPerPeer(perPeer))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	hostile := testutil.NewNode(t)
	ps, err := pubsub.NewGossipSub(ctx, hostile.Host())
	if err != nil {
		t.Fatal(err)
	}
	if err := hostile.Host().Connect(ctx, testutil.Info(b.Node())); err != nil {
		t.Fatal(err)
	}
	const flood = 400 // bounded: topics of each kind
	var topics []*pubsub.Topic
	defer func() {
		for _, tp := range topics {
			tp.Close()
		}
	}()
	for i := range flood {
		for _, name := range []string{
			roomproto.Topic(fmt.Sprintf("room-%d", i)),     // valid room names
			roomproto.Topic(fmt.Sprintf("bad name %d", i)), // invalid room names
			fmt.Sprintf("/other/protocol/%d", i),           // not Parley at all
		} {
			tp, err := ps.Join(name)
			if err != nil {
				t.Fatal(err)
			}
			sub, err := tp.Subscribe()
			if err != nil {
				t.Fatal(err)
			}
			defer sub.Cancel()
			topics = append(topics, tp)
		}
	}
	testutil.Eventually(t, "the relay took its share of the flood", func() bool {
		return b.Topics(hostile.ID()) == bridge.DefaultMaxTopicsPerPeer && len(b.Rooms()) == perPeer
	})
	// An honest member's room still finds a slot.
	member := testutil.NewChat(t, testutil.NewNode(t), chat.WithNick("member"))
	if err := member.Node.Host().Connect(ctx, testutil.Info(b.Node())); err != nil {
		t.Fatal(err)
	}
	if err := member.Join("tea"); err != nil {
		t.Fatal(err)
	}
	testutil.Eventually(t, "the member's room carried", func() bool { return slices.Contains(b.Rooms(), "tea") })
	t.Logf("flood of %d topics: the relay holds %d for the peer and carries %d rooms for it (of %d slots), and the member's room",
		3*flood, b.Topics(hostile.ID()), perPeer, 16)

	// Gone: forgotten.
	hostile.Close()
	testutil.Eventually(t, "the peer forgotten", func() bool { return b.Topics(hostile.ID()) == 0 })
}

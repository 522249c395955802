package bridge_test

import (
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	pubsub "github.com/libp2p/go-libp2p-pubsub"
	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"

	"github.com/parley-chat/parley/bridge"
	"github.com/parley-chat/parley/chat"
	roomproto "github.com/parley-chat/parley/chat/protocol/room"
	"github.com/parley-chat/parley/internal/testutil"
	"github.com/parley-chat/parley/node"
)

// carryWithin is how soon a bridge must carry a room after a connected
// member subscribes to it (it takes milliseconds on loopback).
const carryWithin = 5 * time.Second

// joinLog records the members a bridge reports joining its rooms: what
// `parley relay` prints for its operator.
type joinLog struct {
	mu     sync.Mutex
	joined map[string]bool // room + "/" + peer
	added  chan struct{}   // closed and replaced on every new join
}

func newJoinLog() *joinLog {
	return &joinLog{joined: make(map[string]bool), added: make(chan struct{})}
}

func (l *joinLog) observe(ev chat.Event) {
	j, ok := ev.(chat.PeerJoined)
	if !ok {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.joined[j.Room+"/"+j.Peer.String()] = true
	close(l.added)
	l.added = make(chan struct{})
}

// wait reports whether the bridge reports p in room within d.
func (l *joinLog) wait(room string, p peer.ID, d time.Duration) bool {
	deadline := time.NewTimer(d)
	defer deadline.Stop()
	for {
		l.mu.Lock()
		ok, added := l.joined[room+"/"+p.String()], l.added
		l.mu.Unlock()
		if ok {
			return true
		}
		select {
		case <-added:
		case <-deadline.C:
			return false
		}
	}
}

// closeWithin closes b, or gives up after d and says so.
func closeWithin(b *bridge.Bridge, d time.Duration) error {
	done := make(chan error, 1)
	go func() { done <- b.Close() }()
	select {
	case err := <-done:
		return err
	case <-time.After(d):
		return fmt.Errorf("bridge Close did not return within %v", d)
	}
}

// Members subscribing to and leaving rooms while the bridge sweeps idle
// rooms must not wedge the bridge: afterwards it still carries a room a
// member joins, reports that member, and closes. (The sweep used to hold
// the room table's lock while waiting for pubsub's event loop, which in
// turn waited for that lock to note a subscription: the relay then carried
// nothing more and Close hung.)
func TestRelayKeepsCarryingThroughSubscriptionChurn(t *testing.T) {
	joins := newJoinLog()
	key, _ := newKey(t)
	b, err := bridge.New(
		bridge.WithIdleSweep(time.Millisecond, 0), // sweep constantly; every room without members is idle
		bridge.WithObserver(joins.observe),
		bridge.WithNodeOptions(node.WithIdentity(key), node.WithListenAddrs(ma.StringCast("/ip4/127.0.0.1/tcp/0"))),
	)
	if err != nil {
		t.Fatalf("start bridge: %v", err)
	}
	t.Cleanup(func() {
		if err := closeWithin(b, carryWithin); err != nil {
			t.Error(err)
		}
	})

	// A few members, each kept in one room of its own so that the sweep
	// always has rooms to look at. Their queues to each peer hold the whole
	// churn: every (un)subscription reaches the bridge, and pubsub never
	// falls back to its retry goroutines, which sleep for up to a second
	// whatever its context says.
	const members, rounds = 3, 300
	queue := pubsub.WithPeerOutboundQueueSize(2*rounds + 64)
	ps := make([]*pubsub.PubSub, members)
	ids := make([]peer.ID, members)
	for i := range members {
		n := testutil.NewNode(t, node.WithBootstrap(testutil.Info(b.Node())))
		p, err := pubsub.NewGossipSub(t.Context(), n.Host(), queue)
		if err != nil {
			t.Fatalf("start member pubsub: %v", err)
		}
		ps[i], ids[i] = p, n.ID()
		home := fmt.Sprintf("home-%d", i)
		topic, err := p.Join(roomproto.Topic(home))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := topic.Subscribe(); err != nil {
			t.Fatal(err)
		}
		if !joins.wait(home, n.ID(), carryWithin) {
			t.Fatalf("the bridge did not carry room %s of member %d within %v", home, i, carryWithin)
		}
	}

	// Churn: each member joins and leaves a few rooms over and over; the
	// bridge starts carrying them and the sweep drops them again.
	var wg sync.WaitGroup
	for i, p := range ps {
		wg.Go(func() {
			for k := range rounds {
				if err := joinAndLeave(p, fmt.Sprintf("churn-%d-%d", i, k%4)); err != nil {
					t.Errorf("member %d, round %d: %v", i, k, err)
					return
				}
			}
		})
	}
	wg.Wait()

	topic, err := ps[0].Join(roomproto.Topic("fresh"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := topic.Subscribe(); err != nil {
		t.Fatal(err)
	}
	if !joins.wait("fresh", ids[0], carryWithin) {
		t.Fatalf("after the churn, the bridge did not report member 0 in a room it joined within %v: the relay is wedged", carryWithin)
	}
	if got := b.Rooms(); !slices.Contains(got, "fresh") {
		t.Errorf("bridge carries %v, want fresh among them", got)
	}
	if got := b.Members("fresh"); !slices.Equal(got, ids[:1]) {
		t.Errorf("members of fresh = %v, want [%s]", got, ids[0])
	}
	if err := closeWithin(b, carryWithin); err != nil {
		t.Fatal(err)
	}
}

// joinAndLeave subscribes to a room and leaves it at once.
func joinAndLeave(p *pubsub.PubSub, room string) error {
	topic, err := p.Join(roomproto.Topic(room))
	if err != nil {
		return fmt.Errorf("join %s: %w", room, err)
	}
	sub, err := topic.Subscribe()
	if err != nil {
		return errors.Join(fmt.Errorf("subscribe %s: %w", room, err), topic.Close())
	}
	sub.Cancel()
	if err := topic.Close(); err != nil {
		return fmt.Errorf("leave %s: %w", room, err)
	}
	return nil
}

// Package testutil starts loopback Parley nodes and collects their events
// for the tests of other packages.
package testutil

import (
	"context"
	"crypto/rand"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"
	"go.uber.org/goleak"

	"github.com/parley-chat/parley/bridge"
	"github.com/parley-chat/parley/chat"
	"github.com/parley-chat/parley/internal/eventlog"
	"github.com/parley-chat/parley/node"
)

// Timeout bounds every wait in tests.
const Timeout = 20 * time.Second

// NewNode starts a loopback-only node (TCP on 127.0.0.1, no mDNS) that is
// closed when the test ends.
func NewNode(t testing.TB, opts ...node.Option) *node.Node {
	t.Helper()
	key, _, err := crypto.GenerateEd25519Key(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	all := append([]node.Option{
		node.WithIdentity(key),
		node.WithListenAddrs(ma.StringCast("/ip4/127.0.0.1/tcp/0")),
	}, opts...)
	n, err := node.New(all...)
	if err != nil {
		t.Fatalf("start node: %v", err)
	}
	t.Cleanup(func() { n.Close() })
	return n
}

// NewBridge starts a loopback relay/bridge, closed when the test ends.
func NewBridge(t testing.TB, opts ...bridge.Option) *bridge.Bridge {
	t.Helper()
	key, _, err := crypto.GenerateEd25519Key(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	b, err := bridge.New(append(opts, bridge.WithNodeOptions(
		node.WithIdentity(key), node.WithListenAddrs(ma.StringCast("/ip4/127.0.0.1/tcp/0"))))...)
	if err != nil {
		t.Fatalf("start bridge: %v", err)
	}
	t.Cleanup(func() { b.Close() })
	return b
}

// Info returns what another node needs to dial n.
func Info(n *node.Node) peer.AddrInfo {
	return peer.AddrInfo{ID: n.ID(), Addrs: n.Host().Addrs()}
}

// Chat is a chat service whose events are recorded for assertions.
type Chat struct {
	*chat.Service
	Node *node.Node

	log  *eventlog.Log[chat.Event]
	done chan struct{}
}

// NewChat starts a chat service on n, closed when the test ends.
func NewChat(t testing.TB, n *node.Node, opts ...chat.Option) *Chat {
	t.Helper()
	s, err := chat.New(n.Host(), append([]chat.Option{chat.WithPathClassifier(n.RouteOf)}, opts...)...)
	if err != nil {
		t.Fatalf("start chat: %v", err)
	}
	// A buffer that no test fills: a recorder that fell behind would
	// silently miss events the test waits for.
	sub, err := s.Subscribe(chat.WithBuffer(1 << 16))
	if err != nil {
		t.Fatalf("subscribe: %v", err)
	}
	c := &Chat{Service: s, Node: n, log: eventlog.New[chat.Event](time.Now()), done: make(chan struct{})}
	go func() {
		defer close(c.done)
		for st := range sub.C() {
			c.log.Add(time.Now(), st.Event)
		}
	}()
	t.Cleanup(func() {
		s.Close()
		<-c.done
		if err := sub.Err(); err != nil {
			t.Errorf("%s: event recorder: %v", c.Nick(), err)
		}
	})
	return c
}

// Events returns a copy of every event so far.
func (c *Chat) Events() []chat.Event { return c.log.Events() }

// Messages returns the room messages of room recorded so far, in the
// order they were shown.
func (c *Chat) Messages(room string) []chat.Message {
	var out []chat.Message
	for _, ev := range c.Events() {
		if m, ok := ev.(chat.Message); ok && m.Room == room {
			out = append(out, m)
		}
	}
	return out
}

// WaitFor waits until an event matching f has been recorded (at any time,
// earlier ones included) and returns it.
func (c *Chat) WaitFor(t testing.TB, what string, f func(chat.Event) bool) chat.Event {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), Timeout)
	defer cancel()
	ev, _, _, err := c.log.Wait(ctx, 0, 1, f)
	if err != nil {
		t.Fatalf("%s: timed out after %v waiting for %s; events: %+v", c.Nick(), Timeout, what, c.Events())
	}
	return ev
}

// WaitMessage waits for a room message with the given text.
func (c *Chat) WaitMessage(t testing.TB, room, text string) chat.Message {
	t.Helper()
	return c.WaitFor(t, "message "+text, func(ev chat.Event) bool {
		m, ok := ev.(chat.Message)
		return ok && m.Room == room && m.Text == text
	}).(chat.Message)
}

// WaitPeerJoined waits until p joined room.
func (c *Chat) WaitPeerJoined(t testing.TB, room string, p peer.ID) {
	t.Helper()
	c.WaitFor(t, "peer-joined "+p.String(), func(ev chat.Event) bool {
		j, ok := ev.(chat.PeerJoined)
		return ok && j.Room == room && j.Peer == p
	})
}

// Eventually polls cond until it holds or the timeout passes: for state
// that has no event of its own.
func Eventually(t testing.TB, what string, cond func() bool) {
	t.Helper()
	EventuallyWithin(t, Timeout, what, cond)
}

// EventuallyWithin is Eventually with its own bound, for what depends on
// how fast a loaded machine can generate load (a flood).
func EventuallyWithin(t testing.TB, bound time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(bound)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", bound, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// LeakIgnores lists goroutines that libraries start once per process and
// never stop; everything else must be gone when the tests end.
func LeakIgnores() []goleak.Option {
	return []goleak.Option{
		goleak.IgnoreAnyFunction("github.com/ipfs/go-log/v2/writer.(*MirrorWriter).logRoutine"),
		goleak.IgnoreAnyFunction("go.opencensus.io/stats/view.(*worker).start"),
		goleak.IgnoreAnyFunction("github.com/libp2p/go-libp2p-kad-dht/dht_filters.go.init"),
		// pubsub retries a subscription announcement to a busy peer after
		// up to a second, even once it is closed: bounded, not a leak.
		goleak.IgnoreAnyFunction("github.com/libp2p/go-libp2p-pubsub.(*PubSub).announceRetry"),
	}
}

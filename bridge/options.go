package bridge

import (
	"fmt"
	"log/slog"
	"time"

	pubsub "github.com/libp2p/go-libp2p-pubsub"
	relayv2 "github.com/libp2p/go-libp2p/p2p/protocol/circuitv2/relay"

	"github.com/parley-chat/parley/chat"
	"github.com/parley-chat/parley/chat/storage"
	"github.com/parley-chat/parley/node"
)

// Option configures a Bridge.
type Option func(*config) error

type config struct {
	resources relayv2.Resources
	nodeOpts  []node.Option
	logger    *slog.Logger

	rooms            map[string]bool // nil: every room
	maxRooms         int
	maxRoomsPerPeer  int
	maxTopicsPerPeer int
	rate             float64 // messages per second per author per room
	burst            int
	maxMessageBytes  int
	observer         func(chat.Event)
	store            storage.History
	retention        storage.Retention
	tracer           pubsub.RawTracer

	// Idle sweep: every sweepEvery, rooms with no member connected for
	// idleAfter stop being carried. Only tests change them (export_test.go).
	sweepEvery time.Duration
	idleAfter  time.Duration
}

func defaults() config {
	return config{
		resources:        DefaultResources(),
		logger:           slog.Default(),
		maxRooms:         DefaultMaxRooms,
		maxRoomsPerPeer:  DefaultMaxRoomsPerPeer,
		maxTopicsPerPeer: DefaultMaxTopicsPerPeer,
		rate:             DefaultRate,
		burst:            DefaultBurst,
		maxMessageBytes:  chat.MaxEnvelopeBytes,
		retention:        DefaultRetention,
		sweepEvery:       time.Minute,
		idleAfter:        idleRoomAfter,
	}
}

// WithResources sets the circuit relay limits (default DefaultResources).
func WithResources(r relayv2.Resources) Option {
	return func(c *config) error { c.resources = r; return nil }
}

// WithNodeOptions passes options to the bridge's node (identity, listen
// and announce addresses, logger).
func WithNodeOptions(opts ...node.Option) Option {
	return func(c *config) error { c.nodeOpts = append(c.nodeOpts, opts...); return nil }
}

// WithLogger sets the structured logger.
func WithLogger(l *slog.Logger) Option {
	return func(c *config) error { c.logger = l; return nil }
}

// WithRooms restricts the rooms the bridge carries; without it, it
// carries every room its peers are in (up to WithMaxRooms).
func WithRooms(names ...string) Option {
	return func(c *config) error {
		if c.rooms == nil {
			c.rooms = make(map[string]bool)
		}
		for _, n := range names {
			if err := chat.ValidateRoomName(n); err != nil {
				return fmt.Errorf("bridge.WithRooms: %w", err)
			}
			c.rooms[n] = true
		}
		return nil
	}
}

// WithMaxRooms bounds how many rooms the bridge carries at once (positive).
func WithMaxRooms(n int) Option {
	return func(c *config) error {
		if n <= 0 {
			return fmt.Errorf("bridge.WithMaxRooms(%d): the number of rooms must be positive", n)
		}
		c.maxRooms = n
		return nil
	}
}

// WithMaxRoomsPerPeer bounds the rooms one peer can make the bridge
// carry (positive), so that no peer takes every WithMaxRooms slot.
func WithMaxRoomsPerPeer(n int) Option {
	return func(c *config) error {
		if n <= 0 {
			return fmt.Errorf("bridge.WithMaxRoomsPerPeer(%d): the number of rooms must be positive", n)
		}
		c.maxRoomsPerPeer = n
		return nil
	}
}

// WithRateLimit bounds the messages one author may send through the bridge
// in one room: rate per second on average, burst at once (both positive;
// a rate of +Inf does not limit).
func WithRateLimit(rate float64, burst int) Option {
	return func(c *config) error {
		if !(rate > 0) { // NaN too
			return fmt.Errorf("bridge.WithRateLimit(%v, %d): the rate must be positive", rate, burst)
		}
		if burst <= 0 {
			return fmt.Errorf("bridge.WithRateLimit(%v, %d): the burst must be positive", rate, burst)
		}
		c.rate, c.burst = rate, burst
		return nil
	}
}

// WithMaxMessageBytes bounds the size of one carried room message: from 1
// to chat.MaxEnvelopeBytes, the most that any node accepts.
func WithMaxMessageBytes(n int) Option {
	return func(c *config) error {
		if n <= 0 || n > chat.MaxEnvelopeBytes {
			return fmt.Errorf("bridge.WithMaxMessageBytes(%d): want 1 to %d bytes (chat.MaxEnvelopeBytes, the most any node accepts)", n, chat.MaxEnvelopeBytes)
		}
		c.maxMessageBytes = n
		return nil
	}
}

// WithObserver calls f with a chat.PeerJoined or chat.PeerLeft event when a
// peer connected to the bridge joins or leaves a carried room. f is called
// from the bridge's goroutines and must return quickly.
func WithObserver(f func(chat.Event)) Option {
	return func(c *config) error { c.observer = f; return nil }
}

// WithStore keeps the history of carried rooms in st, to serve members
// catching up (default: in memory). The bridge does not close it.
func WithStore(st storage.History) Option {
	return func(c *config) error { c.store = st; return nil }
}

// WithRetention bounds the history kept per carried room (a zero field
// does not limit; negative ones are an error).
func WithRetention(r storage.Retention) Option {
	return func(c *config) error {
		if r.MaxMessages < 0 || r.MaxAge < 0 {
			return fmt.Errorf("bridge.WithRetention(%d messages, %v): limits must not be negative", r.MaxMessages, r.MaxAge)
		}
		c.retention = r
		return nil
	}
}

// WithPubSubTracer lets t see every pubsub event of the rooms the bridge
// carries (messages forwarded, rejected, ignored over the rate limit), e.g.
// for metrics. Pubsub calls it from its event loop: it must not block.
func WithPubSubTracer(t pubsub.RawTracer) Option {
	return func(c *config) error { c.tracer = t; return nil }
}

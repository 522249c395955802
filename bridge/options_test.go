package bridge_test

import (
	"math"
	"strings"
	"testing"
	"time"

	ma "github.com/multiformats/go-multiaddr"

	"github.com/parley-chat/parley/bridge"
	"github.com/parley-chat/parley/chat"
	"github.com/parley-chat/parley/internal/store"
	"github.com/parley-chat/parley/internal/testutil"
	"github.com/parley-chat/parley/node"
)

// A bad limit stops the bridge from starting, with an error naming the
// option, instead of being silently changed or failing later.
func TestBadOptionsFailAtNew(t *testing.T) {
	tests := []struct {
		name string
		opt  bridge.Option
		want string
	}{
		{"no rooms", bridge.WithMaxRooms(0), "WithMaxRooms(0)"},
		{"negative rooms", bridge.WithMaxRooms(-1), "WithMaxRooms(-1)"},
		{"zero rate", bridge.WithRateLimit(0, 10), "rate must be positive"},
		{"negative rate", bridge.WithRateLimit(-1, 10), "rate must be positive"},
		{"NaN rate", bridge.WithRateLimit(math.NaN(), 10), "rate must be positive"},
		{"zero burst", bridge.WithRateLimit(10, 0), "burst must be positive"},
		{"zero message size", bridge.WithMaxMessageBytes(0), "WithMaxMessageBytes(0)"},
		{"message size over what nodes accept", bridge.WithMaxMessageBytes(chat.MaxEnvelopeBytes + 1), "MaxEnvelopeBytes"},
		{"negative retention", bridge.WithRetention(store.Retention{MaxMessages: -1}), "WithRetention"},
		{"bad room", bridge.WithRooms("a/b"), "WithRooms"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			key, _ := newKey(t)
			b, err := bridge.New(tt.opt, bridge.WithNodeOptions(
				node.WithIdentity(key), node.WithListenAddrs(ma.StringCast("/ip4/127.0.0.1/tcp/0"))))
			if err == nil {
				b.Close()
				t.Fatal("New accepted the option")
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("New: %v; want an error mentioning %q", err, tt.want)
			}
		})
	}
}

// The limits at the edge of what is allowed are accepted as given.
func TestEdgeOptionsAreAccepted(t *testing.T) {
	testutil.NewBridge(t,
		bridge.WithMaxRooms(1),
		bridge.WithRateLimit(math.Inf(1), 1),
		bridge.WithMaxMessageBytes(chat.MaxEnvelopeBytes),
		bridge.WithRetention(store.Retention{MaxMessages: 0, MaxAge: time.Hour}),
	)
}

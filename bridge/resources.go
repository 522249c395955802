package bridge

import (
	"time"

	relayv2 "github.com/libp2p/go-libp2p/p2p/protocol/circuitv2/relay"

	"github.com/parley-chat/parley/chat/storage"
)

// Defaults of `parley relay`, in one place.
const (
	// DefaultMaxRooms bounds the rooms carried at once.
	DefaultMaxRooms = 1024
	// DefaultRate and DefaultBurst bound one author in one room: far above
	// what a person types, low enough to stop a flood.
	DefaultRate  = 20
	DefaultBurst = 100
)

// DefaultRetention is the history a bridge keeps per carried room.
var DefaultRetention = storage.Retention{MaxMessages: 1000, MaxAge: 7 * 24 * time.Hour}

// DefaultResources are the circuit relay limits. They start from
// go-libp2p's defaults and give each relayed connection more time and
// data, since a chat connection is long-lived and small: 10 minutes and
// 1 MiB per relayed connection (go-libp2p: 2 min, 128 KiB), after which
// the peers open a new one if hole punching has not made them direct.
func DefaultResources() relayv2.Resources {
	r := relayv2.DefaultResources()
	r.Limit = &relayv2.RelayLimit{Duration: 10 * time.Minute, Data: 1 << 20}
	r.MaxReservations = 512
	r.MaxCircuits = 32
	return r
}

package bridge

import (
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
)

// WithIdleSweep makes the bridge look for idle rooms every `every` and stop
// carrying those with no member connected for `after`, so that tests can
// run the sweep constantly.
func WithIdleSweep(every, after time.Duration) Option {
	return func(c *config) error { c.sweepEvery, c.idleAfter = every, after; return nil }
}

// Topics is how many topics the bridge's subscription filter holds for p.
func (b *Bridge) Topics(p peer.ID) int { return b.subs.topics(p) }

// RosterLen is how many members' presences the bridge holds for room.
func (b *Bridge) RosterLen(room string) int {
	book, ok := b.rosterOf(room)
	if !ok {
		return 0
	}
	return book.Len()
}

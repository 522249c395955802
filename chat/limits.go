package chat

import (
	"errors"
	"math"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/parley-chat/parley/internal/ratelimit"
)

// Limits bound what other peers can make this node do and store. Every
// limit is per peer (or per author), so one abuser cannot use up what
// honest peers need; the state behind them is bounded too.
type Limits struct {
	// AuthorRate and AuthorBurst bound one author's messages in one room,
	// per second and at once: far above what a person types. Members
	// ignore the excess (pubsub's ValidationIgnore: not forwarded, and no
	// penalty for the honest peers that relay it), and this node's own
	// Send refuses it with ErrTooFast rather than publish what every
	// member would drop. A rate of +Inf does not limit.
	AuthorRate  float64
	AuthorBurst int
	// CatchUpBytes bounds the new history one peer may add to the store
	// through catch-ups: this much at once, refilled over an hour. The
	// rest of what it serves is not fetched (another member or a later
	// catch-up brings it).
	CatchUpBytes int
	// CatchUpsPerRoom bounds the catch-ups from one peer in one room,
	// however often it leaves and comes back: this many at once, then
	// one per CatchUpEvery.
	CatchUpsPerRoom int
	// HistoryRate and HistoryBurst bound the history requests served to
	// one peer, per second and at once (a catch-up is up to 50 requests).
	HistoryRate  float64
	HistoryBurst int
}

// CatchUpEvery is how often one peer may serve a catch-up in one room
// once its burst (Limits.CatchUpsPerRoom) is used up.
const CatchUpEvery = time.Minute

// DefaultLimits are the limits of a user's node.
func DefaultLimits() Limits {
	return Limits{
		AuthorRate: 20, AuthorBurst: 100,
		CatchUpBytes:    16 << 20,
		CatchUpsPerRoom: 3,
		HistoryRate:     2, HistoryBurst: 60,
	}
}

// Unlimited lifts the rate limits, for measuring throughput (a 10 000
// message burst from one author is no human's rate). The bounds on
// stored history stay.
func Unlimited() Limits {
	l := DefaultLimits()
	l.AuthorRate = math.Inf(1)
	l.HistoryRate = math.Inf(1)
	return l
}

// WithLimits replaces DefaultLimits.
func WithLimits(l Limits) Option {
	return func(c *config) error {
		switch {
		case !(l.AuthorRate > 0) || l.AuthorBurst <= 0:
			return errors.New("limits: the author rate and burst must be positive")
		case l.CatchUpBytes <= 0 || l.CatchUpsPerRoom <= 0:
			return errors.New("limits: the catch-up bounds must be positive")
		case !(l.HistoryRate > 0) || l.HistoryBurst <= 0:
			return errors.New("limits: the history request rate and burst must be positive")
		}
		c.limits = l
		return nil
	}
}

// ErrTooFast means this node would send faster than its members accept
// (Limits.AuthorRate); nothing was sent.
var ErrTooFast = errors.New("sending too fast: wait a moment")

// roomPeer keys a per-room, per-peer limit.
type roomPeer struct {
	room string
	p    peer.ID
}

// limiters holds the buckets behind Limits.
type limiters struct {
	authors      *ratelimit.Keyed[roomPeer] // room messages per author and room
	catchUps     *ratelimit.Keyed[roomPeer] // catch-ups per room and serving peer
	catchUpBytes *ratelimit.Keyed[peer.ID]  // stored history bytes per serving peer
	history      *ratelimit.Keyed[peer.ID]  // history requests served per requester
}

func newLimiters(l Limits) *limiters {
	return &limiters{
		authors:      ratelimit.New[roomPeer](l.AuthorRate, l.AuthorBurst, 0),
		catchUps:     ratelimit.New[roomPeer](1/CatchUpEvery.Seconds(), l.CatchUpsPerRoom, 0),
		catchUpBytes: ratelimit.New[peer.ID](float64(l.CatchUpBytes)/time.Hour.Seconds(), l.CatchUpBytes, 0),
		history:      ratelimit.New[peer.ID](l.HistoryRate, l.HistoryBurst, 0),
	}
}

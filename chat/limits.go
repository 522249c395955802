package chat

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"sync"
	"time"

	pubsub "github.com/libp2p/go-libp2p-pubsub"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"golang.org/x/time/rate"

	"github.com/parley-chat/parley/chat/pb"
	"github.com/parley-chat/parley/internal/ratelimit"
)

// Limits bound what other peers can make this node do and store. Every
// limit is per peer (or per author), so one abuser cannot use up what
// honest peers need; the state behind them is bounded too.
type Limits struct {
	// AuthorRate and AuthorBurst bound one author's messages in one room,
	// per second and at once: far above what a person types. Members
	// ignore the excess (pubsub's ValidationIgnore: not forwarded, and no
	// penalty for the honest peers that relay it), and this node paces
	// its own messages a little under the rate rather than publish what
	// every member would drop. A rate of +Inf does not limit.
	AuthorRate  float64
	AuthorBurst int
	// CatchUpBytes bounds the new history one peer may add to the store
	// through catch-ups (as stored: the signed message, its text and nick,
	// the row): this much at once, refilled over an hour. The rest of what
	// it serves is not fetched (another member or a later catch-up brings
	// it). SQLite's write-ahead log adds up to ~4 MB until its next
	// checkpoint.
	CatchUpBytes int
	// CatchUpsPerRoom bounds the catch-ups from one peer in one room,
	// however often it leaves and comes back: this many at once, then
	// one per CatchUpEvery.
	CatchUpsPerRoom int
	// HistoryRate and HistoryBurst bound the history requests served to
	// one peer, per second and at once (a catch-up is up to 50 requests).
	HistoryRate  float64
	HistoryBurst int
	// DMRate and DMBurst bound the DMs accepted from one peer, per second
	// and at once. One over the rate is not acknowledged, so the sender
	// keeps it queued and retries later: nothing is lost, and a spammer
	// is slowed to the rate.
	DMRate  float64
	DMBurst int
	// InboxBytes bounds what the DMs stored from one peer may take on
	// disk; past it its DMs are refused (and stay queued on its side).
	InboxBytes int64
	// OutboxPerPeer bounds the DMs waiting in the outbox for one peer;
	// past it SendDM fails with ErrOutboxFull.
	OutboxPerPeer int
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
		DMRate: 10, DMBurst: 100,
		InboxBytes:    8 << 20,
		OutboxPerPeer: 10000,
	}
}

// Unlimited lifts the rate limits, for measuring throughput (a 10 000
// message burst from one author is no human's rate). The bounds on
// stored history stay.
func Unlimited() Limits {
	l := DefaultLimits()
	l.AuthorRate = math.Inf(1)
	l.HistoryRate = math.Inf(1)
	l.DMRate = math.Inf(1)
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
		case !(l.DMRate > 0) || l.DMBurst <= 0 || l.InboxBytes <= 0 || l.OutboxPerPeer <= 0:
			return errors.New("limits: the DM bounds must be positive")
		}
		c.limits = l
		return nil
	}
}

// Errors of the limits.
var (
	// ErrOutboxFull means SendDM refused a DM: too many to that peer are
	// still waiting (Limits.OutboxPerPeer).
	ErrOutboxFull = errors.New("outbox full")
	errDMTooFast  = errors.New("DMs from this peer come faster than the limit")
	errInboxFull  = errors.New("DMs from this peer take as much disk as one peer may")
)

// roomPeer keys a per-room, per-peer limit.
type roomPeer struct {
	room string
	p    peer.ID
}

// Presence announcements are limited on their own: a member announces
// itself at most every 250 ms, however many peers join at once.
const (
	presenceRate  = 5
	presenceBurst = 20
	// ownPaceShare is the share of the author rate this node's own
	// messages are paced at: the slack absorbs delivery jitter, so that
	// a member's bucket never runs dry on an honest sender's messages.
	ownPaceShare = 0.8
	// overRateQuiet is how long an author must stay under the rate before
	// its next excess is reported again: one notice per flood, even one
	// that pauses.
	overRateQuiet = time.Minute
)

// limiters holds the buckets behind Limits.
type limiters struct {
	cfg          Limits
	authors      *ratelimit.Keyed[roomPeer] // room messages per author and room
	presence     *ratelimit.Keyed[roomPeer] // presence announcements per author and room
	catchUps     *ratelimit.Keyed[roomPeer] // catch-ups per room and serving peer
	catchUpBytes *ratelimit.Keyed[peer.ID]  // stored history bytes per serving peer
	history      *ratelimit.Keyed[peer.ID]  // history requests served per requester
	roster       *ratelimit.Keyed[peer.ID]  // roster requests served per requester
	dms          *ratelimit.Keyed[peer.ID]  // DMs accepted per sender

	mu       sync.Mutex
	overRate map[roomPeer]time.Time       // authors over the rate, and when last
	inbox    map[peer.ID]int64            // bytes stored from each sender, as far as known
	dmOpen   map[peer.ID][]network.Stream // inbound DM streams open, per peer, oldest first
}

// maxDMStreamsPerPeer bounds the inbound DM streams one peer may hold open.
const maxDMStreamsPerPeer = 4

// openDMStream notes st, a new DM stream from p, and returns p's oldest
// stream if p now holds too many: the caller resets it.
func (l *limiters) openDMStream(p peer.ID, st network.Stream) (evict network.Stream) {
	l.mu.Lock()
	defer l.mu.Unlock()
	open := append(l.dmOpen[p], st)
	if len(open) > maxDMStreamsPerPeer {
		evict, open = open[0], open[1:]
	}
	l.dmOpen[p] = open
	return evict
}

func (l *limiters) closeDMStream(p peer.ID, st network.Stream) {
	l.mu.Lock()
	defer l.mu.Unlock()
	open := slices.DeleteFunc(l.dmOpen[p], func(s network.Stream) bool { return s == st })
	if len(open) == 0 {
		delete(l.dmOpen, p)
	} else {
		l.dmOpen[p] = open
	}
}

// admitDM says whether a DM of size bytes from p may be stored: within
// p's rate and inbox quota. A nil error charges it to p's quota.
func (s *Service) admitDM(p peer.ID, size int64) error {
	l := s.limits
	if !l.dms.Allow(p) {
		return errDMTooFast
	}
	l.mu.Lock()
	used, ok := l.inbox[p]
	l.mu.Unlock()
	if !ok {
		n, err := s.store.InboxBytes(p.String())
		if err != nil {
			return err
		}
		used = n
	}
	if used+size > l.cfg.InboxBytes {
		return errInboxFull
	}
	l.mu.Lock()
	if _, ok := l.inbox[p]; !ok && len(l.inbox) >= ratelimit.DefaultMaxKeys {
		clear(l.inbox) // read again from the store when needed
	}
	l.inbox[p] = used + size
	l.mu.Unlock()
	return nil
}

// uncharge gives back what admitDM charged for a DM that took no space.
func (l *limiters) uncharge(p peer.ID, size int64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if used, ok := l.inbox[p]; ok {
		l.inbox[p] = max(0, used-size)
	}
}

// refuseDM tells the user, once per flood, why p's DMs are refused.
func (s *Service) refuseDM(p peer.ID, why error) {
	if !s.limits.excess(roomPeer{p: p}, time.Now()) {
		return
	}
	s.log.Warn("refusing DMs", "peer", p, "why", why)
	text := fmt.Sprintf("Refusing DMs from %s for now: more than %g a second. They stay queued on their side.",
		s.displayName(p), s.cfg.limits.DMRate)
	if errors.Is(why, errInboxFull) {
		text = fmt.Sprintf("Refusing DMs from %s: the ones stored already take %s, as much as one peer may. They stay queued on their side.",
			s.displayName(p), megabytes(s.cfg.limits.InboxBytes))
	}
	s.emit(Notice{Text: text})
}

// ownPace paces this node's own messages in one room.
func (l *limiters) ownPace() *rate.Limiter {
	if math.IsInf(l.cfg.AuthorRate, 1) {
		return rate.NewLimiter(rate.Inf, l.cfg.AuthorBurst)
	}
	return rate.NewLimiter(rate.Limit(l.cfg.AuthorRate*ownPaceShare), l.cfg.AuthorBurst)
}

// excess records that author went over the rate in room at now and says
// whether this starts a new flood (worth one notice).
func (l *limiters) excess(key roomPeer, now time.Time) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	last, ok := l.overRate[key]
	if !ok && len(l.overRate) >= ratelimit.DefaultMaxKeys {
		clear(l.overRate) // forgetting only repeats a notice
	}
	l.overRate[key] = now
	return !ok || now.Sub(last) >= overRateQuiet
}

// overRateLately says whether author went over the rate in room within
// overRateQuiet of now: what it lost then was refused on purpose.
func (l *limiters) overRateLately(key roomPeer, now time.Time) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	last, ok := l.overRate[key]
	return ok && now.Sub(last) < overRateQuiet
}

// authorLimit is the rate check of room's validator: an author over the
// rate has the excess ignored (not forwarded, no penalty for the honest
// peers relaying it); one that sends its own flood to us directly is
// also penalised in its peer score, and the user hears of it once per
// flood.
func (s *Service) authorLimit(room string) func(*pubsub.Message, *pb.Envelope) pubsub.ValidationResult {
	return func(msg *pubsub.Message, env *pb.Envelope) pubsub.ValidationResult {
		author := msg.GetFrom()
		if author == s.h.ID() {
			return pubsub.ValidationAccept // paced before publishing
		}
		key := roomPeer{room, author}
		buckets := s.limits.authors
		if env.GetKind() != pb.Envelope_MESSAGE {
			buckets = s.limits.presence
		}
		if buckets.Allow(key) {
			return pubsub.ValidationAccept
		}
		now := time.Now()
		if msg.ReceivedFrom == author {
			s.scores.penalties.add(author, floodPenalty, now)
		}
		if s.limits.excess(key, now) {
			s.log.Warn("ignoring an author over the rate limit", "room", room, "author", author, "rate", s.cfg.limits.AuthorRate)
			s.emit(Notice{Text: fmt.Sprintf("Ignoring messages from %s in #%s: more than %g a second.",
				s.displayName(author), room, s.cfg.limits.AuthorRate)})
		}
		return pubsub.ValidationIgnore
	}
}

func newLimiters(l Limits) *limiters {
	return &limiters{
		cfg:          l,
		authors:      ratelimit.New[roomPeer](l.AuthorRate, l.AuthorBurst, 0),
		presence:     ratelimit.New[roomPeer](presenceRate, presenceBurst, 0),
		overRate:     make(map[roomPeer]time.Time),
		catchUps:     ratelimit.New[roomPeer](1/CatchUpEvery.Seconds(), l.CatchUpsPerRoom, 0),
		catchUpBytes: ratelimit.New[peer.ID](float64(l.CatchUpBytes)/time.Hour.Seconds(), l.CatchUpBytes, 0),
		history:      ratelimit.New[peer.ID](l.HistoryRate, l.HistoryBurst, 0),
		roster:       ratelimit.New[peer.ID](RosterRate, RosterBurst, 0),
		dms:          ratelimit.New[peer.ID](l.DMRate, l.DMBurst, 0),
		inbox:        make(map[peer.ID]int64),
		dmOpen:       make(map[peer.ID][]network.Stream),
	}
}

// megabytes formats n bytes for people: "8 MB", "0.2 MB".
func megabytes(n int64) string {
	return strings.TrimSuffix(fmt.Sprintf("%.1f", float64(n)/(1<<20)), ".0") + " MB"
}

package chat

import (
	pubsub "github.com/libp2p/go-libp2p-pubsub"
)

// Hooks observe the service's work, e.g. for metrics (internal/metrics).
// Every hook is optional and is called from the goroutine doing the work,
// so it must return quickly and never block.
type Hooks struct {
	// PubSubTracer sees every GossipSub event of the service's rooms
	// (messages published, delivered, rejected, duplicated, dropped).
	PubSubTracer pubsub.RawTracer
	// CaughtUp is told, after each catch-up from one peer, how many
	// history pages it fetched, how many messages they held and how many
	// of those were new here.
	CaughtUp func(room string, pages, messages, fresh int)
	// HistoryRequested is told of each history request this node sends
	// (one per catch-up page asked for, answered or not).
	HistoryRequested func(room string)
	// RosterFetched is told of each roster page this node fetched: how
	// many presences it held and how many of those were new here.
	RosterFetched func(room string, presences, fresh int)
}

// WithHooks installs observers of the service's work.
func WithHooks(h Hooks) Option {
	return func(c *config) error { c.hooks = h; return nil }
}

func (h Hooks) pubsubOptions() []pubsub.Option {
	if h.PubSubTracer == nil {
		return nil
	}
	return []pubsub.Option{pubsub.WithRawTracer(h.PubSubTracer)}
}

func (h Hooks) historyRequested(room string) {
	if h.HistoryRequested != nil {
		h.HistoryRequested(room)
	}
}

func (h Hooks) rosterFetched(room string, presences, fresh int) {
	if h.RosterFetched != nil {
		h.RosterFetched(room, presences, fresh)
	}
}

func (h Hooks) caughtUp(room string, pages, messages, fresh int) {
	if h.CaughtUp != nil && pages > 0 {
		h.CaughtUp(room, pages, messages, fresh)
	}
}

// EventLag says how far the event stream's readers are behind: the most
// events waiting in one subscriber's queue now, and how many subscribers
// were dropped so far because their queue filled up (ErrFellBehind).
func (s *Service) EventLag() (maxQueued int, fellBehind uint64) { return s.bus.lag() }

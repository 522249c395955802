// Package eventlog records events in the order they arrive, with when
// each arrived, and lets callers wait for one that matches. It is what the
// test and benchmark harnesses share: the events of a parley subprocess
// (internal/proctest) and of an in-process chat service (internal/testutil).
package eventlog

import (
	"context"
	"errors"
	"sync"
	"time"
)

// ErrEnded is returned by Wait when the log has ended (no more events
// will come) without the event waited for.
var ErrEnded = errors.New("no more events")

// Log is a list of events that grows. The zero value is not usable; make
// one with New.
type Log[E any] struct {
	start time.Time

	mu     sync.Mutex
	events []E
	at     []time.Duration // since start, one per event
	added  chan struct{}   // closed and replaced on every new event
	ended  chan struct{}
	end    sync.Once
}

// New returns an empty log whose arrival times count from start.
func New[E any](start time.Time) *Log[E] {
	return &Log[E]{start: start, added: make(chan struct{}), ended: make(chan struct{})}
}

// Start returns the time arrival times count from.
func (l *Log[E]) Start() time.Time { return l.start }

// Add appends e, which arrived at t.
func (l *Log[E]) Add(t time.Time, e E) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.events = append(l.events, e)
	l.at = append(l.at, t.Sub(l.start))
	close(l.added)
	l.added = make(chan struct{})
}

// End marks that no more events will come. It may be called more than once.
func (l *Log[E]) End() { l.end.Do(func() { close(l.ended) }) }

// Ended is closed by End.
func (l *Log[E]) Ended() <-chan struct{} { return l.ended }

// Events returns a copy of every event so far.
func (l *Log[E]) Events() []E {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]E(nil), l.events...)
}

// Len returns the number of events so far.
func (l *Log[E]) Len() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.events)
}

// Count returns how many events so far f holds for.
func (l *Log[E]) Count(f func(E) bool) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for _, e := range l.events {
		if f(e) {
			n++
		}
	}
	return n
}

// Wait waits for the n-th event (n ≥ 1) at index from or later for which
// f holds, and returns it, its index and when it arrived (since Start).
// Events already recorded count. It fails with ErrEnded once the log has
// ended without it, or with the cause of ctx once ctx is done.
func (l *Log[E]) Wait(ctx context.Context, from, n int, f func(E) bool) (E, int, time.Duration, error) {
	seen := 0
	for {
		l.mu.Lock()
		for ; from < len(l.events); from++ {
			if f(l.events[from]) {
				if seen++; seen >= n {
					e, at := l.events[from], l.at[from]
					l.mu.Unlock()
					return e, from, at, nil
				}
			}
		}
		added := l.added
		l.mu.Unlock()
		var zero E
		select {
		case <-added:
		case <-l.ended:
			// Events added before End are in the list: look once more.
			l.mu.Lock()
			more := from < len(l.events)
			l.mu.Unlock()
			if !more {
				return zero, 0, 0, ErrEnded
			}
		case <-ctx.Done():
			return zero, 0, 0, context.Cause(ctx)
		}
	}
}

package bridge

import "time"

// WithIdleSweep makes the bridge look for idle rooms every `every` and stop
// carrying those with no member connected for `after`, so that tests can
// run the sweep constantly.
func WithIdleSweep(every, after time.Duration) Option {
	return func(c *config) error { c.sweepEvery, c.idleAfter = every, after; return nil }
}

package chat

import (
	"errors"
	"sync"
)

// Errors a Subscription ends with.
var (
	// ErrFellBehind ends a subscription whose queue filled up: its reader
	// was too slow. The node never waits for a subscriber; the reader
	// resubscribes (After its last Seq, to get what it missed from the
	// replay buffer) or refetches state.
	ErrFellBehind = errors.New("event subscriber fell behind")
	// ErrGap means the events after the asked-for sequence number are no
	// longer in the replay buffer: refetch state instead.
	ErrGap = errors.New("events asked for are no longer in the replay buffer")
)

// Defaults of the event bus.
const (
	DefaultSubscriberBuffer = 1024 // events queued per subscriber
	replayEvents            = 4096 // recent events kept for resuming subscribers
)

// Stamped is an event with its place in the service's event sequence
// (1, 2, 3, ... for the lifetime of the Service). A subscriber that
// reconnects asks for what came after the last Seq it saw.
type Stamped struct {
	Seq   uint64
	Event Event
}

// Subscription is one reader of the service's events, with its own
// bounded queue.
type Subscription struct {
	bus *bus
	ch  chan Stamped

	mu  sync.Mutex
	err error // why ch was closed: nil (service closed or Close), ErrFellBehind
}

// C delivers the events in order. It is closed when the service closes,
// when Close is called, or when the subscriber fell behind (see Err).
func (s *Subscription) C() <-chan Stamped { return s.ch }

// Err tells why C was closed: ErrFellBehind, or nil.
func (s *Subscription) Err() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.err
}

// Close ends the subscription; C is closed.
func (s *Subscription) Close() { s.bus.remove(s, nil) }

// SubscribeOption configures a Subscription.
type SubscribeOption func(*subConfig) error

type subConfig struct {
	buffer int
	after  uint64
	resume bool
}

// WithBuffer sets how many events may wait for the subscriber before it
// is dropped with ErrFellBehind (default DefaultSubscriberBuffer).
func WithBuffer(n int) SubscribeOption {
	return func(c *subConfig) error {
		if n <= 0 {
			return errors.New("subscribe: buffer must be positive")
		}
		c.buffer = n
		return nil
	}
}

// After starts the subscription with the buffered events whose Seq is
// greater than seq (a reconnecting reader's last one), then goes on live.
// Subscribe fails with ErrGap when some of them are gone.
func After(seq uint64) SubscribeOption {
	return func(c *subConfig) error { c.after, c.resume = seq, true; return nil }
}

// bus fans events out to subscribers. Publishing never blocks: a
// subscriber whose queue is full is dropped, not waited for, so one stuck
// front end (a frozen browser tab, a paused pipe) never slows the node or
// the other front ends.
type bus struct {
	mu     sync.Mutex
	seq    uint64
	ring   []Stamped // the last replayEvents events, oldest first once full
	head   int       // index of the oldest event once the ring is full
	subs   map[*Subscription]struct{}
	closed bool
	behind uint64 // subscribers dropped with ErrFellBehind, ever
}

func newBus() *bus { return &bus{subs: make(map[*Subscription]struct{})} }

func (b *bus) subscribe(opts ...SubscribeOption) (*Subscription, error) {
	cfg := subConfig{buffer: DefaultSubscriberBuffer}
	for _, o := range opts {
		if err := o(&cfg); err != nil {
			return nil, err
		}
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	var replay []Stamped
	if cfg.resume {
		oldest := b.seq + 1 - uint64(len(b.ring))
		if cfg.after+1 < oldest || cfg.after > b.seq {
			return nil, ErrGap
		}
		for i := range b.ring {
			ev := b.ring[(b.head+i)%len(b.ring)]
			if ev.Seq > cfg.after {
				replay = append(replay, ev)
			}
		}
	}
	sub := &Subscription{bus: b, ch: make(chan Stamped, cfg.buffer+len(replay))}
	for _, ev := range replay {
		sub.ch <- ev
	}
	if b.closed {
		close(sub.ch)
		return sub, nil
	}
	b.subs[sub] = struct{}{}
	return sub, nil
}

// publish stamps ev and queues it for every subscriber.
func (b *bus) publish(ev Event) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return
	}
	b.seq++
	st := Stamped{Seq: b.seq, Event: ev}
	if len(b.ring) < replayEvents {
		b.ring = append(b.ring, st)
	} else {
		b.ring[b.head] = st
		b.head = (b.head + 1) % len(b.ring)
	}
	for sub := range b.subs {
		select {
		case sub.ch <- st:
		default:
			b.removeLocked(sub, ErrFellBehind)
		}
	}
}

// lastSeq is the Seq of the newest event.
func (b *bus) lastSeq() uint64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.seq
}

func (b *bus) remove(sub *Subscription, err error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.removeLocked(sub, err)
}

func (b *bus) removeLocked(sub *Subscription, err error) {
	if _, ok := b.subs[sub]; !ok {
		return
	}
	delete(b.subs, sub)
	if err == ErrFellBehind {
		b.behind++
	}
	sub.mu.Lock()
	sub.err = err
	sub.mu.Unlock()
	close(sub.ch)
}

func (b *bus) close() {
	b.mu.Lock()
	defer b.mu.Unlock()
	for sub := range b.subs {
		b.removeLocked(sub, nil)
	}
	b.closed = true
}

func (b *bus) subscribers() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.subs)
}

// lag returns the most events waiting in any subscriber's queue and how
// many subscribers fell behind so far.
func (b *bus) lag() (maxQueued int, fellBehind uint64) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for sub := range b.subs {
		maxQueued = max(maxQueued, len(sub.ch))
	}
	return maxQueued, b.behind
}

// Package ratelimit keeps one token bucket per key (a peer, an author, an
// address) in bounded memory, for the limits Parley puts on what other
// peers may make it do.
//
// The state is bounded: past MaxKeys buckets the least recently used one
// is forgotten. Forgetting a bucket only ever lets more through (a new
// bucket starts full), so the bound costs a little precision under a
// Sybil flood, never an honest peer's access.
package ratelimit

import (
	"container/list"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// DefaultMaxKeys bounds the buckets of a Keyed unless New is told otherwise.
const DefaultMaxKeys = 4096

// Keyed is a set of token buckets, one per key, each refilled at the same
// rate up to the same burst. It is safe for concurrent use.
type Keyed[K comparable] struct {
	limit   rate.Limit
	burst   int
	maxKeys int

	mu    sync.Mutex
	byKey map[K]*list.Element // of *entry[K]
	lru   list.List           // most recently used first
}

type entry[K comparable] struct {
	key K
	l   *rate.Limiter
}

// New returns buckets that refill at perSecond tokens a second up to
// burst, for at most maxKeys keys (DefaultMaxKeys if maxKeys <= 0). A rate
// of rate.Inf never limits.
func New[K comparable](perSecond float64, burst, maxKeys int) *Keyed[K] {
	if maxKeys <= 0 {
		maxKeys = DefaultMaxKeys
	}
	return &Keyed[K]{limit: rate.Limit(perSecond), burst: burst, maxKeys: maxKeys, byKey: make(map[K]*list.Element)}
}

// Allow takes one token from key's bucket, if it has one.
func (k *Keyed[K]) Allow(key K) bool { return k.AllowN(key, time.Now(), 1) }

// AllowN takes n tokens from key's bucket at now, if it has them all.
func (k *Keyed[K]) AllowN(key K, now time.Time, n int) bool {
	if k.limit == rate.Inf {
		return true
	}
	return k.bucket(key).AllowN(now, n)
}

// Tokens is how many tokens key's bucket holds at now.
func (k *Keyed[K]) Tokens(key K, now time.Time) float64 {
	if k.limit == rate.Inf {
		return float64(k.burst)
	}
	return k.bucket(key).TokensAt(now)
}

// Len is the number of buckets kept.
func (k *Keyed[K]) Len() int {
	k.mu.Lock()
	defer k.mu.Unlock()
	return len(k.byKey)
}

func (k *Keyed[K]) bucket(key K) *rate.Limiter {
	k.mu.Lock()
	defer k.mu.Unlock()
	if e, ok := k.byKey[key]; ok {
		k.lru.MoveToFront(e)
		return e.Value.(*entry[K]).l
	}
	if len(k.byKey) >= k.maxKeys {
		old := k.lru.Back()
		k.lru.Remove(old)
		delete(k.byKey, old.Value.(*entry[K]).key)
	}
	l := rate.NewLimiter(k.limit, k.burst)
	k.byKey[key] = k.lru.PushFront(&entry[K]{key: key, l: l})
	return l
}

// Take takes n tokens from key's bucket at now whether it has them or not:
// a debt that later refills pay back first. Use it to charge for work
// already done (bytes that were stored), and Tokens to decide before.
func (k *Keyed[K]) Take(key K, now time.Time, n int) {
	if k.limit == rate.Inf || n <= 0 {
		return
	}
	k.bucket(key).ReserveN(now, min(n, k.burst))
}

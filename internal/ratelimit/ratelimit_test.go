package ratelimit

import (
	"fmt"
	"testing"
	"time"

	"golang.org/x/time/rate"
)

func TestKeyedLimitsEachKeyOnItsOwn(t *testing.T) {
	k := New[string](1, 3, 0)
	now := time.Now()
	for i := range 3 {
		if !k.AllowN("a", now, 1) {
			t.Fatalf("a's token %d refused within the burst", i)
		}
	}
	if k.AllowN("a", now, 1) {
		t.Error("a over its burst allowed")
	}
	if !k.AllowN("b", now, 1) {
		t.Error("b refused because of a")
	}
	if !k.AllowN("a", now.Add(time.Second), 1) {
		t.Error("a refused after a second's refill")
	}
}

func TestKeyedForgetsTheLeastRecentlyUsed(t *testing.T) {
	k := New[int](1, 1, 3)
	now := time.Now()
	for i := range 3 {
		k.AllowN(i, now, 1) // 0, 1, 2 spent
	}
	k.AllowN(0, now, 1) // 0 used again: 1 is now the oldest
	k.AllowN(3, now, 1) // evicts 1
	if k.Len() != 3 {
		t.Fatalf("%d buckets kept, want 3", k.Len())
	}
	if k.AllowN(0, now, 1) {
		t.Error("0 was forgotten though recently used")
	}
	if !k.AllowN(1, now, 1) {
		t.Error("1 was kept though least recently used")
	}
}

func TestKeyedStaysBoundedUnderManyKeys(t *testing.T) {
	k := New[string](10, 10, 100)
	for i := range 10_000 {
		k.Allow(fmt.Sprint("sybil-", i))
	}
	if k.Len() != 100 {
		t.Errorf("%d buckets after 10,000 keys, want the bound 100", k.Len())
	}
}

func TestInfNeverLimits(t *testing.T) {
	k := New[string](float64(rate.Inf), 1, 0)
	for range 1000 {
		if !k.Allow("a") {
			t.Fatal("an infinite rate refused")
		}
	}
	if k.Len() != 0 {
		t.Errorf("an infinite rate kept %d buckets", k.Len())
	}
}

func TestTakeRunsIntoDebt(t *testing.T) {
	k := New[string](10, 10, 0)
	now := time.Now()
	k.Take("a", now, 10)
	k.Take("a", now, 10) // 10 tokens owed
	if got := k.Tokens("a", now); got > -9.9 {
		t.Errorf("after taking 20 of 10: %v tokens, want about -10", got)
	}
	if k.Tokens("a", now.Add(time.Second)) > 0.1 {
		t.Error("a second of refill did more than pay the debt")
	}
	if k.Tokens("a", now.Add(2*time.Second)) < 9.9 {
		t.Error("two seconds of refill did not fill the bucket again")
	}
}

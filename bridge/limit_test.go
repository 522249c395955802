package bridge

import (
	"testing"

	"github.com/libp2p/go-libp2p/core/peer"
	"golang.org/x/time/rate"
)

func TestRateLimitPerAuthor(t *testing.T) {
	c := &carried{limiters: make(map[peer.ID]*rate.Limiter)}
	const burst = 3
	for i := 0; i < burst; i++ {
		if !c.allow("alice", 1e-9, burst) {
			t.Fatalf("message %d of alice refused within the burst", i+1)
		}
	}
	if c.allow("alice", 1e-9, burst) {
		t.Error("alice's message past the burst was allowed")
	}
	if !c.allow("bob", 1e-9, burst) {
		t.Error("bob was limited by alice's rate")
	}
}

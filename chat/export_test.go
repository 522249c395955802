package chat

import (
	"fmt"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
)

// OutboxTracked counts the peers the DM outbox keeps state for.
func OutboxTracked(s *Service) int { return s.outbox.tracked() }

// SetHoldFor changes how long a line waits for its sender's previous one;
// the returned func restores it.
func SetHoldFor(d time.Duration) (restore func()) {
	old := holdNanos.Swap(int64(d))
	return func() { holdNanos.Store(old) }
}

// SetResendAfter changes how long a member that joined has to catch up on
// messages no one received before they are sent again.
func SetResendAfter(d time.Duration) (restore func()) {
	old := resendNanos.Swap(int64(d))
	return func() { resendNanos.Store(old) }
}

// OutboxState says what the outbox keeps for p (for a failing test's message).
func OutboxState(s *Service, p peer.ID) string {
	o := s.outbox
	o.mu.Lock()
	defer o.mu.Unlock()
	c := o.conns[p]
	flushing := c != nil && c.flushing
	return fmt.Sprintf("conn %t (flushing %t), pending %d, connectedness %v", c != nil, flushing, o.pending[p], s.h.Network().Connectedness(p))
}

package chat

import (
	"sync/atomic"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
)

// A message published while the room has no known member (no peer, not
// even a relay, is subscribed) reaches nobody: GossipSub sends only to
// known members. Such a message is shown as not received yet and kept
// until someone has it: a member that catches up from this node gets it
// as history (the history server tells), a relay gets it sent again at
// once (relays do not catch up), and a member that did not catch up
// within resendAfter of joining gets it sent again. A Received event says
// who has it.

// resendNanos is resendAfter in nanoseconds (atomic, for tests).
var resendNanos atomic.Int64

func init() { resendNanos.Store(int64(5 * time.Second)) }

func resendAfter() time.Duration { return time.Duration(resendNanos.Load()) }

// Bounds of the messages kept for resending.
const (
	maxUnreceived = 256
	// unreceivedFor is how long one is kept: members accept live messages
	// up to a day old (room.MaxMessageAge).
	unreceivedFor = 23 * time.Hour
)

// Received reports that this node's messages IDs in Room, which no one
// had received, reached By (a member, or a relay: Role) once it joined.
type Received struct {
	Room string
	IDs  []string
	By   peer.ID
	Nick string // By's nick, when known
	Role string
}

func (Received) isEvent() {}

type unreceivedMsg struct {
	id   string
	data []byte // the encoded envelope, as published
	at   time.Time
}

// noteUnreceived keeps an own message published with no member to get it.
func (r *room) noteUnreceived(id string, data []byte) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.unreceived) >= maxUnreceived {
		r.unreceived = r.unreceived[1:] // the oldest: members catch up from history
	}
	r.unreceived = append(r.unreceived, unreceivedMsg{id: id, data: data, at: time.Now()})
}

// isUnreceived reports whether own message id has reached no one yet.
func (r *room) isUnreceived(id string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, u := range r.unreceived {
		if u.id == id {
			return true
		}
	}
	return false
}

// memberJoined hands p, who just joined the room, the messages no one
// received: a relay at once; a member only if it did not catch up on them
// from this node within resendAfter (a member that just joined the room
// does, and then sees them as history, within its --history).
func (r *room) memberJoined(p peer.ID, role string) {
	r.mu.Lock()
	none := len(r.unreceived) == 0
	r.mu.Unlock()
	if none {
		return
	}
	if role == RoleRelay {
		r.resendUnreceived(p, role)
		return
	}
	if !r.s.track() {
		return
	}
	go func() {
		defer r.s.wg.Done()
		t := time.NewTimer(resendAfter())
		defer t.Stop()
		select {
		case <-r.ctx.Done():
		case <-t.C:
			r.resendUnreceived(p, role)
		}
	}()
}

// resendUnreceived sends the messages no one received to the room, which
// p joined, and says that they reached p.
func (r *room) resendUnreceived(p peer.ID, role string) {
	r.mu.Lock()
	pending := r.unreceived
	r.unreceived = nil
	r.mu.Unlock()
	var ids []string
	for _, u := range pending {
		if time.Since(u.at) > unreceivedFor {
			continue
		}
		if err := r.topic.Publish(r.ctx, u.data); err != nil {
			r.s.log.Debug("resend a message no one received", "room", r.name, "err", err)
			continue
		}
		ids = append(ids, u.id)
	}
	if len(ids) > 0 {
		r.s.emit(Received{Room: r.name, IDs: ids, By: p, Nick: r.s.nicks.get(p), Role: role})
	}
}

// historyServed notes which of the messages no one had received p now has
// from this node's history.
func (s *Service) historyServed(room string, p peer.ID, ids []string) {
	r, ok := s.rooms.byWire(room)
	if !ok {
		return
	}
	served := make(map[string]bool, len(ids))
	for _, id := range ids {
		served[id] = true
	}
	var got []string
	r.mu.Lock()
	kept := r.unreceived[:0]
	for _, u := range r.unreceived {
		if served[u.id] {
			got = append(got, u.id)
		} else {
			kept = append(kept, u)
		}
	}
	r.unreceived = kept
	r.mu.Unlock()
	if len(got) > 0 {
		role, _ := s.roles.known(p)
		s.emit(Received{Room: room, IDs: got, By: p, Nick: s.nicks.get(p), Role: role})
	}
}

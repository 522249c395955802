package chat

import (
	"cmp"
	"errors"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/parley-chat/parley/chat/protocol/history"
	"github.com/parley-chat/parley/chat/storage"
)

// Catch-up bounds (and Limits.CatchUpBytes, Limits.CatchUpsPerRoom).
const (
	maxCatchUpPages = 50 // 10 000 messages per catch-up
	catchUpMargin   = 5 * time.Minute
)

// catchUpFrom fetches what r's store lacks from p, after cursor from (nil:
// a little before the newest stored message), verifies each message,
// stores it and shows the newest show of what was new as backfill, then a
// HistoryShown saying how many more it stored. A peer that answers with
// anything forged or malformed is not asked again by this catch-up. What
// it stores waits in r.order until then; a live line that follows one of
// those lines shows it first (order.go).
func (r *room) catchUpFrom(p peer.ID, from *storage.Cursor, show int) {
	s := r.s
	latest, ok, err := s.store.LatestRoomMessage(r.wire)
	if err != nil {
		s.log.Warn("catch up", "room", r.name, "err", err)
		return
	}
	cur := storage.Cursor{}
	if from != nil {
		cur = *from
	} else if ok {
		// Messages sent a little before our newest may still be missing
		// (clocks differ, delivery is not ordered): start a margin earlier.
		cur = storage.Cursor{SentAt: latest.SentAt - catchUpMargin.Milliseconds()}
	} else if s.cfg.retention.MaxAge > 0 {
		cur = storage.Cursor{SentAt: time.Now().Add(-s.cfg.retention.MaxAge).UnixMilli()}
	}
	// What is older than the retention window would be pruned at once:
	// not worth a byte of anyone's budget.
	var oldest int64
	if s.cfg.retention.MaxAge > 0 {
		oldest = time.Now().Add(-s.cfg.retention.MaxAge).UnixMilli()
	}
	got, fresh, pages := 0, 0, 0
	// What is new is stored page by page; the newest cfg.history of it
	// are shown once the catch-up is done (the rest only counted).
	b := r.order.startCatchUp(show)
	start := time.Now()
pages: // stops early on a failure; what was stored is shown all the same
	for page := 0; page < maxCatchUpPages && r.ctx.Err() == nil; page++ {
		if s.limits.catchUpBytes.Tokens(p, time.Now()) <= 0 {
			s.log.Warn("catch up: peer served as much history as one peer may for now; fetching the rest later or from others",
				"room", r.name, "peer", p, "budget", s.cfg.limits.CatchUpBytes)
			break
		}
		s.cfg.hooks.historyRequested(r.name)
		resp, err := history.Fetch(r.ctx, s.h, p, r.wire, cur)
		if err != nil {
			s.log.Debug("catch up: history request failed", "room", r.name, "peer", p, "err", err)
			break
		}
		pages++
		held := r.held(resp.GetMessages())
		// Verify the whole page before storing any of it, then store it
		// in one transaction.
		page := make([]storage.RoomMessage, 0, len(resp.GetMessages()))
		for i, raw := range resp.GetMessages() {
			if c, ok := held[i]; ok {
				// Stored already: nothing to check or store, but the
				// page must still move on, by the stored position.
				if !before(cur, c) {
					s.log.Info("catch up: peer sent history out of order; ignoring it", "room", r.name, "peer", p)
					break pages
				}
				cur = c
				got++
				continue
			}
			m, err := history.VerifyOpen(raw, r.wire, time.Now(), r.open)
			if err == nil && !before(cur, m.Cursor()) {
				err = errors.New("history out of order: a message at or before the position asked for")
			}
			if err == nil && m.SentAt < oldest {
				err = errors.New("history older than this node keeps")
			}
			if err != nil {
				s.log.Info("catch up: peer sent invalid history; ignoring it", "room", r.name, "peer", p, "err", err)
				break pages
			}
			cur = m.Cursor()
			page = append(page, m)
		}
		if len(page) > 0 {
			got += len(page)
			added := r.order.caughtUp(b, page)
			size := 0
			for _, m := range added {
				size += storedSize(m)
			}
			s.limits.catchUpBytes.Take(p, time.Now(), size)
			fresh += len(added)
		}
		if !resp.GetMore() || len(resp.GetMessages()) == 0 {
			break
		}
	}
	s.cfg.hooks.caughtUp(r.name, pages, got, fresh)
	shown := r.order.endCatchUp(b) // and HistoryShown
	if fresh > 0 {
		s.log.Info("caught up", "room", r.name, "peer", p, "new", fresh, "shown", shown, "received", got, "took", time.Since(start).Round(time.Millisecond))
	}
}

// held returns the stored positions of those of a page's messages that r
// holds already, by index in the page. Signature checks are most of a
// catch-up's cost, and a repair after a gap (or a join during a burst)
// is sent mostly lines already here. A failed look-up costs only those
// checks.
func (r *room) held(page [][]byte) map[int]storage.Cursor {
	ids := make([]string, 0, len(page))
	for _, raw := range page {
		id, err := history.MessageID(raw)
		if err != nil {
			id = "" // not looked up: checked in full below, and refused there
		}
		ids = append(ids, id)
	}
	stored, err := r.s.store.StoredRoomMessages(r.wire, ids)
	if err != nil {
		r.s.log.Warn("catch up: look up stored messages", "room", r.name, "err", err)
		return nil
	}
	held := make(map[int]storage.Cursor, len(stored))
	for i, id := range ids {
		if c, ok := stored[id]; ok && id != "" {
			held[i] = c
		}
	}
	return held
}

// before reports whether a comes before b in a room's history order.
func before(a, b storage.Cursor) bool {
	if c := cmp.Compare(a.SentAt, b.SentAt); c != 0 {
		return c < 0
	}
	if c := cmp.Compare(a.Lamport, b.Lamport); c != 0 {
		return c < 0
	}
	return a.ID < b.ID
}

// storedSize estimates what m takes in the store: the signed message,
// its text and nick again in their own columns, the row and its index
// entries.
func storedSize(m storage.RoomMessage) int {
	return len(m.Raw) + len(m.Text) + len(m.Nick) + len(m.ID) + 128
}

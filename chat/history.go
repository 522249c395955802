package chat

import (
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/parley-chat/parley/chat/protocol/history"
	"github.com/parley-chat/parley/chat/storage"
)

// Catch-up bounds.
const (
	maxCatchUpPages = 50 // 10 000 messages per catch-up
	catchUpMargin   = 5 * time.Minute
	catchUpEvery    = time.Minute // per room and peer at most
)

// catchUp fetches what r's store lacks from p, verifies each message,
// stores it and shows the newest cfg.history of what was new as backfill,
// then a HistoryShown saying how many more it stored. A peer that answers
// with anything forged or malformed is not asked again by this catch-up.
func (r *room) catchUp(p peer.ID) {
	s := r.s
	latest, ok, err := s.store.LatestRoomMessage(r.name)
	if err != nil {
		s.log.Warn("catch up", "room", r.name, "err", err)
		return
	}
	cur := storage.Cursor{}
	if ok {
		// Messages sent a little before our newest may still be missing
		// (clocks differ, delivery is not ordered): start a margin earlier.
		cur = storage.Cursor{SentAt: latest.SentAt - catchUpMargin.Milliseconds()}
	} else if s.cfg.retention.MaxAge > 0 {
		cur = storage.Cursor{SentAt: time.Now().Add(-s.cfg.retention.MaxAge).UnixMilli()}
	}
	got, fresh, pages := 0, 0, 0
	// What is new is stored page by page; the newest cfg.history of it
	// are shown once the catch-up is done (the rest only counted).
	var show []storage.RoomMessage
	start := time.Now()
pages: // stops early on a failure; what was stored is shown all the same
	for page := 0; page < maxCatchUpPages && r.ctx.Err() == nil; page++ {
		resp, err := history.Fetch(r.ctx, s.h, p, r.name, cur)
		if err != nil {
			s.log.Debug("catch up: history request failed", "room", r.name, "peer", p, "err", err)
			break
		}
		pages++
		// Verify the whole page before storing any of it, then store it
		// in one transaction.
		page := make([]storage.RoomMessage, 0, len(resp.GetMessages()))
		for _, raw := range resp.GetMessages() {
			m, err := history.Verify(raw, r.name, time.Now())
			if err != nil {
				s.log.Info("catch up: peer sent invalid history; ignoring it", "room", r.name, "peer", p, "err", err)
				break pages
			}
			page = append(page, m)
		}
		if len(page) > 0 {
			got += len(page)
			cur = page[len(page)-1].Cursor()
			added := r.deliver(page)
			fresh += len(added)
			show = append(show, added...)
			if keep := s.cfg.history; len(show) > keep {
				show = append(show[:0], show[len(show)-keep:]...)
			}
		}
		if !resp.GetMore() || len(resp.GetMessages()) == 0 {
			break
		}
	}
	for _, m := range show {
		s.emit(r.event(m, true))
	}
	s.cfg.hooks.caughtUp(r.name, pages, got, fresh)
	if fresh > 0 {
		s.emit(HistoryShown{Room: r.name, Shown: len(show), Hidden: fresh - len(show), CaughtUp: true})
		s.log.Info("caught up", "room", r.name, "peer", p, "new", fresh, "received", got, "took", time.Since(start).Round(time.Millisecond))
	}
}

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
// stores it and shows it as backfill. A peer that answers with anything
// forged or malformed is not asked again by this catch-up.
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
	got, shown := 0, 0
	start := time.Now()
	for page := 0; page < maxCatchUpPages && r.ctx.Err() == nil; page++ {
		resp, err := history.Fetch(r.ctx, s.h, p, r.name, cur)
		if err != nil {
			s.log.Debug("catch up: history request failed", "room", r.name, "peer", p, "err", err)
			return
		}
		// Verify the whole page before storing any of it, then store it
		// in one transaction.
		page := make([]storage.RoomMessage, 0, len(resp.GetMessages()))
		for _, raw := range resp.GetMessages() {
			m, err := history.Verify(raw, r.name, time.Now())
			if err != nil {
				s.log.Info("catch up: peer sent invalid history; ignoring it", "room", r.name, "peer", p, "err", err)
				return
			}
			page = append(page, m)
		}
		if len(page) > 0 {
			got += len(page)
			cur = page[len(page)-1].Cursor()
			shown += r.deliver(page)
		}
		if !resp.GetMore() || len(resp.GetMessages()) == 0 {
			break
		}
	}
	if shown > 0 {
		s.log.Info("caught up", "room", r.name, "peer", p, "new", shown, "received", got, "took", time.Since(start).Round(time.Millisecond))
	}
}

package chat

import (
	"context"
	"math/rand/v2"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/parley-chat/parley/chat/content"
	"github.com/parley-chat/parley/chat/protocol/roster"
)

// Who is in a room (their nicks, for /dm by nick before they speak) is
// learned from the members this node meets, not from room-wide replies
// (chat/protocol/roster). A neighbour met is asked at once for the
// presences it holds. A round that brings news is followed, rosterEvery
// later, by one that asks every neighbour that has not fetched this
// node's book to its end (each request says how far the book got, so
// the neighbour asks back); a round with nothing to tell asks one random
// neighbour, the pause doubling after each round that brings nothing;
// past maxRosterEvery the rounds rest until the next neighbour is met or
// one says it holds presences this node has not fetched. Each exchange
// carries only what reached the server since the requester last asked
// it, so news crosses a link within a round or two and a room costs a few
// short exchanges per link, not a presence per member per newcomer.
const (
	rosterEvery    = time.Second
	maxRosterEvery = 2 * time.Minute
	// RosterRate and RosterBurst bound the roster requests served to one
	// peer (its rounds, plus one per room it meets this node in, plus
	// asking back): by members and relays alike.
	RosterRate  = 2
	RosterBurst = 30
)

// rosterCursor is where this node got to in a neighbour's roster book.
type rosterCursor struct{ book, next uint64 }

// askRoster has p asked for its roster soon: a neighbour just met, or one
// whose book reached further than this node has fetched.
func (r *room) askRoster(p peer.ID) {
	r.mu.Lock()
	if len(r.rosterDue) < maxRemembered {
		r.rosterDue[p] = struct{}{}
	}
	r.mu.Unlock()
	select {
	case r.rosterWake <- struct{}{}:
	default:
	}
}

// rosterAhead is told, by the roster server, the position of a
// requester's own book: if this node has not fetched that far, it asks.
func (r *room) rosterAhead(p peer.ID, book, seq uint64) {
	if book == 0 {
		return
	}
	r.mu.Lock()
	c := r.rosterAt[p]
	behind := c.book != book || c.next < seq
	r.mu.Unlock()
	if behind {
		r.askRoster(p)
	}
}

// rosterLoop runs the room's roster exchanges, one at a time, until the
// room is left.
func (r *room) rosterLoop() {
	defer r.s.wg.Done()
	gap := rosterEvery
	round := time.NewTimer(gap)
	defer round.Stop()
	for {
		news := false
		select {
		case <-r.ctx.Done():
			return
		case <-r.rosterWake:
			r.mu.Lock()
			due := make([]peer.ID, 0, len(r.rosterDue))
			for p := range r.rosterDue {
				due = append(due, p)
			}
			clear(r.rosterDue)
			r.mu.Unlock()
			for _, p := range due {
				news = r.fetchRoster(p) > 0 || news
			}
			if !news {
				continue // the rounds go on (or rest) as they were
			}
		case <-round.C:
			news = r.rosterRound()
		}
		// News: the rounds go on (again) at their quickest, so that
		// what this node learned reaches the neighbours that lack it
		// (they ask back: rosterAhead). Nothing new: they slow down,
		// then rest.
		if news {
			gap = rosterEvery
		} else {
			gap *= 2
		}
		if gap <= maxRosterEvery {
			round.Reset(gap) // re-armed if it was armed
		}
	}
}

// rosterRound asks the neighbours that have not fetched this node's book
// to its end (they ask back), or one random neighbour if all have; it
// reports whether that brought news.
func (r *room) rosterRound() bool {
	peers := r.topic.ListPeers()
	news, asked := false, false
	for _, p := range peers {
		if r.roster.Behind(p) {
			news = r.fetchRoster(p) > 0 || news
			asked = true
		}
	}
	if !asked && len(peers) > 0 {
		news = r.fetchRoster(peers[rand.IntN(len(peers))]) > 0
	}
	return news
}

// fetchRoster asks p for the presences that reached its book since this
// node last asked, verifies the ones this node lacks, learns their nicks
// and keeps them (to serve on). It returns how many were new.
func (r *room) fetchRoster(p peer.ID) int {
	fresh := 0
	for range 8 { // pages: 4,096 presences at most
		r.mu.Lock()
		c := r.rosterAt[p]
		r.mu.Unlock()
		ctx, cancel := context.WithTimeout(r.ctx, roster.Timeout)
		resp, err := roster.Fetch(ctx, r.s.h, p, r.wire, c.book, c.next, r.roster)
		cancel()
		if err != nil {
			r.s.log.Debug("roster request failed", "room", r.name, "peer", p, "err", err)
			break
		}
		n, err := r.takeRoster(p, resp.GetPresences())
		r.s.cfg.hooks.rosterFetched(r.name, len(resp.GetPresences()), n)
		fresh += n
		if err != nil {
			r.s.log.Info("roster: peer sent an invalid presence; ignoring its roster", "room", r.name, "peer", p, "err", err)
			break
		}
		r.mu.Lock()
		if len(r.rosterAt) >= maxRemembered {
			clear(r.rosterAt) // forgetting only costs a full roster next time
		}
		r.rosterAt[p] = rosterCursor{book: resp.GetBook(), next: resp.GetNext()}
		r.mu.Unlock()
		if !resp.GetMore() {
			break
		}
	}
	if fresh > 0 {
		r.s.log.Debug("roster", "room", r.name, "peer", p, "new", fresh)
	}
	return fresh
}

// takeRoster verifies the presences of one roster page from p that this
// node lacks, learns their nicks and keeps them; it stops at the first one
// that is not valid. It returns how many were new.
func (r *room) takeRoster(p peer.ID, presences [][]byte) (int, error) {
	fresh := 0
	now := time.Now()
	var seen []sighting
	defer func() { r.s.sawNicks(seen) }()
	for _, raw := range presences {
		m, err := roster.Decode(raw)
		if err != nil {
			return fresh, err
		}
		if r.roster.Has(roster.Key(m)) {
			continue // held already: no signature to check
		}
		pr, err := roster.Verify(m, r.wire, now, r.open)
		if err != nil {
			return fresh, err
		}
		if pr.Author == r.s.h.ID() || !r.roster.Add(pr.Author, pr.SentAt, pr.Key, raw, p) {
			continue
		}
		fresh++
		nick := content.PeerNick(pr.Nick)
		seen = append(seen, sighting{pr.Author, nick, time.UnixMilli(min(pr.SentAt, now.UnixMilli())), sentTime(pr.SentAt)})
		r.meet(pr.Author)
	}
	return fresh, nil
}

// rosterServer serves the rooms' roster books to their members.
func (s *Service) rosterServer() roster.Server {
	return roster.Server{
		Book: func(wire string) (*roster.Book, bool) {
			r, ok := s.rooms.byWire(wire)
			if !ok {
				return nil, false
			}
			return r.roster, true
		},
		Allowed: s.servesHistoryTo,
		Admit:   s.limits.roster.Allow,
		Ahead: func(wire string, p peer.ID, book, seq uint64) {
			if r, ok := s.rooms.byWire(wire); ok {
				r.rosterAhead(p, book, seq)
			}
		},
	}
}

package store

import (
	"database/sql"
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/parley-chat/parley/chat/storage"
)

// dmUnion is every DM with a peer, received or sent, with its state.
const dmUnion = `
	SELECT sender AS peer, id, nick, body, sent_at_ms, 0 AS own, 'received' AS state FROM dm_inbox
	UNION ALL
	SELECT recipient, id, nick, body, sent_at_ms, 1,
		CASE WHEN delivered_at_ms IS NOT NULL THEN 'delivered'
		     WHEN failed IS NOT NULL THEN 'failed'
		     WHEN attempts > 0 THEN 'queued'
		     ELSE 'sending' END
	FROM dm_outbox`

func scanDMs(rows *sql.Rows, extra ...any) ([]storage.ConversationDM, error) {
	defer rows.Close()
	var out []storage.ConversationDM
	for rows.Next() {
		var m storage.ConversationDM
		var own int
		dest := append([]any{&m.Peer, &m.ID, &m.Nick, &m.Text, &m.SentAt, &own, &m.State}, extra...)
		if err := rows.Scan(dest...); err != nil {
			return nil, err
		}
		m.Own = own == 1
		out = append(out, m)
	}
	return out, rows.Err()
}

// Conversations lists the peers DMs were exchanged with, the one with the
// newest DM first, each with its newest DM and how many received DMs
// came after its read marker.
func (s *Store) Conversations() ([]storage.Conversation, error) {
	rows, err := s.db.Query(`
		SELECT peer, id, nick, body, sent_at_ms, own, state,
			(SELECT COUNT(*) FROM dm_inbox i WHERE i.sender = d.peer AND i.stored_at_ms >
				COALESCE((SELECT read_at_ms FROM read_markers WHERE conversation = 'dm:' || d.peer), 0))
		FROM (SELECT *, ROW_NUMBER() OVER (PARTITION BY peer ORDER BY sent_at_ms DESC, id DESC) AS n
		      FROM (` + dmUnion + `)) d
		WHERE n = 1 ORDER BY sent_at_ms DESC, id DESC`)
	if err != nil {
		return nil, fmt.Errorf("read dm conversations: %w", err)
	}
	var out []storage.Conversation
	u := new(int)
	defer rows.Close()
	for rows.Next() {
		var m storage.ConversationDM
		var own int
		if err := rows.Scan(&m.Peer, &m.ID, &m.Nick, &m.Text, &m.SentAt, &own, &m.State, u); err != nil {
			return nil, fmt.Errorf("read dm conversations: %w", err)
		}
		m.Own = own == 1
		out = append(out, storage.Conversation{Peer: m.Peer, Last: m, Unread: *u})
	}
	return out, rows.Err()
}

// DMsWith returns the newest limit DMs exchanged with peer that are
// older than the DM before (all of them when before is ""), oldest first.
func (s *Store) DMsWith(peer, before string, limit int) ([]storage.ConversationDM, error) {
	// A cursor past every DM when there is none: sent_at_ms is an int64
	// of milliseconds, and "~" sorts after every ID.
	atMS, atID := int64(math.MaxInt64), "~"
	if before != "" {
		err := s.db.QueryRow(`SELECT sent_at_ms, id FROM (`+dmUnion+`) WHERE peer = ? AND id = ?`, peer, before).Scan(&atMS, &atID)
		if errors.Is(err, sql.ErrNoRows) {
			return nil, fmt.Errorf("dm %q: %w in the conversation with %s", before, ErrNotFound, peer)
		}
		if err != nil {
			return nil, fmt.Errorf("read dms with %s: %w", peer, err)
		}
	}
	rows, err := s.db.Query(`SELECT * FROM (SELECT peer, id, nick, body, sent_at_ms, own, state FROM (`+dmUnion+`)
		WHERE peer = ? AND (sent_at_ms, id) < (?, ?) ORDER BY sent_at_ms DESC, id DESC LIMIT ?) ORDER BY sent_at_ms, id`,
		peer, atMS, atID, limit)
	if err != nil {
		return nil, fmt.Errorf("read dms with %s: %w", peer, err)
	}
	out, err := scanDMs(rows)
	if err != nil {
		return nil, fmt.Errorf("read dms with %s: %w", peer, err)
	}
	return out, nil
}

// MarkRead moves conversation's read marker to at (never back).
func (s *Store) MarkRead(conversation string, at time.Time) error {
	_, err := s.db.Exec(`INSERT INTO read_markers (conversation, read_at_ms) VALUES (?, ?)
		ON CONFLICT (conversation) DO UPDATE SET read_at_ms = max(read_at_ms, excluded.read_at_ms)`, conversation, ms(at))
	if err != nil {
		return fmt.Errorf("mark %s read: %w", conversation, err)
	}
	return nil
}

// UnreadRoom counts room's messages not by self stored after the room's
// read marker; a room without a marker gets one now, so that joining a
// room does not turn its whole history unread.
func (s *Store) UnreadRoom(room, self string) (int, error) {
	var at int64
	err := s.db.QueryRow(`SELECT read_at_ms FROM read_markers WHERE conversation = ?`, "room:"+room).Scan(&at)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, s.MarkRead("room:"+room, time.Now())
	}
	if err != nil {
		return 0, fmt.Errorf("read marker of room %q: %w", room, err)
	}
	var n int
	if err := s.db.QueryRow(`SELECT COUNT(*) FROM room_messages WHERE room = ? AND stored_at_ms > ? AND author != ?`,
		room, at, self).Scan(&n); err != nil {
		return 0, fmt.Errorf("count unread in room %q: %w", room, err)
	}
	return n, nil
}

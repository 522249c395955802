package store

import (
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"google.golang.org/protobuf/encoding/protowire"

	"github.com/parley-chat/parley/chat/storage"
)

// The record types are chat/storage's, so that chat's public API names no
// internal type.
type (
	RoomMessage = storage.RoomMessage
	Cursor      = storage.Cursor
	Retention   = storage.Retention
)

// AddRoomMessage stores m unless a message with its ID is stored already;
// it reports whether m was new.
func (s *Store) AddRoomMessage(m RoomMessage) (bool, error) {
	added, err := s.AddRoomMessages([]RoomMessage{m})
	if err != nil {
		return false, err
	}
	return added[0], nil
}

// AddRoomMessages stores msgs in one transaction (one disk sync), skipping
// those whose ID is stored already; added[i] tells whether msgs[i] was new.
func (s *Store) AddRoomMessages(msgs []RoomMessage) (added []bool, err error) {
	if len(msgs) == 1 {
		// One statement is its own transaction: an explicit BEGIN and
		// COMMIT are two more statements to parse and run.
		n, err := s.addRoomMessage(s.insertRoom, msgs[0], ms(time.Now()))
		if err != nil {
			return nil, err
		}
		return []bool{n}, nil
	}
	tx, err := s.db.Begin()
	if err != nil {
		return nil, fmt.Errorf("store room messages: %w", err)
	}
	defer func() {
		if err != nil {
			tx.Rollback()
		}
	}()
	stmt := tx.Stmt(s.insertRoom)
	defer stmt.Close()
	now := ms(time.Now())
	added = make([]bool, len(msgs))
	for i, m := range msgs {
		if added[i], err = s.addRoomMessage(stmt, m, now); err != nil {
			return nil, err
		}
	}
	if err := tx.Commit(); err != nil {
		return nil, fmt.Errorf("store room messages: %w", err)
	}
	return added, nil
}

// rawText returns the text of a public room message from its signed
// GossipSub message (pubsub's Message.data = 2, parley's Envelope.body =
// 8, Body.text = 2), without decoding the rest. A row whose text is there
// stores an empty body and reads the text from raw: the text was stored
// twice, ~2.3 KB a row for a 1 KB message, a page of its own, and the
// row's size was most of what storing a burst cost. A private room's body
// is sealed, so its text is not found there and is stored as before; an
// empty body never means an empty text, which no message has.
func rawText(raw []byte) ([]byte, bool) {
	data, ok := lastBytes(raw, 2)
	if !ok {
		return nil, false
	}
	body, ok := lastBytes(data, 8)
	if !ok {
		return nil, false
	}
	text, ok := lastBytes(body, 2)
	return text, ok && len(text) > 0
}

// lastBytes returns the last value of the length-delimited field num of
// the protobuf message b (the last one wins, as proto.Unmarshal has it).
func lastBytes(b []byte, num protowire.Number) ([]byte, bool) {
	var v []byte
	found := false
	for len(b) > 0 {
		n, typ, l := protowire.ConsumeTag(b)
		if l < 0 {
			return nil, false
		}
		b = b[l:]
		if n == num && typ == protowire.BytesType {
			val, l := protowire.ConsumeBytes(b)
			if l < 0 {
				return nil, false
			}
			v, found, b = val, true, b[l:]
			continue
		}
		l = protowire.ConsumeFieldValue(n, typ, b)
		if l < 0 {
			return nil, false
		}
		b = b[l:]
	}
	return v, found
}

// addRoomMessage inserts m with stmt (insertRoom) unless its ID is
// stored, and reports whether it was new.
func (s *Store) addRoomMessage(stmt *sql.Stmt, m RoomMessage, now int64) (bool, error) {
	body := m.Text
	if t, ok := rawText(m.Raw); ok && string(t) == m.Text {
		body = "" // read from raw (see rawText)
	}
	res, err := stmt.Exec(m.ID, m.Room, m.Author, m.Nick, body, m.SentAt, int64(m.Lamport), now, m.Raw)
	if err != nil {
		return false, fmt.Errorf("store room message: %w", err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return false, fmt.Errorf("store room message: %w", err)
	}
	return n == 1, nil
}

const roomColumns = `id, room, author, nick, body, sent_at_ms, lamport, raw`

func scanRoomMessages(rows interface {
	Next() bool
	Scan(...any) error
	Err() error
	Close() error
}) ([]RoomMessage, error) {
	defer rows.Close()
	var out []RoomMessage
	for rows.Next() {
		var m RoomMessage
		var lamport int64
		if err := rows.Scan(&m.ID, &m.Room, &m.Author, &m.Nick, &m.Text, &m.SentAt, &lamport, &m.Raw); err != nil {
			return nil, err
		}
		m.Lamport = uint64(lamport)
		if m.Text == "" {
			// Stored once, in raw; or not known at all (a relay stores a
			// private room's sealed messages without their text).
			if t, ok := rawText(m.Raw); ok {
				m.Text = string(t)
			}
		}
		out = append(out, m)
	}
	return out, rows.Err()
}

// RoomMessagesAfter returns up to limit messages of room that come after
// cursor in history order.
func (s *Store) RoomMessagesAfter(room string, after Cursor, limit int) ([]RoomMessage, error) {
	rows, err := s.db.Query(`SELECT `+roomColumns+` FROM room_messages
		WHERE room = ? AND (sent_at_ms, lamport, id) > (?, ?, ?)
		ORDER BY sent_at_ms, lamport, id LIMIT ?`,
		room, after.SentAt, int64(after.Lamport), after.ID, limit)
	if err != nil {
		return nil, fmt.Errorf("read room history: %w", err)
	}
	return scanRoomMessages(rows)
}

// RecentRoomMessages returns the last limit messages of room, oldest first.
func (s *Store) RecentRoomMessages(room string, limit int) ([]RoomMessage, error) {
	rows, err := s.db.Query(`SELECT * FROM (SELECT `+roomColumns+` FROM room_messages
		WHERE room = ? ORDER BY sent_at_ms DESC, lamport DESC, id DESC LIMIT ?)
		ORDER BY sent_at_ms, lamport, id`, room, limit)
	if err != nil {
		return nil, fmt.Errorf("read room history: %w", err)
	}
	return scanRoomMessages(rows)
}

// RoomMessagesBefore returns the last limit messages of room that come
// before the message with ID before in history order ("" for the newest),
// oldest first. An ID not stored in room is an error.
func (s *Store) RoomMessagesBefore(room, before string, limit int) ([]RoomMessage, error) {
	if before == "" {
		return s.RecentRoomMessages(room, limit)
	}
	var c Cursor
	var lamport int64
	err := s.db.QueryRow(`SELECT sent_at_ms, lamport, id FROM room_messages WHERE room = ? AND id = ?`,
		room, before).Scan(&c.SentAt, &lamport, &c.ID)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("message %q: %w in room %q", before, ErrNotFound, room)
	}
	if err != nil {
		return nil, fmt.Errorf("read room history: %w", err)
	}
	rows, err := s.db.Query(`SELECT * FROM (SELECT `+roomColumns+` FROM room_messages
		WHERE room = ? AND (sent_at_ms, lamport, id) < (?, ?, ?)
		ORDER BY sent_at_ms DESC, lamport DESC, id DESC LIMIT ?)
		ORDER BY sent_at_ms, lamport, id`, room, c.SentAt, lamport, c.ID, limit)
	if err != nil {
		return nil, fmt.Errorf("read room history: %w", err)
	}
	return scanRoomMessages(rows)
}

// StoredRoomMessages returns the positions of those of ids that are
// stored in room. A catch-up asks it before checking signatures: a page
// of history is often mostly lines this node holds already.
func (s *Store) StoredRoomMessages(room string, ids []string) (map[string]Cursor, error) {
	out := make(map[string]Cursor, len(ids))
	for len(ids) > 0 {
		n := min(len(ids), 500) // well under SQLite's bound on parameters
		args := make([]any, 0, n+1)
		args = append(args, room)
		for _, id := range ids[:n] {
			args = append(args, id)
		}
		rows, err := s.db.Query(`SELECT id, sent_at_ms, lamport FROM room_messages
			WHERE room = ? AND id IN (?`+strings.Repeat(", ?", n-1)+`)`, args...)
		if err != nil {
			return nil, fmt.Errorf("look up stored room messages: %w", err)
		}
		for rows.Next() {
			var c Cursor
			var lamport int64
			if err := rows.Scan(&c.ID, &c.SentAt, &lamport); err != nil {
				rows.Close()
				return nil, fmt.Errorf("look up stored room messages: %w", err)
			}
			c.Lamport = uint64(lamport)
			out[c.ID] = c
		}
		if err := rows.Err(); err != nil {
			return nil, fmt.Errorf("look up stored room messages: %w", err)
		}
		rows.Close()
		ids = ids[n:]
	}
	return out, nil
}

// ErrNotFound means a message asked for is not stored.
var ErrNotFound = storage.ErrNotFound

// CountRoomMessages returns how many messages of room are stored.
func (s *Store) CountRoomMessages(room string) (int, error) {
	var n int
	if err := s.db.QueryRow(`SELECT COUNT(*) FROM room_messages WHERE room = ?`, room).Scan(&n); err != nil {
		return 0, fmt.Errorf("count room history: %w", err)
	}
	return n, nil
}

// LatestRoomMessage returns the position of the newest stored message of
// room, and false if there is none.
func (s *Store) LatestRoomMessage(room string) (Cursor, bool, error) {
	var c Cursor
	var lamport int64
	err := s.db.QueryRow(`SELECT sent_at_ms, lamport, id FROM room_messages WHERE room = ?
		ORDER BY sent_at_ms DESC, lamport DESC, id DESC LIMIT 1`, room).Scan(&c.SentAt, &lamport, &c.ID)
	if errors.Is(err, sql.ErrNoRows) {
		return Cursor{}, false, nil
	}
	if err != nil {
		return Cursor{}, false, fmt.Errorf("read room history: %w", err)
	}
	c.Lamport = uint64(lamport)
	return c, true, nil
}

// Prune applies r to room and reports how many messages it removed.
func (s *Store) Prune(room string, r Retention) (int64, error) {
	var removed int64
	if r.MaxAge > 0 {
		res, err := s.db.Exec(`DELETE FROM room_messages WHERE room = ? AND sent_at_ms < ?`,
			room, ms(time.Now().Add(-r.MaxAge)))
		if err != nil {
			return 0, fmt.Errorf("prune room history: %w", err)
		}
		n, _ := res.RowsAffected()
		removed += n
	}
	if r.MaxMessages > 0 {
		res, err := s.db.Exec(`DELETE FROM room_messages WHERE room = ? AND id NOT IN (
			SELECT id FROM room_messages WHERE room = ?
			ORDER BY sent_at_ms DESC, lamport DESC, id DESC LIMIT ?)`, room, room, r.MaxMessages)
		if err != nil {
			return 0, fmt.Errorf("prune room history: %w", err)
		}
		n, _ := res.RowsAffected()
		removed += n
	}
	return removed, nil
}

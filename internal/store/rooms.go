package store

import (
	"database/sql"
	"errors"
	"fmt"
	"github.com/parley-chat/parley/chat/storage"
	"time"
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
		res, err := stmt.Exec(m.ID, m.Room, m.Author, m.Nick, m.Text, m.SentAt, int64(m.Lamport), now, m.Raw)
		if err != nil {
			return nil, fmt.Errorf("store room message: %w", err)
		}
		n, err := res.RowsAffected()
		if err != nil {
			return nil, err
		}
		added[i] = n == 1
	}
	if err := tx.Commit(); err != nil {
		return nil, fmt.Errorf("store room messages: %w", err)
	}
	return added, nil
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

package store

import (
	"database/sql"
	"errors"
	"fmt"
	"math"
)

// AuthorLamport returns the highest Lamport of author's messages in room
// that is below below, and false when there is none: whether a sender's
// previous message is here, and where a sender's own counter stands after
// a restart.
func (s *Store) AuthorLamport(room, author string, below uint64) (uint64, bool, error) {
	// SQLite integers are signed: Lamports are stored as int64.
	b := int64(math.MaxInt64)
	if below < math.MaxInt64 {
		b = int64(below)
	}
	var l sql.NullInt64
	err := s.db.QueryRow(`SELECT MAX(lamport) FROM room_messages WHERE room = ? AND author = ? AND lamport < ?`,
		room, author, b).Scan(&l)
	if errors.Is(err, sql.ErrNoRows) || err == nil && !l.Valid {
		return 0, false, nil
	}
	if err != nil {
		return 0, false, fmt.Errorf("read room history: %w", err)
	}
	return uint64(l.Int64), true, nil
}

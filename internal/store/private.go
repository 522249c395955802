package store

import (
	"database/sql"
	"errors"
	"fmt"
	"strings"

	"github.com/parley-chat/parley/chat/storage"
)

// SavePrivateRoom records a private room's current key, replacing the
// one of the same name.
func (s *Store) SavePrivateRoom(r storage.PrivateRoom) error {
	_, err := s.db.Exec(`INSERT INTO private_rooms (name, secret, epoch, creator, previous) VALUES (?, ?, ?, ?, ?)
		ON CONFLICT (name) DO UPDATE SET secret = excluded.secret, epoch = excluded.epoch, creator = excluded.creator,
			previous = excluded.previous`,
		r.Name, r.Secret, int64(r.Epoch), r.Creator, strings.Join(r.Previous, " "))
	if err != nil {
		return fmt.Errorf("store private room %q: %w", r.Name, err)
	}
	return nil
}

// PrivateRoom returns the private room named name, and false if there is
// none.
func (s *Store) PrivateRoom(name string) (storage.PrivateRoom, bool, error) {
	r := storage.PrivateRoom{Name: name}
	var epoch int64
	var previous string
	err := s.db.QueryRow(`SELECT secret, epoch, creator, previous FROM private_rooms WHERE name = ?`, name).Scan(&r.Secret, &epoch, &r.Creator, &previous)
	if errors.Is(err, sql.ErrNoRows) {
		return storage.PrivateRoom{}, false, nil
	}
	if err != nil {
		return storage.PrivateRoom{}, false, fmt.Errorf("read private room %q: %w", name, err)
	}
	r.Epoch = uint64(epoch)
	r.Previous = strings.Fields(previous)
	return r, true, nil
}

// PrivateRooms lists the private rooms' names, sorted.
func (s *Store) PrivateRooms() ([]string, error) {
	rows, err := s.db.Query(`SELECT name FROM private_rooms ORDER BY name`)
	if err != nil {
		return nil, fmt.Errorf("read private rooms: %w", err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var n string
		if err := rows.Scan(&n); err != nil {
			return nil, fmt.Errorf("read private rooms: %w", err)
		}
		out = append(out, n)
	}
	return out, rows.Err()
}

// DeletePrivateRoom forgets a private room's key.
func (s *Store) DeletePrivateRoom(name string) error {
	if _, err := s.db.Exec(`DELETE FROM private_rooms WHERE name = ?`, name); err != nil {
		return fmt.Errorf("forget private room %q: %w", name, err)
	}
	return nil
}

package store

import (
	"fmt"
	"time"

	"github.com/parley-chat/parley/chat/storage"
)

// KnownPeer is chat/storage's record of a peer known by nick.
type KnownPeer = storage.KnownPeer

// SavePeers records the nicks of ps and when they were seen, in one
// transaction (a roster page names hundreds). A record seen earlier
// than the stored one changes nothing: the newest sighting wins.
func (s *Store) SavePeers(ps ...KnownPeer) (err error) {
	if len(ps) == 0 {
		return nil
	}
	tx, err := s.db.Begin()
	if err != nil {
		return fmt.Errorf("store known peers: %w", err)
	}
	defer func() {
		if err != nil {
			tx.Rollback()
		}
	}()
	stmt, err := tx.Prepare(`INSERT INTO known_peers (peer, nick, last_seen_ms) VALUES (?, ?, ?)
		ON CONFLICT (peer) DO UPDATE SET nick = excluded.nick, last_seen_ms = excluded.last_seen_ms
		WHERE excluded.last_seen_ms >= known_peers.last_seen_ms`)
	if err != nil {
		return fmt.Errorf("store known peers: %w", err)
	}
	defer stmt.Close()
	for _, p := range ps {
		if _, err := stmt.Exec(p.ID, p.Nick, ms(p.LastSeen)); err != nil {
			return fmt.Errorf("store known peer: %w", err)
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("store known peers: %w", err)
	}
	return nil
}

// KnownPeers lists the peers seen at or after since, the most recently
// seen first.
func (s *Store) KnownPeers(since time.Time) ([]KnownPeer, error) {
	rows, err := s.db.Query(`SELECT peer, nick, last_seen_ms FROM known_peers
		WHERE last_seen_ms >= ? ORDER BY last_seen_ms DESC, peer`, ms(since))
	if err != nil {
		return nil, fmt.Errorf("read known peers: %w", err)
	}
	defer rows.Close()
	var out []KnownPeer
	for rows.Next() {
		var p KnownPeer
		var seen int64
		if err := rows.Scan(&p.ID, &p.Nick, &seen); err != nil {
			return nil, fmt.Errorf("read known peers: %w", err)
		}
		p.LastSeen = time.UnixMilli(seen)
		out = append(out, p)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read known peers: %w", err)
	}
	return out, nil
}

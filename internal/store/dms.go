package store

import (
	"fmt"
	"github.com/parley-chat/parley/chat/storage"
	"time"
)

// DM is chat/storage's DM.
type DM = storage.DM

// AddReceivedDM stores a received DM unless the same sender's message with
// that ID is stored already; it reports whether it was new.
func (s *Store) AddReceivedDM(m DM) (bool, error) {
	res, err := s.insertInbox.Exec(m.Peer, m.ID, m.Nick, m.Text, m.SentAt, ms(time.Now()))
	if err != nil {
		return false, fmt.Errorf("store received dm: %w", err)
	}
	n, err := res.RowsAffected()
	return n == 1, err
}

// InboxBytes is the size of the DMs stored from sender (text and nick).
func (s *Store) InboxBytes(sender string) (int64, error) {
	var n int64
	err := s.db.QueryRow(`SELECT COALESCE(SUM(length(CAST(body AS BLOB)) + length(CAST(nick AS BLOB))), 0) FROM dm_inbox WHERE sender = ?`, sender).Scan(&n)
	if err != nil {
		return 0, fmt.Errorf("size of the dms from %s: %w", sender, err)
	}
	return n, nil
}

// CountPendingDMs counts the undelivered DMs to recipient.
func (s *Store) CountPendingDMs(recipient string) (int, error) {
	var n int
	err := s.db.QueryRow(`SELECT COUNT(*) FROM dm_outbox WHERE recipient = ? AND delivered_at_ms IS NULL AND failed IS NULL`, recipient).Scan(&n)
	if err != nil {
		return 0, fmt.Errorf("count dms to %s: %w", recipient, err)
	}
	return n, nil
}

// ReceivedDMs returns the DMs received from sender, oldest first ("" for
// every sender).
func (s *Store) ReceivedDMs(sender string) ([]DM, error) {
	rows, err := s.db.Query(`SELECT sender, id, nick, body, sent_at_ms FROM dm_inbox
		WHERE ? = '' OR sender = ? ORDER BY sent_at_ms, id`, sender, sender)
	if err != nil {
		return nil, fmt.Errorf("read dm inbox: %w", err)
	}
	defer rows.Close()
	var out []DM
	for rows.Next() {
		var m DM
		if err := rows.Scan(&m.Peer, &m.ID, &m.Nick, &m.Text, &m.SentAt); err != nil {
			return nil, err
		}
		out = append(out, m)
	}
	return out, rows.Err()
}

// QueueDM puts a DM in the outbox, due at once.
func (s *Store) QueueDM(m DM) error {
	_, err := s.insertOutbox.Exec(m.ID, m.Peer, m.Nick, m.Text, m.SentAt, ms(time.Now()))
	if err != nil {
		return fmt.Errorf("queue dm: %w", err)
	}
	return nil
}

// PendingDMs returns the DMs not yet delivered (to recipient, or to anyone
// for ""), oldest first.
func (s *Store) PendingDMs(recipient string) ([]DM, error) {
	rows, err := s.pendingFor.Query(recipient, recipient)
	if err != nil {
		return nil, fmt.Errorf("read dm outbox: %w", err)
	}
	defer rows.Close()
	var out []DM
	for rows.Next() {
		var m DM
		var next int64
		if err := rows.Scan(&m.ID, &m.Peer, &m.Nick, &m.Text, &m.SentAt, &m.Attempts, &next); err != nil {
			return nil, err
		}
		m.Next = time.UnixMilli(next)
		out = append(out, m)
	}
	return out, rows.Err()
}

// MarkDelivered records that the recipient acknowledged DM id.
func (s *Store) MarkDelivered(id string) error {
	_, err := s.delivered.Exec(ms(time.Now()), id)
	if err != nil {
		return fmt.Errorf("mark dm delivered: %w", err)
	}
	return nil
}

// Reschedule records a failed attempt and when to try again.
func (s *Store) Reschedule(id string, attempts int, next time.Time) error {
	_, err := s.db.Exec(`UPDATE dm_outbox SET attempts = ?, next_attempt_ms = ? WHERE id = ?`, attempts, ms(next), id)
	if err != nil {
		return fmt.Errorf("reschedule dm: %w", err)
	}
	return nil
}

// GiveUp records that DM id will not be delivered, and why.
func (s *Store) GiveUp(id, reason string) error {
	_, err := s.db.Exec(`UPDATE dm_outbox SET failed = ? WHERE id = ?`, reason, id)
	if err != nil {
		return fmt.Errorf("give up dm: %w", err)
	}
	return nil
}

package store

import (
	"database/sql"
	"fmt"
	"time"
)

// Group commit of DM writes: the DMs that arrived together on a stream are
// stored in one transaction before any of them is acknowledged, and the
// acks that came back together are marked in one. Each commit of the WAL
// appends the pages it changed (the table's and each index's), so one
// commit for n DMs writes about as much as one for a single DM; with
// synchronous=NORMAL no commit waits for an fsync, and what a commit wrote
// survives the process being killed (see the package documentation).

// AddReceivedDMs stores received DMs in one transaction, each unless the
// same sender's message with that ID is stored already; it reports which
// were new. Nothing is stored when it fails.
func (s *Store) AddReceivedDMs(dms []DM) ([]bool, error) {
	if len(dms) == 1 {
		added, err := s.AddReceivedDM(dms[0])
		if err != nil {
			return nil, err
		}
		return []bool{added}, nil
	}
	added := make([]bool, len(dms))
	err := s.dmTx(func(tx *sql.Tx) error {
		ins := tx.Stmt(s.insertInbox)
		now := ms(time.Now())
		for i, m := range dms {
			res, err := ins.Exec(m.Peer, m.ID, m.Nick, m.Text, m.SentAt, now)
			if err != nil {
				return err
			}
			n, err := res.RowsAffected()
			if err != nil {
				return err
			}
			added[i] = n == 1
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("store %d received dms: %w", len(dms), err)
	}
	return added, nil
}

// MarkDMsDelivered records that the recipient acknowledged the DMs ids, in
// one transaction.
func (s *Store) MarkDMsDelivered(ids []string) error {
	if len(ids) == 1 {
		return s.MarkDelivered(ids[0])
	}
	err := s.dmTx(func(tx *sql.Tx) error {
		upd := tx.Stmt(s.delivered)
		now := ms(time.Now())
		for _, id := range ids {
			if _, err := upd.Exec(now, id); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("mark %d dms delivered: %w", len(ids), err)
	}
	return nil
}

// dmTx runs f in a transaction, committed when f returns nil.
func (s *Store) dmTx(f func(*sql.Tx) error) error {
	tx, err := s.db.Begin()
	if err != nil {
		return err
	}
	if err := f(tx); err != nil {
		tx.Rollback()
		return err
	}
	return tx.Commit()
}

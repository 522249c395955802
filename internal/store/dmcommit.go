package store

import (
	"database/sql"
	"encoding/json"
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
//
// A batch is one statement, not a statement per row, and its text does not
// grow with the batch: the rows go in as one JSON array (json_each).
// modernc.org/sqlite parses a statement again on every execution (even a
// prepared one), and the parse was the dearest part of a one-row insert;
// a VALUES list of n rows is parsed (and compiled) row by row.

// rowsPerStatement bounds the rows of one statement.
const rowsPerStatement = 64

// AddReceivedDMs stores received DMs in one transaction, each unless the
// same sender's message with that ID is stored already (or comes earlier in
// dms); it reports which were new. Nothing is stored when it fails.
func (s *Store) AddReceivedDMs(dms []DM) ([]bool, error) {
	if len(dms) == 1 {
		added, err := s.AddReceivedDM(dms[0])
		if err != nil {
			return nil, err
		}
		return []bool{added}, nil
	}
	added := make([]bool, len(dms))
	err := s.dmTx(len(dms) > rowsPerStatement, func(x execer) error {
		now := ms(time.Now())
		for lo := 0; lo < len(dms); lo += rowsPerStatement {
			part := dms[lo:min(lo+rowsPerStatement, len(dms))]
			rowsJSON := make([][5]any, len(part))
			for i, m := range part {
				rowsJSON[i] = [5]any{m.Peer, m.ID, m.Nick, m.Text, m.SentAt}
			}
			arg, err := json.Marshal(rowsJSON)
			if err != nil {
				return err
			}
			// Only the rows inserted come back: not the ones ignored.
			rows, err := x.Query(`INSERT OR IGNORE INTO dm_inbox (sender, id, nick, body, sent_at_ms, stored_at_ms)
				SELECT value->>0, value->>1, value->>2, value->>3, value->>4, ? FROM json_each(?) WHERE true
				RETURNING sender, id`, now, string(arg))
			if err != nil {
				return err
			}
			inserted := make(map[[2]string]bool, len(part))
			for rows.Next() {
				var k [2]string
				if err := rows.Scan(&k[0], &k[1]); err != nil {
					rows.Close()
					return err
				}
				inserted[k] = true
			}
			if err := rows.Close(); err != nil {
				return err
			}
			if err := rows.Err(); err != nil {
				return err
			}
			for i, m := range part {
				k := [2]string{m.Peer, m.ID}
				if inserted[k] {
					added[lo+i] = true
					delete(inserted, k) // a later copy in the batch is not new
				}
			}
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
	err := s.dmTx(len(ids) > rowsPerStatement, func(x execer) error {
		now := ms(time.Now())
		for lo := 0; lo < len(ids); lo += rowsPerStatement {
			part := ids[lo:min(lo+rowsPerStatement, len(ids))]
			arg, err := json.Marshal(part)
			if err != nil {
				return err
			}
			if _, err := x.Exec(`UPDATE dm_outbox SET delivered_at_ms = ? WHERE id IN (SELECT value FROM json_each(?))`, now, string(arg)); err != nil {
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

// execer is a *sql.DB or a *sql.Tx.
type execer interface {
	Exec(query string, args ...any) (sql.Result, error)
	Query(query string, args ...any) (*sql.Rows, error)
}

// dmTx runs f in a transaction when tx is set (more than one statement),
// else on the database: one statement is atomic by itself.
func (s *Store) dmTx(tx bool, f func(execer) error) error {
	if !tx {
		return f(s.db)
	}
	t, err := s.db.Begin()
	if err != nil {
		return err
	}
	if err := f(t); err != nil {
		t.Rollback()
		return err
	}
	return t.Commit()
}

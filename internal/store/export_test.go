package store

import "database/sql"

// DB exposes the database to the tests.
func (s *Store) DB() *sql.DB { return s.db }

// WALBackstopPages is the writers' own autocheckpoint.
const WALBackstopPages = walBackstopPages

// Checkpoint runs one background-connection checkpoint now.
func (s *Store) Checkpoint() (frames, copied int64, err error) {
	w, err := s.ckpt.checkpoint()
	return w.frames, w.copied, err
}

// CheckpointerConnected reports whether the background checkpoints'
// connection was made.
func (s *Store) CheckpointerConnected() bool { return s.ckpt.db.Stats().OpenConnections > 0 }

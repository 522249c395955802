package store

import "database/sql"

// DB exposes the database to the tests.
func (s *Store) DB() *sql.DB { return s.db }

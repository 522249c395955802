// Package store keeps Parley's state on disk: room history, the DM inbox
// (the persistent duplicate filter) and the DM outbox. It is one SQLite
// database (modernc.org/sqlite, pure Go, so a static binary stays
// possible) in WAL mode with synchronous=NORMAL: a write that returned is
// in the write-ahead log, which the kernel holds for the file even if the
// process is killed, so a message acknowledged after it survives kill -9
// (the e2e test kills a node right after its acks). What NORMAL gives up,
// against FULL, is the last transactions before an operating-system crash
// or a power cut, which are not yet synced to the disk: a DM acknowledged
// in the last moment before the machine itself dies can be lost. FULL
// cost an fsync per write (~0.2–0.3 ms here, far more on a laptop's disk)
// on the path of every acknowledgement and every room message. The
// checkpoints that copy the log into the database file (and do sync) run
// on a connection of their own, off the writers' path (checkpoint.go).
//
// The schema is versioned: sql/NNN_*.sql files are applied in order, each
// in a transaction, and PRAGMA user_version records the last one. A file
// that starts with rerunMarker is idempotent and also runs on a database
// whose version is past it: branches developed in parallel may merge a
// lower number after a higher one was applied somewhere.
package store

import (
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"github.com/parley-chat/parley/chat/storage"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	_ "modernc.org/sqlite" // registers the "sqlite" driver
)

// FileName is the database file inside the data directory.
const FileName = "parley.db"

// rerunMarker starts a migration that runs on every open (see the package
// documentation).
const rerunMarker = "-- parley:rerun"

//go:embed sql/*.sql
var migrations embed.FS

// Store is an open database. Its methods are safe for concurrent use.
type Store struct {
	db   *sql.DB
	path string
	ckpt *checkpointer // nil for memory

	// Statements of the hot paths, compiled once (compiling them on every
	// call was a quarter of the CPU of a DM round trip).
	insertRoom, insertInbox, insertOutbox, pendingFor, delivered *sql.Stmt
	deliveredMany                                                *sql.Stmt // dmcommit.go
}

func (s *Store) prepare() error {
	for _, st := range []struct {
		to  **sql.Stmt
		sql string
	}{
		{&s.insertRoom, `INSERT OR IGNORE INTO room_messages
			(id, room, author, nick, body, sent_at_ms, lamport, stored_at_ms, raw)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`},
		{&s.insertInbox, `INSERT OR IGNORE INTO dm_inbox (sender, id, nick, body, sent_at_ms, stored_at_ms)
			VALUES (?, ?, ?, ?, ?, ?)`},
		{&s.insertOutbox, `INSERT INTO dm_outbox (id, recipient, nick, body, sent_at_ms, next_attempt_ms)
			VALUES (?, ?, ?, ?, ?, ?)`},
		{&s.pendingFor, `SELECT id, recipient, nick, body, sent_at_ms, attempts, next_attempt_ms FROM dm_outbox
			WHERE delivered_at_ms IS NULL AND failed IS NULL AND (? = '' OR recipient = ?)
			ORDER BY sent_at_ms, rowid`}, // rowid: queue order within a millisecond
		{&s.delivered, `UPDATE dm_outbox SET delivered_at_ms = ? WHERE id = ?`},
		{&s.deliveredMany, markDMsSQL},
	} {
		stmt, err := s.db.Prepare(st.sql)
		if err != nil {
			return fmt.Errorf("prepare: %w", err)
		}
		*st.to = stmt
	}
	return nil
}

// Open opens (creating if needed) the store in dir. A database that cannot
// be opened, is corrupt or is newer than this program is an error; it is
// never replaced.
func Open(dir string) (*Store, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("open store: %w", err)
	}
	path := filepath.Join(dir, FileName)
	s, err := open("file:" + path + "?_pragma=journal_mode(WAL)&_pragma=synchronous(NORMAL)&_pragma=busy_timeout(5000)&_pragma=foreign_keys(ON)" + walPragmas)
	if err != nil {
		hint := "if it is damaged, move it away to start with an empty history"
		if strings.Contains(err.Error(), "disk is full") {
			hint = "free some disk space and start again"
		}
		return nil, fmt.Errorf("open store %s: %w (%s)", path, err, hint)
	}
	s.path = path
	if s.ckpt, err = startCheckpointer(path); err != nil {
		s.Close()
		return nil, fmt.Errorf("open store %s: %w", path, err)
	}
	return s, nil
}

// OpenMemory opens a store that lives in memory only (tests, embedders
// that keep nothing). It has no rollback journal: SQLite's in-memory
// journal allocated and unmapped its pages on every transaction, a
// syscall storm that tripled the CPU of each DM; what it would give, the
// undoing of a failed transaction, matters little for data that ends with
// the process, and the writes here fail only on a bug.
func OpenMemory() (*Store, error) {
	s, err := open("file::memory:?_pragma=foreign_keys(ON)&_pragma=journal_mode(OFF)")
	if err != nil {
		return nil, fmt.Errorf("open memory store: %w", err)
	}
	s.path = ":memory:"
	return s, nil
}

// OrMemory returns st, or a new memory store when st is nil; owned says
// whether the caller opened it and must close it.
func OrMemory(st *Store) (_ *Store, owned bool, err error) {
	if st != nil {
		return st, false, nil
	}
	st, err = OpenMemory()
	return st, err == nil, err
}

func open(dsn string) (*Store, error) {
	db, err := sql.Open("sqlite", dsn)
	if err != nil {
		return nil, err
	}
	// One connection: SQLite serialises writers anyway, and an in-memory
	// database exists per connection.
	db.SetMaxOpenConns(1)
	s := &Store{db: db}
	if err := s.check(); err != nil {
		db.Close()
		return nil, err
	}
	if err := s.migrate(); err != nil {
		db.Close()
		return nil, err
	}
	if err := s.prepare(); err != nil {
		db.Close()
		return nil, err
	}
	return s, nil
}

// checkCacheKiB bounds the page cache while quick_check runs.
const checkCacheKiB = 256

// check refuses a corrupt database. quick_check reads every page through
// the connection's page cache, which would fill it to its limit (2 MB by
// default, ~4 MB resident: modernc's allocator gives a page of 4 KiB plus
// its header an 8 KiB slot, and keeps its 1 MB blocks mapped while any
// slot is in use). The node then kept that memory for its whole life:
// +3.5 MB anonymous with a store of 29 MB. It reads each page once, so a
// small cache costs it nothing; the limit is restored after.
func (s *Store) check() error {
	var cacheSize int
	if err := s.db.QueryRow("PRAGMA cache_size").Scan(&cacheSize); err != nil {
		return err
	}
	if _, err := s.db.Exec(fmt.Sprintf("PRAGMA cache_size = -%d", checkCacheKiB)); err != nil {
		return err
	}
	var res string
	if err := s.db.QueryRow("PRAGMA quick_check").Scan(&res); err != nil {
		return err
	}
	if res != "ok" {
		return fmt.Errorf("database is corrupt: %s", res)
	}
	_, err := s.db.Exec(fmt.Sprintf("PRAGMA cache_size = %d", cacheSize))
	return err
}

func (s *Store) migrate() error {
	var version int
	if err := s.db.QueryRow("PRAGMA user_version").Scan(&version); err != nil {
		return err
	}
	files, err := fs.Glob(migrations, "sql/*.sql")
	if err != nil {
		return err
	}
	sort.Strings(files)
	latest := 0
	for _, f := range files {
		n, err := strconv.Atoi(strings.SplitN(filepath.Base(f), "_", 2)[0])
		if err != nil {
			return fmt.Errorf("migration %s: bad name", f)
		}
		latest = max(latest, n)
		body, err := migrations.ReadFile(f)
		if err != nil {
			return err
		}
		if n <= version {
			// A migration from a branch that merged after a higher-numbered
			// one was applied is idempotent and says so: it runs again.
			if strings.HasPrefix(string(body), rerunMarker) {
				if _, err := s.db.Exec(string(body)); err != nil {
					return fmt.Errorf("migration %s: %w", f, err)
				}
			}
			continue
		}
		tx, err := s.db.Begin()
		if err != nil {
			return err
		}
		if _, err := tx.Exec(string(body)); err != nil {
			tx.Rollback()
			return fmt.Errorf("migration %s: %w", f, err)
		}
		if _, err := tx.Exec(fmt.Sprintf("PRAGMA user_version = %d", n)); err != nil {
			tx.Rollback()
			return err
		}
		if err := tx.Commit(); err != nil {
			return fmt.Errorf("migration %s: %w", f, err)
		}
	}
	if version > latest {
		return fmt.Errorf("database schema version %d is newer than this program knows (%d): upgrade parley", version, latest)
	}
	return nil
}

// Close closes the database.
func (s *Store) Close() error {
	var err error
	if s.ckpt != nil {
		err = s.ckpt.close() // first: the last connection to close checkpoints
	}
	for _, st := range []*sql.Stmt{s.insertRoom, s.insertInbox, s.insertOutbox, s.pendingFor, s.delivered, s.deliveredMany} {
		st.Close()
	}
	return errors.Join(err, s.db.Close())
}

// Snapshot writes a consistent copy of the whole database to path (which
// must not exist), while the store stays in use: for taking one's data
// elsewhere.
func (s *Store) Snapshot(path string) error {
	if _, err := s.db.Exec(`VACUUM INTO ?`, path); err != nil {
		return fmt.Errorf("snapshot store: %w", err)
	}
	return nil
}

// Path is the database file ("" for memory).
func (s *Store) Path() string { return s.path }

func ms(t time.Time) int64 { return t.UnixMilli() }

var _ storage.Store = (*Store)(nil)

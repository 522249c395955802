package store

import (
	"database/sql"
	"fmt"
	"os"
	"sync"
	"time"
)

// Checkpoints of the write-ahead log run off the writers' path, on a
// connection of their own in the background.
//
// SQLite's default is that the commit which takes the WAL past 1,000
// pages copies them into the database file then and there, with two
// fsyncs (the WAL, then the database) even under synchronous=NORMAL: on
// this project's VMs one commit in ~250 took ~2 ms, and a DM write cost
// 174 µs on average against 60 µs without it. Here a second connection
// runs PASSIVE checkpoints (they never block a writer nor wait for one):
// every checkpointBusy while the WAL grows, backing off to
// checkpointIdle when nothing changes. The writers' own automatic
// checkpoint stays as a backstop at walBackstopPages, should this one
// fall behind.
//
// Durability is unchanged: a commit is in the WAL when it returns (which
// survives kill -9), and a checkpoint syncs what it copies before the WAL
// is reused, as before; only the connection that does it moved.
const (
	checkpointBusy   = 100 * time.Millisecond
	checkpointIdle   = 2 * time.Second
	walBackstopPages = 10000
	// walSizeLimit is what the WAL file is cut back to when it starts
	// over, should a burst have grown it.
	walSizeLimit = 16 << 20
)

// walPragmas are the DSN settings of the writers' connection about the
// checkpoints.
var walPragmas = fmt.Sprintf("&_pragma=wal_autocheckpoint(%d)&_pragma=journal_size_limit(%d)", walBackstopPages, walSizeLimit)

// checkpointer runs the background checkpoints of one database file.
type checkpointer struct {
	db       *sql.DB // connects on its first checkpoint
	wal      string  // the WAL file
	stop     chan struct{}
	done     chan struct{}
	stopOnce sync.Once
}

// startCheckpointer starts the checkpoint loop of the WAL database at path
// (which the store opened already). Its connection is made on the first
// checkpoint, once the WAL has frames: a node that writes nothing (an
// idle `parley join`) never pays for a second connection (~0.2 MB of
// SQLite's memory, and its schema read).
func startCheckpointer(path string) (*checkpointer, error) {
	// synchronous=NORMAL here too: it is this connection's setting that
	// decides whether a checkpoint syncs (it does under NORMAL and FULL).
	db, err := sql.Open("sqlite", "file:"+path+"?_pragma=synchronous(NORMAL)&_pragma=busy_timeout(5000)")
	if err != nil {
		return nil, fmt.Errorf("checkpoint connection: %w", err)
	}
	db.SetMaxOpenConns(1)
	c := &checkpointer{db: db, wal: path + "-wal", stop: make(chan struct{}), done: make(chan struct{})}
	go c.run()
	return c, nil
}

// checkpoint runs one PASSIVE checkpoint: it copies what no reader still
// needs and returns the WAL's frames and how many of them are in the
// database file now.
func (c *checkpointer) checkpoint() (walState, error) {
	var busy int
	var w walState
	if err := c.db.QueryRow(`PRAGMA wal_checkpoint(PASSIVE)`).Scan(&busy, &w.frames, &w.copied); err != nil {
		return walState{}, err
	}
	return w, nil
}

type walState struct{ frames, copied int64 }

func (c *checkpointer) run() {
	defer close(c.done)
	wait := checkpointBusy
	t := time.NewTimer(wait)
	defer t.Stop()
	var last walState
	for {
		select {
		case <-c.stop:
			return
		case <-t.C:
		}
		if !c.walWritten() {
			wait = min(2*wait, checkpointIdle) // nothing written yet
			t.Reset(wait)
			continue
		}
		// An error (the disk is full, say) is the writers' to report on
		// their next write; the backstop checkpoint still holds.
		w, err := c.checkpoint()
		if err == nil && w == last && w.copied >= w.frames {
			wait = min(2*wait, checkpointIdle) // nothing new
		} else {
			wait = checkpointBusy
		}
		last = w
		t.Reset(wait)
	}
}

// walWritten reports whether the WAL file has ever held a frame: SQLite
// creates it empty and, once written, reuses it from the start rather
// than truncating it to nothing.
func (c *checkpointer) walWritten() bool {
	fi, err := os.Stat(c.wal)
	return err == nil && fi.Size() > 0
}

// close stops the loop and closes the connection (before the writers'
// connection, whose close makes the last checkpoint).
func (c *checkpointer) close() error {
	c.stopOnce.Do(func() { close(c.stop) })
	<-c.done
	return c.db.Close()
}

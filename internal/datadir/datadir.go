// Package datadir finds Parley's data directory and makes sure only one
// process uses it at a time (two nodes with one identity would fight over
// the same peer ID).
package datadir

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
)

// Default returns $XDG_DATA_HOME/parley, else ~/.local/share/parley.
func Default() string {
	if d := os.Getenv("XDG_DATA_HOME"); d != "" {
		return filepath.Join(d, "parley")
	}
	home, err := os.UserHomeDir()
	if err != nil || home == "" {
		return filepath.Join(".", ".parley")
	}
	return filepath.Join(home, ".local", "share", "parley")
}

// ErrInUse means another process holds the directory's lock.
var ErrInUse = errors.New("data directory is in use by another parley process")

// Lock creates dir if needed and takes its lock; Unlock releases it. The
// lock goes away with the process, so a crash never leaves it stale.
func Lock(dir string) (*DirLock, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("create data directory: %w", err)
	}
	f, err := os.OpenFile(filepath.Join(dir, "lock"), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("open data directory lock: %w", err)
	}
	if err := lockFile(f); err != nil {
		f.Close()
		return nil, fmt.Errorf("%s: %w (use --data to pick another one)", dir, err)
	}
	return &DirLock{f: f}, nil
}

// DirLock is a held data-directory lock.
type DirLock struct{ f *os.File }

// Unlock releases the lock.
func (l *DirLock) Unlock() error { return l.f.Close() }

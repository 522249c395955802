//go:build unix

package dockertest

import (
	"os"
	"path/filepath"
	"syscall"
)

// lockSwarm opens the swarm users' lock file and locks it exclusively.
func lockSwarm() (*os.File, error) {
	f, err := os.OpenFile(filepath.Join(os.TempDir(), "parley-dockertest-swarm.lock"), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, err
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		f.Close()
		return nil, err
	}
	return f, nil
}

// shareLock turns the lock into a shared one.
func shareLock(f *os.File) error { return syscall.Flock(int(f.Fd()), syscall.LOCK_SH) }

// tryExclusive takes the lock exclusively if no one else holds it.
func tryExclusive(f *os.File) bool {
	return syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB) == nil
}

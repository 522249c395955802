//go:build !unix

package dockertest

import (
	"os"
	"path/filepath"
)

// Without flock every process counts as the only user of the swarm.

func lockSwarm() (*os.File, error) {
	return os.OpenFile(filepath.Join(os.TempDir(), "parley-dockertest-swarm.lock"), os.O_CREATE|os.O_RDWR, 0o600)
}

func shareLock(*os.File) error { return nil }

func tryExclusive(*os.File) bool { return true }

package datadir_test

import (
	"errors"
	"testing"

	"github.com/parley-chat/parley/internal/datadir"
)

func TestSecondLockIsRefusedUntilUnlock(t *testing.T) {
	dir := t.TempDir()
	l, err := datadir.Lock(dir)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := datadir.Lock(dir); !errors.Is(err, datadir.ErrInUse) {
		t.Fatalf("second lock: got %v, want ErrInUse", err)
	}
	l.Unlock()
	l2, err := datadir.Lock(dir)
	if err != nil {
		t.Fatalf("lock after unlock: %v", err)
	}
	l2.Unlock()
}

func TestDefaultFollowsXDG(t *testing.T) {
	t.Setenv("XDG_DATA_HOME", "/x/data")
	if got := datadir.Default(); got != "/x/data/parley" {
		t.Errorf("Default() = %q, want /x/data/parley", got)
	}
}

//go:build linux

package store_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/parley-chat/parley/internal/store"
)

// On a full disk, opening the store is a clear error, not a crash or a
// half-made database.
func TestFullDiskIsAClearError(t *testing.T) {
	if os.Getuid() != 0 {
		t.Skip("needs root to mount a small tmpfs")
	}
	dir := t.TempDir()
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", dir).CombinedOutput(); err != nil {
		t.Skipf("cannot mount a tmpfs: %v: %s", err, out)
	}
	t.Cleanup(func() { exec.Command("umount", dir).Run() })
	// Fill it.
	f, err := os.Create(filepath.Join(dir, "filler"))
	if err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 4096)
	for {
		if _, err := f.Write(buf); err != nil {
			break
		}
	}
	f.Close()
	_, err = store.Open(filepath.Join(dir, "data"))
	if err == nil {
		t.Fatal("opening a store on a full disk succeeded")
	}
	if !strings.Contains(err.Error(), "open store") {
		t.Errorf("error %q does not say what failed", err)
	}
	t.Logf("error on a full disk: %v", err)
}

package main_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/parley-chat/parley/internal/proctest"
)

// docker/release.sh cross-compiles static binaries with the version and
// commit stamped in, and their SHA256SUMS. One foreign target (Windows on
// arm64) keeps cross-compiling green; it takes minutes with a cold build
// cache and seconds with a warm one, so -short skips it.
func TestReleaseBuildsStampedStaticBinaries(t *testing.T) {
	if testing.Short() {
		t.Skip("cross-compiles: skipped with -short")
	}
	if _, err := exec.LookPath("sha256sum"); err != nil {
		t.Skip("release.sh needs sha256sum")
	}
	root, err := proctest.ModuleRoot()
	if err != nil {
		t.Fatal(err)
	}
	out := t.TempDir()
	native := runtime.GOOS + "/" + runtime.GOARCH
	cmd := exec.Command(filepath.Join(root, "docker", "release.sh"), out)
	cmd.Env = append(os.Environ(), "VERSION=v1.2.3-test", "COMMIT=0123abc", "TARGETS="+native+" windows/arm64")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("release.sh: %v\n%s", err, b)
	}
	sums, err := os.ReadFile(filepath.Join(out, "SHA256SUMS"))
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"parley-v1.2.3-test-windows-arm64.exe", "parley-v1.2.3-test-" + runtime.GOOS + "-" + runtime.GOARCH} {
		if !strings.Contains(string(sums), "  "+name+"\n") {
			t.Errorf("SHA256SUMS lacks %s:\n%s", name, sums)
		}
	}
	check := exec.Command("sha256sum", "-c", "SHA256SUMS")
	check.Dir = out
	if b, err := check.CombinedOutput(); err != nil {
		t.Errorf("sha256sum -c: %v\n%s", err, b)
	}
	got, err := exec.Command(filepath.Join(out, "parley-v1.2.3-test-"+runtime.GOOS+"-"+runtime.GOARCH), "version").Output()
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(string(got), "parley v1.2.3-test (commit 0123abc,") {
		t.Errorf("parley version says %q, want the stamped version and commit", got)
	}
}

// Package chromium finds Debian's chromium and starts it headless, the
// same way for the browser tests and the page benchmark.
package chromium

import (
	"context"
	"os"
	"os/exec"
	"testing"

	"github.com/chromedp/chromedp"
)

// Find returns the chromium to drive ($CHROMIUM, or chromium on $PATH),
// or "" when there is none.
func Find() string {
	if p := os.Getenv("CHROMIUM"); p != "" {
		return p
	}
	for _, name := range []string{"chromium", "chromium-browser"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	return ""
}

// Require returns the chromium for a test, or skips it with a clear
// message; with CHROMIUM_REQUIRE=1 (CI) a missing chromium fails it.
func Require(t testing.TB) string {
	t.Helper()
	p := Find()
	switch {
	case p != "":
	case os.Getenv("CHROMIUM_REQUIRE") == "1":
		t.Fatal("chromium not found and CHROMIUM_REQUIRE=1: install it (apt-get install chromium) or set CHROMIUM=/path/to/chromium")
	default:
		t.Skip("chromium not found: the browser test needs it (apt-get install chromium); CHROMIUM_REQUIRE=1 makes this a failure")
	}
	return p
}

// Allocator starts exec (headless, no GPU, no network beyond what the
// page asks for, its own profile in dir) with a window of w×h; cancel
// stops it.
func Allocator(ctx context.Context, exec, dir string, w, h int) (context.Context, context.CancelFunc) {
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(exec),
		chromedp.Headless,
		chromedp.DisableGPU,
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("no-proxy-server", true),
		chromedp.WindowSize(w, h),
		chromedp.UserDataDir(dir),
	)
	if os.Geteuid() == 0 {
		opts = append(opts, chromedp.NoSandbox) // chromium refuses to run as root with its sandbox
	}
	return chromedp.NewExecAllocator(ctx, opts...)
}

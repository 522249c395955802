package netlab

import (
	"context"
	"os"
	"testing"
	"time"
)

// RequireEnv names the environment variable that makes Setup fail, rather than skip, a test when
// labs are unavailable: set it in CI, where a skip would hide a runner without root or tools.
const RequireEnv = "NETLAB_REQUIRE"

// setupTimeout bounds New in Setup.
const setupTimeout = time.Minute

// Setup builds a lab for a test and closes it when the test ends. It skips the test, saying why, when
// Available reports an error (or fails it, if RequireEnv is set), and fails it when New does.
func Setup(tb testing.TB, cfg Config) *Lab {
	tb.Helper()
	skipUnlessAvailable(tb)
	ctx, cancel := context.WithTimeout(tb.Context(), setupTimeout)
	defer cancel()
	l, err := New(ctx, cfg)
	if err != nil {
		tb.Fatalf("netlab.New: %v", err)
	}
	tb.Cleanup(func() {
		if err := l.Close(); err != nil {
			tb.Errorf("netlab: Close: %v", err)
		}
	})
	return l
}

// skipUnlessAvailable skips the test when Available reports an error, or fails it if RequireEnv is set.
func skipUnlessAvailable(tb testing.TB) {
	tb.Helper()
	if err := Available(); err != nil {
		if os.Getenv(RequireEnv) != "" {
			tb.Fatalf("%v (%s is set: failing instead of skipping)", err, RequireEnv)
		}
		tb.Skipf("skipping: %v", err)
	}
}

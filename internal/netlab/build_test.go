package netlab

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// TestNewCleansUpAfterFailure makes the second router's rules fail to load and checks that New
// reports the command and removes every namespace it had made.
func TestNewCleansUpAfterFailure(t *testing.T) {
	skipUnlessAvailable(t)
	var added []string
	nftCalls := 0
	failing := func(ctx context.Context, stdin string, name string, args ...string) ([]byte, error) {
		if len(args) >= 3 && args[0] == "netns" && args[1] == "add" {
			added = append(added, args[2])
		}
		if slices.Contains(args, "nft") {
			if nftCalls++; nftCalls == 2 {
				stdin = "this is not an nft ruleset\n"
			}
		}
		return runCommand(ctx, stdin, name, args...)
	}
	l, err := build(t.Context(), Config{}, failing)
	if err == nil {
		l.Close()
		t.Fatal("build succeeded, want the nft failure")
	}
	t.Logf("build: %v", err)
	for _, want := range []string{"ip netns exec ", "natB nft -f -", "syntax error"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not contain %q", err, want)
		}
	}
	if len(added) != 11 {
		t.Fatalf("%d namespaces added before the failure, want 11", len(added))
	}
	for _, ns := range added {
		if _, err := os.Stat(filepath.Join(netnsDir, ns)); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("namespace %s left behind (stat: %v)", ns, err)
		}
	}
}

func TestNewRejectsInvalidMode(t *testing.T) {
	_, err := build(t.Context(), Config{NATB: 7}, func(context.Context, string, string, ...string) ([]byte, error) {
		t.Fatal("build ran a command")
		return nil, nil
	})
	if err == nil {
		t.Fatal("build accepted NAT mode 7")
	}
}

package tui

import (
	"context"
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/parley-chat/parley/chat"
	"github.com/parley-chat/parley/internal/app"
	"github.com/parley-chat/parley/internal/testutil"
	"github.com/parley-chat/parley/internal/tmuxtest"
)

const crashHelperEnv = "PARLEY_TUI_CRASH_HELPER"

// crashing panics when told to send "crash".
type crashing struct{ Backend }

func (c crashing) Execute(ctx context.Context, cmd app.Command) (app.Result, error) {
	if cmd.Kind == app.Say && cmd.Text == "crash" {
		panic("crash requested by the test")
	}
	return c.Backend.Execute(ctx, cmd)
}

// TestCrashHelper is the child process of TestTerminalRestoredAfterACrash:
// the UI on a loopback node, in the terminal tmux gives it.
func TestCrashHelper(t *testing.T) {
	if os.Getenv(crashHelperEnv) != "1" {
		t.Skip("runs only as the child process of TestTerminalRestoredAfterACrash")
	}
	c := testutil.NewChat(t, testutil.NewNode(t), chat.WithNick("crasher"))
	if err := c.Join("lobby"); err != nil {
		t.Fatal(err)
	}
	a := app.New(c.Service)
	err := run(context.Background(), crashing{NewBackend(a, "lobby")}, a,
		Config{Rooms: []string{"lobby"}, In: os.Stdin, Out: os.Stdout, Err: os.Stderr})
	fmt.Println("run returned:", err)
	if err != nil {
		os.Exit(3)
	}
	os.Exit(0)
}

// A panic inside the UI restores the terminal (mode, main screen, mouse
// off, cursor shown) and says what happened.
func TestTerminalRestoredAfterACrash(t *testing.T) {
	tm := tmuxtest.New(t)
	bin, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	tm.Start("crash", 80, 24, fmt.Sprintf("%s=1 %s -test.run='^TestCrashHelper$'; s=$?; stty -a; echo helper-exit=$s; exec sleep 600",
		crashHelperEnv, tmuxtest.Quote(bin)))
	tm.WaitText("crash", "#lobby>")
	if got := tm.Display("crash", "#{alternate_on}"); got != "1" {
		t.Fatalf("the UI is not on the alternate screen (%q)", got)
	}
	tm.Type("crash", "crash")
	tm.Keys("crash", "Enter")
	tm.WaitText("crash", "helper-exit=")
	all := tm.All("crash")
	for _, want := range []string{"helper-exit=3", "the terminal UI crashed; the terminal was restored", "panic: crash requested by the test", "crash_test.go"} {
		if !strings.Contains(all, want) {
			t.Errorf("after the crash the terminal does not show %q:\n%s", want, all)
		}
	}
	if missing := tmuxtest.MissingModes(all, "icanon", "echo", "isig", "icrnl"); len(missing) > 0 {
		t.Errorf("terminal modes %q not restored; the terminal shows:\n%s", missing, all)
	}
	if got := tm.Display("crash", "#{alternate_on} #{mouse_any_flag} #{cursor_flag}"); got != "0 0 1" {
		t.Errorf("after the crash: alternate screen, mouse, cursor = %q, want \"0 0 1\"", got)
	}
}

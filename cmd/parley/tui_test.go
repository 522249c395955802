package main_test

import (
	"fmt"
	"net"
	"os/exec"
	"strings"
	"testing"

	"github.com/parley-chat/parley/internal/tmuxtest"
)

// freePort returns a TCP port on 127.0.0.1 that was free a moment ago,
// for a node whose address another node must know before it starts.
func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// peerID creates the identity in data and returns its peer ID.
func peerID(t *testing.T, data string) string {
	t.Helper()
	out, err := exec.Command(binary, "id", "--data", data).Output()
	if err != nil {
		t.Fatalf("parley id: %v", err)
	}
	return strings.TrimSpace(string(out))
}

// rowWith returns the first row of screen that contains text.
func rowWith(screen []string, text string) string {
	for _, l := range screen {
		if strings.Contains(l, text) {
			return l
		}
	}
	return ""
}

// Two nodes on loopback, each with the full-screen UI in a terminal
// (tmux): a line typed in one shows on the other's screen, in the pane of
// its room; /quit and Ctrl+C end them and leave the terminal as it was.
func TestFullScreenUIInATerminal(t *testing.T) {
	tm := tmuxtest.New(t)
	dataA, dataB := t.TempDir(), t.TempDir()
	idA := peerID(t, dataA)
	port := freePort(t)
	// After the program, the shell says how it ended and what mode the
	// terminal is in, then waits (a dead pane would hide the cursor).
	after := `; s=$?; stty -a; echo "parley-exit=$s"; exec sleep 600`
	tm.Start("alice", 100, 30, fmt.Sprintf("%s join lobby dev --nick alice --data %s --listen /ip4/127.0.0.1/tcp/%d --no-mdns%s",
		tmuxtest.Quote(binary), tmuxtest.Quote(dataA), port, after))
	tm.WaitText("alice", "#lobby>")
	tm.Start("bob", 100, 30, fmt.Sprintf("%s join lobby --nick bob --data %s --listen /ip4/127.0.0.1/tcp/0 --no-mdns --bootstrap /ip4/127.0.0.1/tcp/%d/p2p/%s%s",
		tmuxtest.Quote(binary), tmuxtest.Quote(dataB), port, idA, after))

	if got := tm.Display("alice", "#{alternate_on} #{mouse_any_flag}"); got != "1 1" {
		t.Errorf("alice's terminal: alternate screen and mouse %q, want \"1 1\"", got)
	}
	tm.WaitText("bob", "#lobby · 1 peer here")
	tm.WaitText("alice", "#lobby · 1 peer here")

	// Words that name keys (up, end, …) arrive in one read here: they
	// are text all the same.
	tm.Type("bob", "hello from bob: up down left right end")
	tm.Keys("bob", "Enter")
	scr := tm.WaitText("alice", "hello from bob: up down left right end")
	// In the conversation pane, with the author, in #lobby (open, the
	// second room of the sorted list).
	if row := rowWith(scr, "hello from bob"); !strings.Contains(row, "│") || !strings.Contains(row, "bob[") {
		t.Errorf("the line on alice's screen %q is not in the conversation pane with its author", row)
	}
	if !strings.Contains(scr[0], "#lobby") {
		t.Errorf("alice's conversation header %q is not #lobby", scr[0])
	}

	// In another room, a line to #lobby is counted, not shown.
	tm.Keys("alice", "M-1")
	tm.WaitText("alice", "#dev>")
	tm.Type("bob", "second line")
	tm.Keys("bob", "Enter")
	tm.WaitText("bob", "second line")
	scr = tm.WaitFor("alice", "an unread count on #lobby", func(s []string) bool {
		left, _, _ := strings.Cut(rowWith(s, "#lobby"), "│")
		return strings.HasSuffix(strings.TrimSpace(left), "1")
	})
	if tmuxtest.Contains(scr, "second line") || tmuxtest.Contains(scr, "hello from bob") {
		t.Errorf("#dev shows #lobby's lines:\n%s", strings.Join(scr, "\n"))
	}

	// A multi-line paste is one message.
	tm.Keys("alice", "M-2")
	tm.WaitText("alice", "#lobby>")
	tm.Paste("alice", "first pasted\nsecond pasted")
	tm.Keys("alice", "Enter")
	scr = tm.WaitText("bob", "second pasted")
	for i, l := range scr {
		if strings.Contains(l, "first pasted") && (i+1 >= len(scr) || !strings.Contains(scr[i+1], "second pasted") || strings.Contains(scr[i+1], "alice[")) {
			t.Errorf("the paste did not arrive as one message of two lines:\n%s", strings.Join(scr, "\n"))
		}
	}

	// A resize redraws for the new size.
	tm.Resize("alice", 80, 24)
	tm.WaitFor("alice", "a redraw at 80×24", func(s []string) bool {
		return len(s) == 24 && strings.HasPrefix(s[23], "#lobby>") && strings.Contains(s[0], "#lobby")
	})

	tm.Type("alice", "/quit")
	tm.Keys("alice", "Enter")
	tm.Keys("bob", "C-c")
	for _, name := range []string{"alice", "bob"} {
		scr := tm.WaitText(name, "parley-exit=")
		if !tmuxtest.Contains(scr, "parley-exit=0") {
			t.Errorf("%s did not exit with status 0:\n%s", name, strings.Join(scr, "\n"))
		}
		stty := strings.Join(scr, " ")
		if missing := tmuxtest.MissingModes(stty, "icanon", "echo", "isig", "icrnl"); len(missing) > 0 {
			t.Errorf("%s: terminal modes %q not restored; stty -a says:\n%s", name, missing, stty)
		}
		if got := tm.Display(name, "#{alternate_on} #{mouse_any_flag} #{cursor_flag}"); got != "0 0 1" {
			t.Errorf("%s: after exit alternate screen, mouse, cursor = %q, want \"0 0 1\"", name, got)
		}
	}
}

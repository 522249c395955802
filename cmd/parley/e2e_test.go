package main_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/parley-chat/parley/internal/proctest"
	"github.com/parley-chat/parley/internal/store"
)

// The end-to-end tests drive the real binary, built once for the package.
var binary string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "parley-e2e")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	root, err := proctest.ModuleRoot()
	if err == nil {
		binary, err = proctest.Build(context.Background(), root, dir)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// proc is a running `parley ... --json` whose events are recorded; a
// failed wait fails the test.
type proc = proctest.Test

// start runs the binary with args.
func start(t *testing.T, name string, args ...string) *proc {
	t.Helper()
	return proctest.StartTest(t, name, exec.Command(binary, args...))
}

func loopbackArgs(t *testing.T, args ...string) []string {
	return append(args, proctest.LoopbackFlags(t.TempDir())...)
}

// Three nodes in a line on loopback: B bootstraps from A, C from B. A and
// C find each other through the DHT rendezvous of "lobby", then room
// messages flow both ways and a DM from A to C is delivered.
func TestThreeNodesChatAndDM(t *testing.T) {
	a := start(t, "alice", loopbackArgs(t, "join", "lobby", "--nick", "alice")...)
	aID, aAddr := a.Ready()
	b := start(t, "bob", loopbackArgs(t, "join", "lobby", "--nick", "bob", "--bootstrap", aAddr)...)
	bID, bAddr := b.Ready()
	c := start(t, "carol", loopbackArgs(t, "join", "lobby", "--nick", "carol", "--bootstrap", bAddr)...)
	cID, _ := c.Ready()

	a.Event("peer-joined", "room", "lobby", "peer", cID)
	c.Event("peer-joined", "room", "lobby", "peer", aID)

	a.Send("hello from alice")
	c.Send(`{"cmd":"send","room":"lobby","text":"hello from carol"}`)
	for _, p := range []*proc{a, b, c} {
		m := p.Event("message", "text", "hello from alice")
		if m["from"] != aID || m["nick"] != "alice" || m["room"] != "lobby" {
			t.Errorf("%s: message %v, want from %s nick alice room lobby", p.Name(), m, aID)
		}
		if _, err := time.Parse(time.RFC3339Nano, fmt.Sprint(m["sent_at"])); err != nil {
			t.Errorf("%s: sent_at %v: %v", p.Name(), m["sent_at"], err)
		}
		p.Event("message", "text", "hello from carol", "from", cID)
	}

	a.Send("/dm " + cID + " a secret for carol")
	sent := a.Event("sent", "to", cID)
	dm := c.Event("dm", "text", "a secret for carol")
	if dm["from"] != aID || dm["id"] != sent["id"] {
		t.Errorf("carol got dm %v, want id %v from %s", dm, sent["id"], aID)
	}
	a.Event("delivered", "id", sent["id"].(string), "to", cID)
	for _, ev := range b.Snapshot() {
		if ev["event"] == "dm" {
			t.Errorf("bob saw the DM between alice and carol: %v", ev)
		}
	}
	_ = bID

	for _, p := range []*proc{a, b, c} {
		for _, ev := range p.Snapshot() {
			if ev["event"] == "NOT-JSON" {
				t.Errorf("%s printed a line that is not a JSON event: %v", p.Name(), ev["line"])
			}
		}
		p.CloseAndWait()
	}
}

// What a user gets wrong on the command line is a usage error: status 2.
func TestBadCommandLines(t *testing.T) {
	tests := []struct {
		args []string
		want string
	}{
		{nil, "usage"},
		{[]string{"frobnicate"}, "unknown command"},
		{[]string{"join"}, "at least one room"},
		{[]string{"join", "lobby", "--nope"}, "not defined"},
		{[]string{"join", "--bogus", "lobby"}, "not defined"},
		{[]string{"join", "bad/room"}, "room name"},
		{[]string{"join", "parley://join/eyJ2Ijo5LCJyb29tIjoieCJ9"}, "newer Parley"},
		{[]string{"join", "parley://join/eyJ2Ijox"}, "damaged"},
		{[]string{"join", "lobby", "--bootstrap", "/ip4/127.0.0.1/tcp/1"}, "/p2p/"},
		{[]string{"join", "lobby", "--listen", "not-a-multiaddr"}, "--listen"},
		{[]string{"join", "lobby", "--nick", strings.Repeat("n", 40)}, "nick"},
		{[]string{"join", "lobby", "--nick", "a b"}, "spaces are not allowed"},
		{[]string{"join", "lobby", "--nick", "alice[FTbHkd]>"}, "imitate someone else's tag"},
		{[]string{"join", "lobby", "--log-level", "loud"}, "log-level"},
		{[]string{"relay", "--max-circuits", "0"}, "positive"},
		{[]string{"relay", "--max-message-bytes", "0"}, "positive"},
		{[]string{"relay", "--max-message-bytes", "9000"}, "--max-message-bytes must be at most 8192"},
		{[]string{"relay", "--rate", "NaN"}, "positive"},
		{[]string{"id", "extra"}, "unexpected"},
		{[]string{"join", "lobby", "--metrics", "0.0.0.0:9464"}, "--metrics-allow-remote"},
		{[]string{"relay", "--metrics", "9464"}, "HOST:PORT"},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			cmd := exec.Command(binary, append(tt.args, "--data", t.TempDir())...)
			if tt.args == nil {
				cmd = exec.Command(binary)
			}
			var stdout, stderr strings.Builder
			cmd.Stdout, cmd.Stderr = &stdout, &stderr
			cmd.Run()
			if code := cmd.ProcessState.ExitCode(); code != 2 {
				t.Errorf("exit status %d, want 2; stderr: %s", code, stderr.String())
			}
			if !strings.Contains(stderr.String(), tt.want) {
				t.Errorf("stderr %q does not mention %q", stderr.String(), tt.want)
			}
			if stdout.Len() > 0 {
				t.Errorf("usage error wrote to stdout: %q", stdout.String())
			}
			// Usage and the error each once (the flag package printed the
			// error a second time).
			if n := strings.Count(stderr.String(), "usage: parley"); n > 1 {
				t.Errorf("usage printed %d times: %s", n, stderr.String())
			}
			if n := strings.Count(stderr.String(), "provided but not defined"); n > 1 {
				t.Errorf("the error printed %d times: %s", n, stderr.String())
			}
		})
	}
}

func TestIDIsStableAndCorruptKeyIsAnError(t *testing.T) {
	data := t.TempDir()
	id := func() (string, string, int) {
		cmd := exec.Command(binary, "id", "--data", data)
		var stdout, stderr strings.Builder
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		cmd.Run()
		return strings.TrimSpace(stdout.String()), stderr.String(), cmd.ProcessState.ExitCode()
	}
	first, _, code := id()
	if code != 0 || !strings.HasPrefix(first, "12D3Koo") {
		t.Fatalf("parley id = %q (status %d), want a peer ID", first, code)
	}
	if second, _, _ := id(); second != first {
		t.Errorf("peer ID changed across runs: %s then %s", first, second)
	}
	if err := os.WriteFile(filepath.Join(data, "identity.key"), []byte("garbage"), 0o600); err != nil {
		t.Fatal(err)
	}
	out, stderr, code := id()
	if code != 1 || out != "" || !strings.Contains(stderr, "corrupt") {
		t.Errorf("with a corrupt key: status %d, stdout %q, stderr %q; want status 1 and a message saying it is corrupt", code, out, stderr)
	}
}

func TestDataDirInUse(t *testing.T) {
	data := t.TempDir()
	args := append([]string{"join", "lobby"}, proctest.LoopbackFlags(data)...)
	a := start(t, "first", args...)
	a.Ready()
	cmd := exec.Command(binary, args...)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	cmd.Run()
	if code := cmd.ProcessState.ExitCode(); code != 1 || !strings.Contains(stderr.String(), "in use") {
		t.Errorf("second node on the same data dir: status %d, stderr %q; want status 1 and 'in use'", code, stderr.String())
	}
	a.CloseAndWait()
}

// The relay prints its full multiaddrs, and a node can use it to find
// another one.
func TestRelayIsABootstrapPeer(t *testing.T) {
	r := start(t, "relay", "relay", "--json", "--data", t.TempDir(), "--listen", "/ip4/127.0.0.1/tcp/0")
	rID, rAddr := r.Ready()
	if !strings.HasSuffix(rAddr, "/p2p/"+rID) {
		t.Errorf("relay address %s does not end in /p2p/%s", rAddr, rID)
	}
	a := start(t, "alice", loopbackArgs(t, "join", "lobby", "--nick", "alice", "--bootstrap", rAddr)...)
	aID, _ := a.Ready()
	b := start(t, "bob", loopbackArgs(t, "join", "lobby", "--nick", "bob", "--bootstrap", rAddr)...)
	bID, _ := b.Ready()
	a.Event("peer-joined", "peer", bID)
	b.Event("peer-joined", "peer", aID)
	b.Send("hi alice")
	a.Event("message", "text", "hi alice", "from", bID)
	a.CloseAndWait()
	b.CloseAndWait()
	r.Signal(os.Interrupt)
	r.WaitExit() // status 0 after SIGINT
}

// Behind a port forward, the relay advertises the address it is told.
func TestRelayAnnounce(t *testing.T) {
	r := start(t, "relay", "relay", "--json", "--data", t.TempDir(), "--listen", "/ip4/127.0.0.1/tcp/0",
		"--announce", "/ip4/1.2.3.4/tcp/4001")
	id, addr := r.Ready()
	if want := "/ip4/1.2.3.4/tcp/4001/p2p/" + id; addr != want {
		t.Errorf("relay advertises %s, want %s", addr, want)
	}
	r.Signal(os.Interrupt)
	<-r.P.Exited()
}

// A node killed with SIGKILL right after acknowledging DMs has every one
// of them on disk, and its store opens cleanly.
func TestKilledNodeKeepsEveryAckedMessage(t *testing.T) {
	data := t.TempDir()
	r := start(t, "bob", append([]string{"join", "lobby", "--nick", "bob"}, proctest.LoopbackFlags(data)...)...)
	bobID, bobAddr := r.Ready()
	s := start(t, "alice", loopbackArgs(t, "join", "lobby", "--nick", "alice", "--bootstrap", bobAddr)...)
	aliceID, _ := s.Ready()
	s.Event("peer-joined", "peer", bobID)
	const dms, msgs = 30, 10
	for i := 0; i < msgs; i++ {
		s.Send(fmt.Sprintf("room line %d", i))
	}
	for i := 0; i < dms; i++ {
		s.Send(fmt.Sprintf("/dm %s dm %d", bobID, i))
	}
	isDelivered := func(ev map[string]any) bool { return ev["event"] == "delivered" }
	s.WaitNth("all DMs delivered", dms, isDelivered)
	// Room messages are stored before they are shown.
	r.WaitNth("all room lines shown", msgs, func(ev map[string]any) bool {
		return ev["event"] == "message" && strings.HasPrefix(fmt.Sprint(ev["text"]), "room line")
	})
	r.Kill() // SIGKILL, the process this test started

	st, err := store.Open(data)
	if err != nil {
		t.Fatalf("store of the killed node does not open: %v", err)
	}
	defer st.Close()
	got, err := st.ReceivedDMs(aliceID)
	if err != nil || len(got) != dms {
		t.Errorf("killed node holds %d of %d acknowledged DMs (%v)", len(got), dms, err)
	}
	lines, err := st.RecentRoomMessages("lobby", 100)
	if err != nil || len(lines) != msgs {
		t.Errorf("killed node holds %d of %d shown room messages (%v)", len(lines), msgs, err)
	}
	s.CloseAndWait()
}

// History survives a restart and is shown, marked as backfill, before live
// messages.
func TestHistoryShownAfterRestart(t *testing.T) {
	data := t.TempDir()
	args := append([]string{"join", "lobby"}, proctest.LoopbackFlags(data)...)
	a := start(t, "first run", args...)
	a.Ready()
	a.Send("remember me")
	a.Event("message", "text", "remember me")
	a.CloseAndWait()
	a = start(t, "second run", append(args, "--history", "5")...)
	a.Ready()
	if m := a.Event("message", "text", "remember me"); m["backfill"] != true {
		t.Errorf("history shown as %v, want backfill:true", m)
	}
	a.CloseAndWait()
}

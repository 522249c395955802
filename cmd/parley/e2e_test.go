package main_test

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

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
	binary = filepath.Join(dir, "parley")
	out, err := exec.Command("go", "build", "-o", binary, ".").CombinedOutput()
	if err != nil {
		fmt.Fprintf(os.Stderr, "build parley: %v\n%s", err, out)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

const timeout = 30 * time.Second

// proc is a running `parley ... --json` whose events are recorded.
type proc struct {
	t      *testing.T
	name   string
	cmd    *exec.Cmd
	stdin  io.WriteCloser
	stderr strings.Builder

	started time.Time

	mu     sync.Mutex
	events []map[string]any
	times  []time.Time // when each event arrived
	added  chan struct{}
	exited chan struct{}
}

// start runs the binary with args.
func start(t *testing.T, name string, args ...string) *proc {
	t.Helper()
	return startCmd(t, name, exec.Command(binary, args...))
}

// startCmd runs cmd (the binary, possibly wrapped) and records its events.
func startCmd(t *testing.T, name string, cmd *exec.Cmd) *proc {
	t.Helper()
	p := &proc{t: t, name: name, added: make(chan struct{}), exited: make(chan struct{}), started: time.Now()}
	p.cmd = cmd
	var err error
	if p.stdin, err = p.cmd.StdinPipe(); err != nil {
		t.Fatal(err)
	}
	stdout, err := p.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	p.cmd.Stderr = &lockedWriter{w: &p.stderr, mu: &p.mu}
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		defer close(p.exited)
		sc := bufio.NewScanner(stdout)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			var ev map[string]any
			if err := json.Unmarshal(sc.Bytes(), &ev); err != nil || ev["event"] == nil {
				ev = map[string]any{"event": "NOT-JSON", "line": sc.Text()}
			}
			p.mu.Lock()
			p.events = append(p.events, ev)
			p.times = append(p.times, time.Now())
			close(p.added)
			p.added = make(chan struct{})
			p.mu.Unlock()
		}
		p.cmd.Wait()
	}()
	t.Cleanup(func() {
		select {
		case <-p.exited:
		default:
			p.cmd.Process.Kill() // only the process this test started
			<-p.exited
		}
		if t.Failed() {
			p.mu.Lock()
			t.Logf("%s stderr:\n%s", p.name, p.stderr.String())
			p.mu.Unlock()
		}
	})
	return p
}

type lockedWriter struct {
	w  io.Writer
	mu *sync.Mutex
}

func (l *lockedWriter) Write(b []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(b)
}

func loopbackArgs(t *testing.T, args ...string) []string {
	return append(args, "--json", "--data", t.TempDir(), "--listen", "/ip4/127.0.0.1/tcp/0", "--no-mdns")
}

// waitFor returns the first event (earlier ones included) for which f holds.
func (p *proc) waitFor(what string, f func(map[string]any) bool) map[string]any {
	p.t.Helper()
	ev, _ := p.waitForAt(what, f)
	return ev
}

// waitForAt is waitFor that also says how long after start the event came.
func (p *proc) waitForAt(what string, f func(map[string]any) bool) (map[string]any, time.Duration) {
	p.t.Helper()
	return p.waitNth(what, 1, f)
}

// waitNth waits for the n-th event for which f holds.
func (p *proc) waitNth(what string, n int, f func(map[string]any) bool) (map[string]any, time.Duration) {
	p.t.Helper()
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for {
		p.mu.Lock()
		seen := 0
		for i, ev := range p.events {
			if f(ev) {
				if seen++; seen == n {
					at := p.times[i].Sub(p.started)
					p.mu.Unlock()
					return ev, at
				}
			}
		}
		added := p.added
		p.mu.Unlock()
		select {
		case <-added:
		case <-p.exited:
			p.t.Fatalf("%s exited while waiting for %s; events: %v", p.name, what, p.snapshot())
		case <-deadline.C:
			p.t.Fatalf("%s: timed out waiting for %s; events: %v", p.name, what, p.snapshot())
		}
	}
}

func (p *proc) snapshot() []map[string]any {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]map[string]any(nil), p.events...)
}

func (p *proc) event(kind string, kv ...string) map[string]any {
	p.t.Helper()
	ev, _ := p.eventAt(kind, kv...)
	return ev
}

// eventAt waits for an event of kind whose fields have the given values,
// and says how long after the process started it came.
func (p *proc) eventAt(kind string, kv ...string) (map[string]any, time.Duration) {
	p.t.Helper()
	return p.waitForAt(kind+fmt.Sprint(kv), func(ev map[string]any) bool {
		if ev["event"] != kind {
			return false
		}
		for i := 0; i+1 < len(kv); i += 2 {
			if ev[kv[i]] != kv[i+1] {
				return false
			}
		}
		return true
	})
}

func (p *proc) send(line string) {
	p.t.Helper()
	if _, err := io.WriteString(p.stdin, line+"\n"); err != nil {
		p.t.Fatalf("%s: write stdin: %v", p.name, err)
	}
}

// closeAndWait ends stdin and waits for a clean exit.
func (p *proc) closeAndWait() {
	p.t.Helper()
	p.stdin.Close()
	select {
	case <-p.exited:
	case <-time.After(timeout):
		p.t.Fatalf("%s did not exit after end of input", p.name)
	}
	if code := p.cmd.ProcessState.ExitCode(); code != 0 {
		p.t.Errorf("%s exited with status %d, want 0", p.name, code)
	}
}

func (p *proc) ready() (id, addr string) {
	p.t.Helper()
	ev := p.event("ready")
	addrs, _ := ev["addrs"].([]any)
	if len(addrs) == 0 {
		p.t.Fatalf("%s: ready event without addrs: %v", p.name, ev)
	}
	return ev["peer"].(string), addrs[0].(string)
}

// Three nodes in a line on loopback: B bootstraps from A, C from B. A and
// C find each other through the DHT rendezvous of "lobby", then room
// messages flow both ways and a DM from A to C is delivered.
func TestThreeNodesChatAndDM(t *testing.T) {
	a := start(t, "alice", loopbackArgs(t, "join", "lobby", "--nick", "alice")...)
	aID, aAddr := a.ready()
	b := start(t, "bob", loopbackArgs(t, "join", "lobby", "--nick", "bob", "--bootstrap", aAddr)...)
	bID, bAddr := b.ready()
	c := start(t, "carol", loopbackArgs(t, "join", "lobby", "--nick", "carol", "--bootstrap", bAddr)...)
	cID, _ := c.ready()

	a.event("peer-joined", "room", "lobby", "peer", cID)
	c.event("peer-joined", "room", "lobby", "peer", aID)

	a.send("hello from alice")
	c.send(`{"cmd":"send","room":"lobby","text":"hello from carol"}`)
	for _, p := range []*proc{a, b, c} {
		m := p.event("message", "text", "hello from alice")
		if m["from"] != aID || m["nick"] != "alice" || m["room"] != "lobby" {
			t.Errorf("%s: message %v, want from %s nick alice room lobby", p.name, m, aID)
		}
		if _, err := time.Parse(time.RFC3339Nano, fmt.Sprint(m["sent_at"])); err != nil {
			t.Errorf("%s: sent_at %v: %v", p.name, m["sent_at"], err)
		}
		p.event("message", "text", "hello from carol", "from", cID)
	}

	a.send("/dm " + cID + " a secret for carol")
	sent := a.event("sent", "to", cID)
	dm := c.event("dm", "text", "a secret for carol")
	if dm["from"] != aID || dm["id"] != sent["id"] {
		t.Errorf("carol got dm %v, want id %v from %s", dm, sent["id"], aID)
	}
	a.event("delivered", "id", sent["id"].(string), "to", cID)
	for _, ev := range b.snapshot() {
		if ev["event"] == "dm" {
			t.Errorf("bob saw the DM between alice and carol: %v", ev)
		}
	}
	_ = bID

	for _, p := range []*proc{a, b, c} {
		for _, ev := range p.snapshot() {
			if ev["event"] == "NOT-JSON" {
				t.Errorf("%s printed a line that is not a JSON event: %v", p.name, ev["line"])
			}
		}
		p.closeAndWait()
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
		{[]string{"join", "bad/room"}, "room name"},
		{[]string{"join", "lobby", "--bootstrap", "/ip4/127.0.0.1/tcp/1"}, "/p2p/"},
		{[]string{"join", "lobby", "--listen", "not-a-multiaddr"}, "--listen"},
		{[]string{"join", "lobby", "--nick", strings.Repeat("n", 40)}, "nick"},
		{[]string{"join", "lobby", "--log-level", "loud"}, "log-level"},
		{[]string{"relay", "--max-circuits", "0"}, "positive"},
		{[]string{"relay", "--max-message-bytes", "0"}, "positive"},
		{[]string{"relay", "--max-message-bytes", "9000"}, "--max-message-bytes must be at most 8192"},
		{[]string{"relay", "--rate", "NaN"}, "positive"},
		{[]string{"id", "extra"}, "unexpected"},
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
	a := start(t, "first", "join", "lobby", "--json", "--data", data, "--listen", "/ip4/127.0.0.1/tcp/0", "--no-mdns")
	a.ready()
	cmd := exec.Command(binary, "join", "lobby", "--json", "--data", data, "--listen", "/ip4/127.0.0.1/tcp/0", "--no-mdns")
	var stderr strings.Builder
	cmd.Stderr = &stderr
	cmd.Run()
	if code := cmd.ProcessState.ExitCode(); code != 1 || !strings.Contains(stderr.String(), "in use") {
		t.Errorf("second node on the same data dir: status %d, stderr %q; want status 1 and 'in use'", code, stderr.String())
	}
	a.closeAndWait()
}

// The relay prints its full multiaddrs, and a node can use it to find
// another one.
func TestRelayIsABootstrapPeer(t *testing.T) {
	r := start(t, "relay", "relay", "--json", "--data", t.TempDir(), "--listen", "/ip4/127.0.0.1/tcp/0")
	rID, rAddr := r.ready()
	if !strings.HasSuffix(rAddr, "/p2p/"+rID) {
		t.Errorf("relay address %s does not end in /p2p/%s", rAddr, rID)
	}
	a := start(t, "alice", loopbackArgs(t, "join", "lobby", "--nick", "alice", "--bootstrap", rAddr)...)
	aID, _ := a.ready()
	b := start(t, "bob", loopbackArgs(t, "join", "lobby", "--nick", "bob", "--bootstrap", rAddr)...)
	bID, _ := b.ready()
	a.event("peer-joined", "peer", bID)
	b.event("peer-joined", "peer", aID)
	b.send("hi alice")
	a.event("message", "text", "hi alice", "from", bID)
	a.closeAndWait()
	b.closeAndWait()
	r.cmd.Process.Signal(os.Interrupt)
	select {
	case <-r.exited:
	case <-time.After(timeout):
		t.Fatal("relay did not stop on SIGINT")
	}
	if code := r.cmd.ProcessState.ExitCode(); code != 0 {
		t.Errorf("relay exited with %d after SIGINT, want 0", code)
	}
}

// Behind a port forward, the relay advertises the address it is told.
func TestRelayAnnounce(t *testing.T) {
	r := start(t, "relay", "relay", "--json", "--data", t.TempDir(), "--listen", "/ip4/127.0.0.1/tcp/0",
		"--announce", "/ip4/1.2.3.4/tcp/4001")
	id, addr := r.ready()
	if want := "/ip4/1.2.3.4/tcp/4001/p2p/" + id; addr != want {
		t.Errorf("relay advertises %s, want %s", addr, want)
	}
	r.cmd.Process.Signal(os.Interrupt)
	<-r.exited
}

// A node killed with SIGKILL right after acknowledging DMs has every one
// of them on disk, and its store opens cleanly.
func TestKilledNodeKeepsEveryAckedMessage(t *testing.T) {
	data := t.TempDir()
	r := start(t, "bob", "join", "lobby", "--json", "--nick", "bob", "--data", data, "--listen", "/ip4/127.0.0.1/tcp/0", "--no-mdns")
	bobID, bobAddr := r.ready()
	s := start(t, "alice", loopbackArgs(t, "join", "lobby", "--nick", "alice", "--bootstrap", bobAddr)...)
	aliceID, _ := s.ready()
	s.event("peer-joined", "peer", bobID)
	const dms, msgs = 30, 10
	for i := 0; i < msgs; i++ {
		s.send(fmt.Sprintf("room line %d", i))
	}
	for i := 0; i < dms; i++ {
		s.send(fmt.Sprintf("/dm %s dm %d", bobID, i))
	}
	isDelivered := func(ev map[string]any) bool { return ev["event"] == "delivered" }
	s.waitNth("all DMs delivered", dms, isDelivered)
	// Room messages are stored before they are shown.
	r.waitNth("all room lines shown", msgs, func(ev map[string]any) bool {
		return ev["event"] == "message" && strings.HasPrefix(fmt.Sprint(ev["text"]), "room line")
	})
	r.cmd.Process.Kill() // SIGKILL, the process this test started
	<-r.exited

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
	s.closeAndWait()
}

// History survives a restart and is shown, marked as backfill, before live
// messages.
func TestHistoryShownAfterRestart(t *testing.T) {
	data := t.TempDir()
	args := []string{"join", "lobby", "--json", "--data", data, "--listen", "/ip4/127.0.0.1/tcp/0", "--no-mdns"}
	a := start(t, "first run", args...)
	a.ready()
	a.send("remember me")
	a.event("message", "text", "remember me")
	a.closeAndWait()
	a = start(t, "second run", append(args, "--history", "5")...)
	a.ready()
	if m := a.event("message", "text", "remember me"); m["backfill"] != true {
		t.Errorf("history shown as %v, want backfill:true", m)
	}
	a.closeAndWait()
}

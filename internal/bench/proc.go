package bench

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"
)

// ModuleRoot returns the directory of the go.mod of the module in the
// working directory.
func ModuleRoot() (string, error) {
	out, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		return "", fmt.Errorf("go env GOMOD: %w", err)
	}
	mod := strings.TrimSpace(string(out))
	if mod == "" || mod == os.DevNull {
		return "", errors.New("not inside a Go module: run from the parley repository")
	}
	return filepath.Dir(mod), nil
}

// BuildParley builds cmd/parley of the module at root into dir.
func BuildParley(ctx context.Context, root, dir string) (string, error) {
	bin := filepath.Join(dir, "parley")
	cmd := exec.CommandContext(ctx, "go", "build", "-o", bin, "./cmd/parley")
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("build parley: %w\n%s", err, out)
	}
	return bin, nil
}

// Proc is a running `parley ... --json` whose events (stdout lines) are
// recorded with the time they arrived, counted from just before the
// process was started.
type Proc struct {
	Name    string
	Cmd     *exec.Cmd
	Started time.Time

	stdin  io.WriteCloser
	mu     sync.Mutex
	stderr bytes.Buffer
	events []procEvent
	added  chan struct{}
	exited chan struct{}
}

type procEvent struct {
	at time.Duration
	ev map[string]any
}

// StartProc starts cmd and records its JSON events.
func StartProc(name string, cmd *exec.Cmd) (*Proc, error) {
	p := &Proc{Name: name, Cmd: cmd, added: make(chan struct{}), exited: make(chan struct{})}
	var err error
	if p.stdin, err = cmd.StdinPipe(); err != nil {
		return nil, err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	cmd.Stderr = lockedWriter{p}
	p.Started = time.Now()
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	go func() {
		defer close(p.exited)
		sc := bufio.NewScanner(stdout)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			at := time.Since(p.Started)
			var ev map[string]any
			if json.Unmarshal(sc.Bytes(), &ev) != nil || ev["event"] == nil {
				ev = map[string]any{"event": "NOT-JSON", "line": sc.Text()}
			}
			p.mu.Lock()
			p.events = append(p.events, procEvent{at, ev})
			close(p.added)
			p.added = make(chan struct{})
			p.mu.Unlock()
		}
		cmd.Wait()
	}()
	return p, nil
}

type lockedWriter struct{ p *Proc }

func (w lockedWriter) Write(b []byte) (int, error) {
	w.p.mu.Lock()
	defer w.p.mu.Unlock()
	if w.p.stderr.Len() < 1<<20 {
		w.p.stderr.Write(b)
	}
	return len(b), nil
}

// Stderr returns what the process wrote to stderr (at most 1 MB).
func (p *Proc) Stderr() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.stderr.String()
}

// Match builds an event filter: kind and field/value pairs.
func Match(kind string, kv ...string) func(map[string]any) bool {
	return func(ev map[string]any) bool {
		if ev["event"] != kind {
			return false
		}
		for i := 0; i+1 < len(kv); i += 2 {
			if fmt.Sprint(ev[kv[i]]) != kv[i+1] {
				return false
			}
		}
		return true
	}
}

// WaitFrom waits for the first event at index from or later for which f
// holds, and returns it, its index and when it arrived.
func (p *Proc) WaitFrom(from int, timeout time.Duration, what string, f func(map[string]any) bool) (map[string]any, int, time.Duration, error) {
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for {
		p.mu.Lock()
		for i := from; i < len(p.events); i++ {
			if f(p.events[i].ev) {
				e := p.events[i]
				p.mu.Unlock()
				return e.ev, i, e.at, nil
			}
		}
		from = max(from, len(p.events))
		added := p.added
		p.mu.Unlock()
		select {
		case <-added:
		case <-p.exited:
			return nil, 0, 0, fmt.Errorf("%s exited while waiting for %s; stderr: %s", p.Name, what, tail(p.Stderr()))
		case <-deadline.C:
			return nil, 0, 0, fmt.Errorf("%s: no %s within %v", p.Name, what, timeout)
		}
	}
}

// Wait waits for the first event (earlier ones included) for which f holds.
func (p *Proc) Wait(timeout time.Duration, what string, f func(map[string]any) bool) (map[string]any, time.Duration, error) {
	ev, _, at, err := p.WaitFrom(0, timeout, what, f)
	return ev, at, err
}

// Count returns the number of events so far.
func (p *Proc) Count() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.events)
}

// CountMatching returns how many events so far f holds for.
func (p *Proc) CountMatching(f func(map[string]any) bool) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	n := 0
	for _, e := range p.events {
		if f(e.ev) {
			n++
		}
	}
	return n
}

// Send writes one command line to the process's stdin.
func (p *Proc) Send(line string) error {
	_, err := io.WriteString(p.stdin, line+"\n")
	return err
}

// SendJSON writes one JSON command.
func (p *Proc) SendJSON(cmd map[string]string) error {
	b, err := json.Marshal(cmd)
	if err != nil {
		return err
	}
	return p.Send(string(b))
}

// Stop asks the process to quit (end of input) and kills it if it has
// not exited within timeout.
func (p *Proc) Stop(timeout time.Duration) {
	p.stdin.Close()
	select {
	case <-p.exited:
		return
	case <-time.After(timeout):
	}
	p.Cmd.Process.Kill()
	<-p.exited
}

// Ready waits for the ready event and returns it with the time since start.
func (p *Proc) Ready(timeout time.Duration) (map[string]any, time.Duration, error) {
	return p.Wait(timeout, "ready", Match("ready"))
}

// RSS returns the resident set size of process pid (VmRSS), in bytes.
func RSS(pid int) (int64, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			f := strings.Fields(v)
			if len(f) < 1 {
				break
			}
			kb, err := strconv.ParseInt(f[0], 10, 64)
			return kb << 10, err
		}
	}
	return 0, errors.New("no VmRSS in /proc/PID/status")
}

// addrOf returns the first address of a ready event that contains want.
func addrOf(ready map[string]any, want string) (string, error) {
	addrs, _ := ready["addrs"].([]any)
	for _, a := range addrs {
		if s, ok := a.(string); ok && strings.Contains(s, want) {
			return s, nil
		}
	}
	return "", fmt.Errorf("no address with %q in %v", want, ready["addrs"])
}

func tail(s string) string {
	const n = 2000
	if len(s) > n {
		return "…" + s[len(s)-n:]
	}
	return s
}

// Package proctest runs `parley ... --json` as a subprocess and records
// its JSON events (stdout lines) with when they arrived, for the
// end-to-end tests (cmd/parley) and the benchmarks (internal/bench).
//
// Proc is the core: its methods take a context, bound each wait by
// Proc.Timeout and return errors that name the process and end with the
// tail of its stderr. Test wraps a Proc for a test: failures are
// t.Fatal, and the process is killed when the test ends.
package proctest

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/parley-chat/parley/internal/eventlog"
)

// DefaultTimeout bounds each wait of a Proc whose Timeout is zero.
const DefaultTimeout = 30 * time.Second

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

// Build builds cmd/parley of the module at root into dir and returns the
// path of the binary.
func Build(ctx context.Context, root, dir string) (string, error) {
	return BuildPackage(ctx, root, dir, "./cmd/parley")
}

// BuildPackage builds the main package pkg (relative to root, e.g.
// "./internal/bench/floor") with the same flags as Build, into dir under
// the package's last element, and returns the path of the binary.
func BuildPackage(ctx context.Context, root, dir, pkg string) (string, error) {
	name := filepath.Base(pkg)
	bin := filepath.Join(dir, name)
	cmd := exec.CommandContext(ctx, "go", "build", "-o", bin, pkg)
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("build %s: %w\n%s", name, err, out)
	}
	return bin, nil
}

// LoopbackFlags are the flags of a node that speaks JSON, keeps its data
// in data and stays on loopback: TCP on 127.0.0.1, no mDNS.
func LoopbackFlags(data string) []string {
	return []string{"--json", "--data", data, "--listen", "/ip4/127.0.0.1/tcp/0", "--no-mdns"}
}

// Event is one JSON object from stdout. A line that is not a JSON object
// with an "event" field is recorded as {"event": "NOT-JSON", "line": ...}.
type Event = map[string]any

// Proc is a running `parley ... --json` whose events are recorded with
// the time they arrived, counted from just before the process started.
type Proc struct {
	Name    string
	Cmd     *exec.Cmd
	Timeout time.Duration // bounds each wait; DefaultTimeout if zero

	stdin  io.WriteCloser
	log    *eventlog.Log[Event]
	stderr tailBuffer
}

// Start starts cmd (the binary, possibly wrapped, with its arguments) and
// records its events. The caller stops it (Stop, CloseAndWait, Kill), or
// builds cmd with exec.CommandContext.
func Start(name string, cmd *exec.Cmd) (*Proc, error) {
	p := &Proc{Name: name, Cmd: cmd}
	var err error
	if p.stdin, err = cmd.StdinPipe(); err != nil {
		return nil, err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	cmd.Stderr = &p.stderr
	p.log = eventlog.New[Event](time.Now())
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	go func() {
		defer p.log.End()
		sc := bufio.NewScanner(stdout)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			now := time.Now()
			var ev Event
			if json.Unmarshal(sc.Bytes(), &ev) != nil || ev["event"] == nil {
				ev = Event{"event": "NOT-JSON", "line": sc.Text()}
			}
			p.log.Add(now, ev)
		}
		cmd.Wait()
	}()
	return p, nil
}

// Started returns when the process was started: event times count from it.
func (p *Proc) Started() time.Time { return p.log.Start() }

func (p *Proc) timeout() time.Duration {
	if p.Timeout > 0 {
		return p.Timeout
	}
	return DefaultTimeout
}

// Match builds an event filter: kind, then field/value pairs that must
// all hold (a value is compared with the field printed by fmt.Sprint).
func Match(kind string, kv ...string) func(Event) bool {
	return func(ev Event) bool {
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
// holds, and returns it, its index and when it arrived (since Started).
// what names the event in the error.
func (p *Proc) WaitFrom(ctx context.Context, from int, what string, f func(Event) bool) (Event, int, time.Duration, error) {
	return p.wait(ctx, from, 1, what, f)
}

// WaitNth waits for the n-th event for which f holds, earlier ones
// included, and says when it arrived.
func (p *Proc) WaitNth(ctx context.Context, what string, n int, f func(Event) bool) (Event, time.Duration, error) {
	ev, _, at, err := p.wait(ctx, 0, n, what, f)
	return ev, at, err
}

// Wait waits for the first event (earlier ones included) for which f
// holds, and says when it arrived.
func (p *Proc) Wait(ctx context.Context, what string, f func(Event) bool) (Event, time.Duration, error) {
	return p.WaitNth(ctx, what, 1, f)
}

// Event waits for an event of kind whose fields have the given values
// (see Match).
func (p *Proc) Event(ctx context.Context, kind string, kv ...string) (Event, time.Duration, error) {
	what := kind
	if len(kv) > 0 {
		what += fmt.Sprint(kv)
	}
	return p.Wait(ctx, what, Match(kind, kv...))
}

// Ready waits for the ready event.
func (p *Proc) Ready(ctx context.Context) (Event, time.Duration, error) {
	return p.Event(ctx, "ready")
}

func (p *Proc) wait(ctx context.Context, from, n int, what string, f func(Event) bool) (Event, int, time.Duration, error) {
	wctx, cancel := context.WithTimeout(ctx, p.timeout())
	defer cancel()
	ev, i, at, err := p.log.Wait(wctx, from, n, f)
	switch {
	case err == nil:
		return ev, i, at, nil
	case errors.Is(err, eventlog.ErrEnded):
		err = fmt.Errorf("%s exited (%v) while waiting for %s; stderr: %s", p.Name, p.Cmd.ProcessState, what, p.StderrTail())
	case ctx.Err() != nil:
		err = fmt.Errorf("%s: waiting for %s: %w", p.Name, what, context.Cause(ctx))
	default:
		err = fmt.Errorf("%s: no %s within %v; stderr: %s", p.Name, what, p.timeout(), p.StderrTail())
	}
	return nil, 0, 0, err
}

// Snapshot returns a copy of every event so far.
func (p *Proc) Snapshot() []Event { return p.log.Events() }

// Count returns the number of events so far.
func (p *Proc) Count() int { return p.log.Len() }

// CountMatching returns how many events so far f holds for.
func (p *Proc) CountMatching(f func(Event) bool) int { return p.log.Count(f) }

// Stderr returns what the process wrote to stderr (the last MiBs of it,
// after "…", if it wrote more).
func (p *Proc) Stderr() string { return p.stderr.String() }

// StderrTail returns the last 2,000 bytes of stderr, for error messages.
func (p *Proc) StderrTail() string {
	const n = 2000
	s := p.Stderr()
	if len(s) > n {
		return "…" + s[len(s)-n:]
	}
	return s
}

// Send writes one line to the process's stdin.
func (p *Proc) Send(line string) error {
	if _, err := io.WriteString(p.stdin, line+"\n"); err != nil {
		return fmt.Errorf("%s: write stdin: %w", p.Name, err)
	}
	return nil
}

// SendJSON writes v as one JSON line (a command such as
// {"cmd":"send","text":"hi"}).
func (p *Proc) SendJSON(v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return p.Send(string(b))
}

// Exited is closed once the process has exited and all its events are
// recorded.
func (p *Proc) Exited() <-chan struct{} { return p.log.Ended() }

// ExitError says that a process exited with a status other than 0.
type ExitError struct {
	Name   string
	Code   int
	Stderr string // tail
}

func (e *ExitError) Error() string {
	return fmt.Sprintf("%s exited with status %d, want 0; stderr: %s", e.Name, e.Code, e.Stderr)
}

// WaitExit waits (at most Timeout) for the process to exit, and fails
// with an *ExitError if it exited with a status other than 0.
func (p *Proc) WaitExit(ctx context.Context) error {
	t := time.NewTimer(p.timeout())
	defer t.Stop()
	select {
	case <-p.Exited():
	case <-ctx.Done():
		return fmt.Errorf("%s: waiting for the exit: %w", p.Name, context.Cause(ctx))
	case <-t.C:
		return fmt.Errorf("%s did not exit within %v; stderr: %s", p.Name, p.timeout(), p.StderrTail())
	}
	if code := p.Cmd.ProcessState.ExitCode(); code != 0 {
		return &ExitError{Name: p.Name, Code: code, Stderr: p.StderrTail()}
	}
	return nil
}

// CloseAndWait ends stdin, which asks parley to quit, and waits for a
// clean exit (see WaitExit).
func (p *Proc) CloseAndWait(ctx context.Context) error {
	p.stdin.Close()
	return p.WaitExit(ctx)
}

// Signal sends sig to the process.
func (p *Proc) Signal(sig os.Signal) error {
	if err := p.Cmd.Process.Signal(sig); err != nil {
		return fmt.Errorf("%s: signal %v: %w", p.Name, sig, err)
	}
	return nil
}

// Kill kills the process (SIGKILL) unless it has exited, and waits until
// it has.
func (p *Proc) Kill() {
	select {
	case <-p.Exited():
		return
	default:
	}
	p.Cmd.Process.Kill() // only the process Start started
	<-p.Exited()
}

// Stop ends stdin and kills the process if it has not exited within grace.
// It returns once the process has exited.
func (p *Proc) Stop(grace time.Duration) {
	p.stdin.Close()
	t := time.NewTimer(grace)
	defer t.Stop()
	select {
	case <-p.Exited():
	case <-t.C:
		p.Kill()
	}
}

// AddrOf returns the first address of a ready event that contains want
// (the first of all if want is "").
func AddrOf(ready Event, want string) (string, error) {
	addrs, _ := ready["addrs"].([]any)
	for _, a := range addrs {
		if s, ok := a.(string); ok && strings.Contains(s, want) {
			return s, nil
		}
	}
	return "", fmt.Errorf("no address with %q in %v", want, ready["addrs"])
}

// tailBuffer keeps what is written to it, dropping the oldest half once
// it holds more than maxStderr bytes.
type tailBuffer struct {
	mu      sync.Mutex
	b       []byte
	dropped bool
}

const maxStderr = 8 << 20

func (w *tailBuffer) Write(b []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.b = append(w.b, b...)
	if len(w.b) > maxStderr {
		w.b = append([]byte(nil), w.b[len(w.b)-maxStderr/2:]...)
		w.dropped = true
	}
	return len(b), nil
}

func (w *tailBuffer) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.dropped {
		return "…" + string(w.b)
	}
	return string(w.b)
}

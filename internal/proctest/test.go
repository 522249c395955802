package proctest

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"testing"
	"time"
)

// Test is a Proc for a test: each method fails the test (t.Fatal) where
// the Proc's returns an error, and waits are bounded by P.Timeout.
type Test struct {
	P *Proc
	t testing.TB
}

// StartTest starts cmd and records its events; it fails t if cmd does not
// start. When the test ends the process is killed unless it has exited,
// and if the test failed its stderr is logged.
func StartTest(t testing.TB, name string, cmd *exec.Cmd) *Test {
	t.Helper()
	p, err := Start(name, cmd)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		p.Kill()
		if t.Failed() {
			t.Logf("%s stderr:\n%s", p.Name, p.Stderr())
		}
	})
	return &Test{P: p, t: t}
}

// Name is the name the process was started with.
func (p *Test) Name() string { return p.P.Name }

// WaitFor returns the first event (earlier ones included) for which f holds.
func (p *Test) WaitFor(what string, f func(Event) bool) Event {
	p.t.Helper()
	ev, _ := p.WaitNth(what, 1, f)
	return ev
}

// WaitForAt is WaitFor that also says how long after start the event came.
func (p *Test) WaitForAt(what string, f func(Event) bool) (Event, time.Duration) {
	p.t.Helper()
	return p.WaitNth(what, 1, f)
}

// WaitNth waits for the n-th event for which f holds.
func (p *Test) WaitNth(what string, n int, f func(Event) bool) (Event, time.Duration) {
	p.t.Helper()
	ev, at, err := p.P.WaitNth(context.Background(), what, n, f)
	if err != nil {
		p.t.Fatalf("%v\nevents: %v", err, p.P.Snapshot())
	}
	return ev, at
}

// Event waits for an event of kind whose fields have the given values.
func (p *Test) Event(kind string, kv ...string) Event {
	p.t.Helper()
	ev, _ := p.EventAt(kind, kv...)
	return ev
}

// EventAt is Event that also says how long after start the event came.
func (p *Test) EventAt(kind string, kv ...string) (Event, time.Duration) {
	p.t.Helper()
	ev, at, err := p.P.Event(context.Background(), kind, kv...)
	if err != nil {
		p.t.Fatalf("%v\nevents: %v", err, p.P.Snapshot())
	}
	return ev, at
}

// Ready waits for the ready event and returns the peer ID and first
// address in it.
func (p *Test) Ready() (id, addr string) {
	p.t.Helper()
	ev := p.Event("ready")
	addr, err := AddrOf(ev, "")
	if err != nil {
		p.t.Fatalf("%s: ready event without addrs: %v", p.P.Name, ev)
	}
	id, _ = ev["peer"].(string)
	return id, addr
}

// Snapshot returns a copy of every event so far.
func (p *Test) Snapshot() []Event { return p.P.Snapshot() }

// Send writes one line to stdin.
func (p *Test) Send(line string) {
	p.t.Helper()
	if err := p.P.Send(line); err != nil {
		p.t.Fatal(err)
	}
}

// CloseAndWait ends stdin and waits for the exit: the test fails at once
// if the process does not exit, and is marked failed (t.Error) if it
// exits with a status other than 0.
func (p *Test) CloseAndWait() {
	p.t.Helper()
	p.check(p.P.CloseAndWait(context.Background()))
}

// WaitExit waits for the exit, checked as by CloseAndWait.
func (p *Test) WaitExit() {
	p.t.Helper()
	p.check(p.P.WaitExit(context.Background()))
}

func (p *Test) check(err error) {
	p.t.Helper()
	var exit *ExitError
	switch {
	case errors.As(err, &exit):
		p.t.Error(err)
	case err != nil:
		p.t.Fatal(err)
	}
}

// Signal sends sig to the process.
func (p *Test) Signal(sig os.Signal) {
	p.t.Helper()
	if err := p.P.Signal(sig); err != nil {
		p.t.Fatal(err)
	}
}

// Kill kills the process (SIGKILL) and waits until it has exited.
func (p *Test) Kill() { p.P.Kill() }

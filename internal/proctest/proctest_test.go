package proctest

import (
	"context"
	"errors"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// A shell stands in for parley: it prints events, echoes stdin lines back
// as events and exits with status 3 at the end of input.
const script = `echo '{"event":"ready","peer":"P","addrs":["/ip4/1.2.3.4/tcp/1/p2p/P"]}'
echo not json
echo complaint >&2
while read line; do printf '{"event":"echo","text":"%s"}\n' "$line"; done
exit 3`

func TestProc(t *testing.T) {
	ctx := context.Background()
	p, err := Start("sh", exec.Command("sh", "-c", script))
	if err != nil {
		t.Fatal(err)
	}
	defer p.Kill()
	p.Timeout = 5 * time.Second
	ev, _, err := p.Ready(ctx)
	if err != nil || ev["peer"] != "P" {
		t.Fatalf("Ready = %v, %v", ev, err)
	}
	if _, _, err := p.Wait(ctx, "the line that is not JSON", Match("NOT-JSON", "line", "not json")); err != nil {
		t.Error(err)
	}
	for _, s := range []string{"a", "b", "a"} {
		if err := p.Send(s); err != nil {
			t.Fatal(err)
		}
	}
	if _, _, err := p.WaitNth(ctx, "second a", 2, Match("echo", "text", "a")); err != nil {
		t.Error(err)
	}
	if n := p.CountMatching(Match("echo")); n != 3 {
		t.Errorf("%d echo events, want 3", n)
	}
	short, cancel := context.WithTimeout(ctx, 20*time.Millisecond)
	defer cancel()
	if _, _, err := p.Event(short, "nothing"); err == nil || !strings.Contains(err.Error(), "nothing") {
		t.Errorf("waiting for an event that never comes: %v", err)
	}
	var exit *ExitError
	if err := p.CloseAndWait(ctx); !errors.As(err, &exit) || exit.Code != 3 || !strings.Contains(err.Error(), "complaint") {
		t.Errorf("CloseAndWait = %v, want status 3 with the stderr tail", err)
	}
	if _, _, err := p.Event(ctx, "nothing"); err == nil || !strings.Contains(err.Error(), "exited") || !strings.Contains(err.Error(), "complaint") {
		t.Errorf("waiting after the exit: %v, want that it exited, with stderr", err)
	}
}

func TestTest(t *testing.T) {
	p := StartTest(t, "sh", exec.Command("sh", "-c", script))
	id, addr := p.Ready()
	if id != "P" || addr != "/ip4/1.2.3.4/tcp/1/p2p/P" {
		t.Errorf("Ready = %q, %q", id, addr)
	}
	p.Send("hello")
	if _, at := p.EventAt("echo", "text", "hello"); at <= 0 {
		t.Errorf("event arrived at %v", at)
	}
	p.Kill()
	<-p.P.Exited()
}

package swarm_test

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/parley-chat/parley/internal/dispatch/dispatchtest"
	"github.com/parley-chat/parley/internal/dispatch/swarm"
	"github.com/parley-chat/parley/internal/dockertest"
	"github.com/parley-chat/parley/internal/proctest"
)

func TestMain(m *testing.M) {
	code := m.Run()
	dockertest.Cleanup() // the image, and the swarm if the tests initialised it
	os.Exit(code)
}

// relayID is the peer ID of docker/demo/relay.key, the demo relay's
// committed identity.
const relayID = "12D3KooWMac3aoB6WnmeUXgcnFyaFuJ3fkSWUM18GUJ1njbHwDfM"

// setup is `parley dispatch --backend swarm` in a container on an overlay
// network of a swarm on the machine's engine: the way it runs in
// docker/stack.yaml, since only something attached to the overlay can
// resolve the peers' service names. The test reaches the dispatcher
// through a published loopback port, and looks at the services through
// the Engine API. Everything is labelled with the setup's name and removed
// at the end.
type setup struct {
	t       *testing.T
	name    string
	network string
	d       *dockertest.Dispatcher
}

func newSetup(t *testing.T, relay bool, args ...string) *setup {
	t.Helper()
	dockertest.Swarm(t)
	image := dockertest.Image(t)
	s := &setup{t: t, name: "t" + dockertest.Random(), network: dockertest.OverlayNetwork(t)}
	t.Cleanup(func() {
		dockertest.RemoveServices(swarm.LabelDispatcher, s.name)
		dockertest.RemoveLabelled(dockertest.Label, s.name)
	})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if relay {
		// Peers on an overlay network cannot find each other by mDNS
		// (no multicast): they meet through a relay, as in the stack.
		root, err := proctest.ModuleRoot()
		if err != nil {
			t.Fatal(err)
		}
		name := "parley-test-relay-" + s.name
		out, err := exec.CommandContext(ctx, "docker", "run", "-d", "--name", name, "--label", dockertest.Label+"="+s.name,
			"--network", s.network, "-v", filepath.Join(root, "docker", "demo", "relay.key")+":/run/relay.key:ro",
			image, "relay", "--identity", "/run/relay.key", "--data", "/data/relay", "--listen", "/ip4/0.0.0.0/tcp/4001").CombinedOutput()
		if err != nil {
			t.Fatalf("docker run relay: %v: %s", err, out)
		}
		args = append(args, "--bootstrap", "/dns4/"+name+"/tcp/4001/p2p/"+relayID)
	}
	args = append([]string{"--backend", "swarm", "--image", image, "--network", s.network, "--name", s.name,
		"--peer-memory", fmt.Sprint(96 << 20), "--peer-cpus", "0.5", "--start-rate", "600", "--start-burst", "20",
		"--log-level", "info"}, args...)
	d, err := dockertest.StartDispatcher(ctx, image, s.network, dockertest.Label, s.name, args...)
	if err != nil {
		t.Fatal(err)
	}
	s.d = d
	t.Cleanup(func() {
		if t.Failed() {
			out, _ := exec.Command("docker", "logs", "--tail", "30", d.Container).CombinedOutput()
			t.Logf("dispatcher's last lines:\n%s", out)
		}
		d.Remove()
	})
	return s
}

// service reads a field of a peer's service (a docker inspect template).
func (s *setup) service(id, format string) string {
	s.t.Helper()
	out, err := exec.Command("docker", "service", "inspect", "--format", format, "parley-"+s.name+"-"+id).CombinedOutput()
	if err != nil {
		s.t.Fatalf("docker service inspect: %v: %s", err, out)
	}
	return strings.TrimSpace(string(out))
}

func (s *setup) visitor() *dispatchtest.Visitor {
	return dispatchtest.NewVisitor(s.t, func() string { return s.d.URL }, 90*time.Second)
}

// Two visitors get a service each, pinned to the node that holds its
// volume, and chat across the overlay network; a restarted dispatcher
// finds both again from the services' labels.
func TestVisitorsGetServicesChatAndSurviveARestart(t *testing.T) {
	s := newSetup(t, true, "--pool", "1", "--max-peers", "4", "--idle", "1h")
	alice, bob := s.visitor(), s.visitor()
	if code, _ := alice.Start(); code != 200 {
		t.Fatalf("alice's start: %d", code)
	}
	if code, _ := bob.Start(); code != 200 {
		t.Fatalf("bob's start: %d", code)
	}
	a, b := alice.PeerID(), bob.PeerID()
	if a == b {
		t.Fatal("two visitors got the same peer")
	}
	node, _ := exec.Command("docker", "info", "--format", "{{.Swarm.NodeID}}").Output()
	for _, v := range []*dispatchtest.Visitor{alice, bob} {
		id := v.CookieID()
		got := s.service(id, `{{.Spec.Mode.Replicated.Replicas}} {{index .Spec.Labels "parley.claimed"}} {{index .Spec.Labels "parley.node"}} {{.Spec.TaskTemplate.Placement.Constraints}}`)
		n := strings.TrimSpace(string(node))
		if want := fmt.Sprintf("1 1 %s [node.id==%s]", n, n); got != want {
			t.Errorf("service of peer %s: replicas, claimed, node, constraints = %q, want %q", id, got, want)
		}
	}
	if code := alice.API("POST", "/rooms/lobby/messages", `{"text":"hello from alice"}`, nil); code != 202 {
		t.Fatalf("alice posts: %d", code)
	}
	bob.WaitText("hello from alice")

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if err := s.d.Restart(ctx); err != nil {
		t.Fatal(err)
	}
	if got := alice.PeerID(); got != a {
		t.Errorf("after a restart alice has peer %s, want %s", got, a)
	}
	if got := bob.PeerID(); got != b {
		t.Errorf("after a restart bob has peer %s, want %s", got, b)
	}
}

// An idle peer's service is scaled to 0 and comes back, on its node, with
// its history when the visitor does.
func TestIdlePeerScalesToZeroAndComesBackWithHistory(t *testing.T) {
	s := newSetup(t, false, "--pool", "0", "--max-peers", "2", "--idle", "3s")
	v := s.visitor()
	v.Start()
	id := v.PeerID()
	if code := v.API("POST", "/rooms/lobby/messages", `{"text":"remember me"}`, nil); code != 202 {
		t.Fatal(code)
	}
	v.WaitText("remember me")
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if _, err := s.d.Event(ctx, "peer-stopped"); err != nil {
		t.Fatal(err)
	}
	if got := s.service(v.CookieID(), `{{.Spec.Mode.Replicated.Replicas}} {{if index .Spec.Labels "parley.stopped"}}stopped{{end}}`); got != "0 stopped" {
		t.Errorf("stopped service: replicas and label = %q, want \"0 stopped\"", got)
	}
	if got := v.PeerID(); got != id {
		t.Errorf("after the idle stop the visitor has peer %s, want %s", got, id)
	}
	v.WaitText("remember me")
}

// --max-peers bounds what visitors can make it start, and
// --max-peers-per-node what one node runs: the next visitor gets a clear
// page, not a hang.
func TestCapsGiveAClearFullPage(t *testing.T) {
	for _, tc := range []struct {
		name string
		args []string
		ok   int
	}{
		{"max-peers", []string{"--max-peers", "2"}, 2},
		{"max-peers-per-node", []string{"--max-peers", "4", "--max-peers-per-node", "1"}, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := newSetup(t, false, append([]string{"--pool", "0"}, tc.args...)...)
			for range tc.ok {
				if code, _ := s.visitor().Start(); code != 200 {
					t.Fatalf("a visitor within the cap got %d", code)
				}
			}
			code, body := s.visitor().Start()
			if code != http.StatusServiceUnavailable || !strings.Contains(body, "try again") || !strings.Contains(body, "Full") {
				t.Errorf("visitor past the cap: %d %q; want 503 with the page that says it is full", code, body)
			}
		})
	}
}

// A peer's node, which holds its data, goes away (drained here): the
// visitor gets the page that asks them to come back, and when the node
// is back, their peer is too.
func TestPeerWaitsForTheNodeThatHoldsItsData(t *testing.T) {
	dockertest.SwarmAlone(t)
	s := newSetup(t, false, "--pool", "0", "--max-peers", "2", "--idle", "1h")
	v := s.visitor()
	v.Start()
	id := v.PeerID()
	out, _ := exec.Command("docker", "info", "--format", "{{.Swarm.NodeID}}").Output()
	node := strings.TrimSpace(string(out))
	availability := func(a string) {
		if out, err := exec.Command("docker", "node", "update", "--availability", a, node).CombinedOutput(); err != nil {
			t.Fatalf("docker node update: %v: %s", err, out)
		}
	}
	availability("drain")
	t.Cleanup(func() { exec.Command("docker", "node", "update", "--availability", "active", node).Run() })
	poll := func(what string, done func(code int, peer string) bool) {
		t.Helper()
		deadline := time.Now().Add(60 * time.Second)
		for {
			var info struct{ Peer string }
			code := v.API("GET", "/info", "", &info)
			if done(code, info.Peer) {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: still %d %q", what, code, info.Peer)
			}
			time.Sleep(200 * time.Millisecond) // the dispatcher notices at the next request or sync
		}
	}
	poll("with its node drained the visitor should get a 503 page", func(code int, _ string) bool {
		return code == http.StatusServiceUnavailable
	})
	if got := s.service(v.CookieID(), `{{.Spec.Mode.Replicated.Replicas}} {{.Spec.TaskTemplate.Placement.Constraints}}`); got != "1 [node.id=="+node+"]" {
		t.Errorf("the peer's service: %q, want it kept, pinned to its node", got)
	}
	availability("active")
	poll("with its node back the visitor should have their peer again", func(code int, peer string) bool {
		return code == 200 && peer == id
	})
}

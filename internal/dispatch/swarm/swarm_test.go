package swarm_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

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

// visitor is one browser: its own cookie jar.
type visitor struct {
	t      *testing.T
	s      *setup
	client *http.Client
}

func (s *setup) visitor() *visitor {
	jar, _ := cookiejar.New(nil)
	return &visitor{t: s.t, s: s, client: &http.Client{Jar: jar, Timeout: 90 * time.Second}}
}

// start clicks "Start chatting"; it returns the final status and body.
func (v *visitor) start() (int, string) {
	v.t.Helper()
	resp, err := v.client.Post(v.s.d.URL+"/start", "application/x-www-form-urlencoded", nil)
	if err != nil {
		v.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func (v *visitor) api(method, path, body string, out any) int {
	v.t.Helper()
	req, _ := http.NewRequest(method, v.s.d.URL+"/me/api/v1"+path, strings.NewReader(body))
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := v.client.Do(req)
	if err != nil {
		v.t.Fatal(err)
	}
	defer resp.Body.Close()
	if out != nil {
		json.NewDecoder(resp.Body).Decode(out)
	}
	return resp.StatusCode
}

func (v *visitor) peerID() string {
	v.t.Helper()
	var info struct{ Peer string }
	if code := v.api("GET", "/info", "", &info); code != 200 || info.Peer == "" {
		v.t.Fatalf("info through /me/: %d %+v", code, info)
	}
	return info.Peer
}

func (v *visitor) cookieID() string {
	v.t.Helper()
	req, _ := http.NewRequest("GET", v.s.d.URL, nil)
	for _, c := range v.client.Jar.Cookies(req.URL) {
		if c.Name == "parley_visitor" {
			id, _, _ := strings.Cut(c.Value, ".")
			return id
		}
	}
	v.t.Fatal("no visitor cookie")
	return ""
}

// waitText waits until the visitor's peer shows text in room lobby.
func (v *visitor) waitText(text string) {
	v.t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		var page struct{ Messages []struct{ Text string } }
		v.api("GET", "/rooms/lobby/messages", "", &page)
		for _, m := range page.Messages {
			if m.Text == text {
				return
			}
		}
		time.Sleep(200 * time.Millisecond) // a poll of a remote peer's state: no event reaches the test
	}
	v.t.Fatalf("%q never showed up", text)
}

// Two visitors get a service each, pinned to the node that holds its
// volume, and chat across the overlay network; a restarted dispatcher
// finds both again from the services' labels.
func TestVisitorsGetServicesChatAndSurviveARestart(t *testing.T) {
	s := newSetup(t, true, "--pool", "1", "--max-peers", "4", "--idle", "1h")
	alice, bob := s.visitor(), s.visitor()
	if code, _ := alice.start(); code != 200 {
		t.Fatalf("alice's start: %d", code)
	}
	if code, _ := bob.start(); code != 200 {
		t.Fatalf("bob's start: %d", code)
	}
	a, b := alice.peerID(), bob.peerID()
	if a == b {
		t.Fatal("two visitors got the same peer")
	}
	node, _ := exec.Command("docker", "info", "--format", "{{.Swarm.NodeID}}").Output()
	for _, v := range []*visitor{alice, bob} {
		id := v.cookieID()
		got := s.service(id, `{{.Spec.Mode.Replicated.Replicas}} {{index .Spec.Labels "parley.claimed"}} {{index .Spec.Labels "parley.node"}} {{.Spec.TaskTemplate.Placement.Constraints}}`)
		n := strings.TrimSpace(string(node))
		if want := fmt.Sprintf("1 1 %s [node.id==%s]", n, n); got != want {
			t.Errorf("service of peer %s: replicas, claimed, node, constraints = %q, want %q", id, got, want)
		}
	}
	if code := alice.api("POST", "/rooms/lobby/messages", `{"text":"hello from alice"}`, nil); code != 202 {
		t.Fatalf("alice posts: %d", code)
	}
	bob.waitText("hello from alice")

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if err := s.d.Restart(ctx); err != nil {
		t.Fatal(err)
	}
	if got := alice.peerID(); got != a {
		t.Errorf("after a restart alice has peer %s, want %s", got, a)
	}
	if got := bob.peerID(); got != b {
		t.Errorf("after a restart bob has peer %s, want %s", got, b)
	}
}

// An idle peer's service is scaled to 0 and comes back, on its node, with
// its history when the visitor does.
func TestIdlePeerScalesToZeroAndComesBackWithHistory(t *testing.T) {
	s := newSetup(t, false, "--pool", "0", "--max-peers", "2", "--idle", "3s")
	v := s.visitor()
	v.start()
	id := v.peerID()
	if code := v.api("POST", "/rooms/lobby/messages", `{"text":"remember me"}`, nil); code != 202 {
		t.Fatal(code)
	}
	v.waitText("remember me")
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if _, err := s.d.Event(ctx, "peer-stopped"); err != nil {
		t.Fatal(err)
	}
	if got := s.service(v.cookieID(), `{{.Spec.Mode.Replicated.Replicas}} {{if index .Spec.Labels "parley.stopped"}}stopped{{end}}`); got != "0 stopped" {
		t.Errorf("stopped service: replicas and label = %q, want \"0 stopped\"", got)
	}
	if got := v.peerID(); got != id {
		t.Errorf("after the idle stop the visitor has peer %s, want %s", got, id)
	}
	v.waitText("remember me")
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
				if code, _ := s.visitor().start(); code != 200 {
					t.Fatalf("a visitor within the cap got %d", code)
				}
			}
			code, body := s.visitor().start()
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
	v.start()
	id := v.peerID()
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
			code := v.api("GET", "/info", "", &info)
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
	if got := s.service(v.cookieID(), `{{.Spec.Mode.Replicated.Replicas}} {{.Spec.TaskTemplate.Placement.Constraints}}`); got != "1 [node.id=="+node+"]" {
		t.Errorf("the peer's service: %q, want it kept, pinned to its node", got)
	}
	availability("active")
	poll("with its node back the visitor should have their peer again", func(code int, peer string) bool {
		return code == 200 && peer == id
	})
}

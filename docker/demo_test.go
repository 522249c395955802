// Package demo_test brings up the demo network of docker/compose.yaml on
// the machine's Docker Engine and checks that alice and bob, on two LANs
// that cannot reach each other, chat through the relay.
package demo_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/parley-chat/parley/internal/dockertest"
	"github.com/parley-chat/parley/internal/proctest"
)

func TestMain(m *testing.M) {
	code := m.Run()
	dockertest.Cleanup()
	os.Exit(code)
}

// compose returns the compose command: docker-compose, or docker compose.
func compose(t *testing.T) []string {
	if _, err := exec.LookPath("docker-compose"); err == nil {
		return []string{"docker-compose"}
	}
	if exec.Command("docker", "compose", "version").Run() == nil {
		return []string{"docker", "compose"}
	}
	if os.Getenv("DOCKER_REQUIRE") == "1" {
		t.Fatal("neither docker-compose nor docker compose is installed")
	}
	t.Skip("neither docker-compose nor docker compose is installed")
	return nil
}

func freePort(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return fmt.Sprint(ln.Addr().(*net.TCPAddr).Port)
}

type peer struct {
	t     *testing.T
	base  string
	token string
}

func (p peer) api(method, path, body string, out any) int {
	p.t.Helper()
	req, _ := http.NewRequest(method, p.base+"/api/v1"+path, strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+p.token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0 // not up yet
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if out != nil {
		json.Unmarshal(b, out)
	}
	return resp.StatusCode
}

// eventually polls cond: the demo's peers are other processes in
// containers, whose state the test can only ask for.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func TestDemoNetwork(t *testing.T) {
	image := dockertest.Image(t)
	cmd := compose(t)
	root, err := proctest.ModuleRoot()
	if err != nil {
		t.Fatal(err)
	}
	name := "ptest-" + dockertest.Random()
	alicePort, bobPort, dispatchPort := freePort(t), freePort(t), freePort(t)
	env := append(os.Environ(), "PARLEY_IMAGE="+image, "PARLEY_DEMO="+name,
		"ALICE_PORT="+alicePort, "BOB_PORT="+bobPort, "DISPATCH_PORT="+dispatchPort)
	run := func(args ...string) error {
		c := exec.Command(cmd[0], append(append(cmd[1:], "-p", name, "-f", filepath.Join(root, "docker", "compose.yaml")), args...)...)
		c.Env = env
		out, err := c.CombinedOutput()
		if err != nil {
			return fmt.Errorf("%s %s: %v\n%s", strings.Join(cmd, " "), strings.Join(args, " "), err, out)
		}
		return nil
	}
	t.Cleanup(func() {
		if err := run("down", "-v", "--timeout", "60"); err != nil {
			t.Error(err)
		}
		// Nothing of the demo is left: compose's containers, volumes and
		// networks, and the dispatcher's peers.
		for _, args := range [][]string{
			{"ps", "-aq", "--filter", "label=parley.demo=" + name},
			{"ps", "-aq", "--filter", "label=parley.dispatcher=" + name},
			{"volume", "ls", "-q", "--filter", "label=parley.demo=" + name},
			{"volume", "ls", "-q", "--filter", "label=parley.dispatcher=" + name},
			{"network", "ls", "-q", "--filter", "label=parley.demo=" + name},
		} {
			if out, _ := exec.Command("docker", args...).Output(); len(strings.TrimSpace(string(out))) > 0 {
				t.Errorf("left behind after down (docker %s): %s", strings.Join(args, " "), out)
			}
		}
		dockertest.RemoveLabelled("parley.dispatcher", name)
		dockertest.RemoveLabelled("parley.demo", name)
	})
	if err := run("up", "-d"); err != nil {
		t.Fatal(err)
	}
	alice := peer{t, "http://127.0.0.1:" + alicePort, "alice-demo-token-0000"}
	bob := peer{t, "http://127.0.0.1:" + bobPort, "bob-demo-token-00000"}
	var bobID string
	eventually(t, "bob's web app", func() bool {
		var info struct{ Peer string }
		return bob.api("GET", "/info", "", &info) == 200 && (bobID != "" || func() bool { bobID = info.Peer; return true }())
	})
	// Alice sees bob relayed via the relay: the LANs cannot reach each other.
	eventually(t, "alice reaches bob through the relay", func() bool {
		var ps struct {
			Peers []struct{ Peer, Path, Relay string }
		}
		alice.api("GET", "/peers", "", &ps)
		for _, p := range ps.Peers {
			if p.Peer == bobID && p.Path == "relayed" && p.Relay == "12D3KooWMac3aoB6WnmeUXgcnFyaFuJ3fkSWUM18GUJ1njbHwDfM" {
				return true
			}
		}
		return false
	})
	if code := alice.api("POST", "/rooms/lobby/messages", `{"text":"hi bob, from lan-a"}`, nil); code != 202 {
		t.Fatalf("alice posts: %d", code)
	}
	eventually(t, "bob gets alice's message", func() bool {
		var page struct{ Messages []struct{ Text, Nick string } }
		bob.api("GET", "/rooms/lobby/messages", "", &page)
		for _, m := range page.Messages {
			if m.Text == "hi bob, from lan-a" && m.Nick == "alice" {
				return true
			}
		}
		return false
	})
	if code := bob.api("POST", "/dms/alice/messages", `{"text":"hi alice, from lan-b"}`, nil); code != 202 {
		t.Fatalf("bob's DM: %d", code)
	}
	eventually(t, "bob's DM delivered", func() bool {
		var dms struct {
			Messages []struct{ Text, State string }
		}
		bob.api("GET", "/dms/alice/messages", "", &dms)
		return len(dms.Messages) == 1 && dms.Messages[0].State == "delivered"
	})
	// The dispatcher answers and gives a visitor a peer.
	eventually(t, "the dispatcher's page", func() bool {
		resp, err := http.Get("http://127.0.0.1:" + dispatchPort + "/")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == 200
	})
}

package dockertest

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"
)

var (
	swarmOnce    sync.Once
	swarmErr     error
	swarmCreated bool     // this process ran docker swarm init
	swarmUser    *os.File // a shared lock held while this process uses the swarm
)

// A swarm that tests initialise is marked with labels on its node, so that
// whichever test process is the last to use it leaves it: tests and the
// benchmark may run at the same time, each holding a shared lock on one
// file while it uses the swarm, and only a process that can take the lock
// exclusively may leave it.
const (
	labelTestSwarm = "parley.test.swarm"    // "1": a test process made this swarm
	labelGWBridge  = "parley.test.gwbridge" // "1": … and docker_gwbridge came with it
)

// InitSwarm makes the engine a swarm manager: if it is in no swarm, it
// initialises a single-node swarm on 127.0.0.1, which LeaveSwarm (or
// Cleanup) leaves again once no test process uses it. An engine already
// in a swarm it did not make is used as it is and never left.
func InitSwarm(ctx context.Context) (created bool, err error) {
	if swarmUser != nil {
		return swarmCreated, nil
	}
	lock, err := lockSwarm()
	if err != nil {
		return false, fmt.Errorf("swarm lock: %w", err)
	}
	defer func() {
		if err != nil {
			lock.Close()
		}
	}()
	out, err := exec.CommandContext(ctx, "docker", "info", "--format", "{{.Swarm.LocalNodeState}} {{.Swarm.ControlAvailable}}").Output()
	if err != nil {
		return false, fmt.Errorf("docker info: %w", err)
	}
	switch state := strings.TrimSpace(string(out)); state {
	case "active true":
	case "active false":
		return false, errors.New("this Docker Engine is a swarm worker, not a manager")
	case "inactive false":
		gw := "0"
		if exec.CommandContext(ctx, "docker", "network", "inspect", "docker_gwbridge").Run() != nil {
			gw = "1"
		}
		if out, err := exec.CommandContext(ctx, "docker", "swarm", "init", "--advertise-addr", "127.0.0.1").CombinedOutput(); err != nil {
			return false, fmt.Errorf("docker swarm init: %v: %s", err, strings.TrimSpace(string(out)))
		}
		node, err := exec.CommandContext(ctx, "docker", "info", "--format", "{{.Swarm.NodeID}}").Output()
		if err != nil {
			exec.Command("docker", "swarm", "leave", "--force").Run()
			return false, fmt.Errorf("docker info: %w", err)
		}
		if out, err := exec.CommandContext(ctx, "docker", "node", "update", "--label-add", labelTestSwarm+"=1",
			"--label-add", labelGWBridge+"="+gw, strings.TrimSpace(string(node))).CombinedOutput(); err != nil {
			exec.Command("docker", "swarm", "leave", "--force").Run()
			return false, fmt.Errorf("docker node update: %v: %s", err, strings.TrimSpace(string(out)))
		}
		created = true
	default:
		return false, fmt.Errorf("this Docker Engine's swarm state is %q", state)
	}
	if err := shareLock(lock); err != nil {
		return false, fmt.Errorf("swarm lock: %w", err)
	}
	swarmUser, swarmCreated = lock, created
	return created, nil
}

// SwarmAlone skips t unless the swarm is one that a test process made
// and no other test process uses it now; until t ends, other processes
// wait to use it, so t may change the node (drain it).
func SwarmAlone(t testing.TB) {
	t.Helper()
	Swarm(t)
	out, _ := exec.Command("docker", "node", "inspect", "self", "--format", `{{index .Spec.Labels "`+labelTestSwarm+`"}}`).Output()
	if strings.TrimSpace(string(out)) != "1" {
		t.Skip("the engine was in a swarm already: only a node of the tests' own swarm is changed")
	}
	if !tryExclusive(swarmUser) {
		t.Skip("another test process uses the swarm now: its node is left as it is")
	}
	t.Cleanup(func() { shareLock(swarmUser) })
}

// LeaveSwarm ends this process's use of the swarm; if it was the last test
// process using a swarm that a test process made, it leaves the swarm and
// removes docker_gwbridge if the swarm brought it.
func LeaveSwarm() {
	lock := swarmUser
	if lock == nil {
		return
	}
	swarmUser, swarmCreated = nil, false
	defer lock.Close()
	if !tryExclusive(lock) {
		return // another test process still uses it
	}
	out, err := exec.Command("docker", "node", "inspect", "self", "--format",
		`{{index .Spec.Labels "`+labelTestSwarm+`"}} {{index .Spec.Labels "`+labelGWBridge+`"}}`).Output()
	if err != nil {
		return
	}
	made, gw, _ := strings.Cut(strings.TrimSpace(string(out)), " ")
	if made != "1" {
		return
	}
	exec.Command("docker", "swarm", "leave", "--force").Run()
	if gw == "1" {
		exec.Command("docker", "network", "rm", "docker_gwbridge").Run()
	}
}

// Swarm skips t (or fails it when DOCKER_REQUIRE=1) unless the engine is,
// or can be made, a swarm manager; a swarm it initialises is left by
// Cleanup.
func Swarm(t testing.TB) {
	t.Helper()
	Require(t)
	swarmOnce.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		_, swarmErr = InitSwarm(ctx)
	})
	if swarmErr != nil {
		msg := "Docker Swarm cannot be used here: " + swarmErr.Error()
		if os.Getenv("DOCKER_REQUIRE") == "1" {
			t.Fatal(msg + "; DOCKER_REQUIRE=1 says these tests must run")
		}
		t.Skip(msg)
	}
}

// OverlayNetwork makes an attachable overlay network for t, removed when
// t ends (after what t's later cleanups remove).
func OverlayNetwork(t testing.TB) string {
	t.Helper()
	name := "parley-test-" + Random()
	if out, err := exec.Command("docker", "network", "create", "--driver", "overlay", "--attachable", "--label", Label+"=1", name).CombinedOutput(); err != nil {
		t.Fatalf("docker network create: %v: %s", err, out)
	}
	t.Cleanup(func() { exec.Command("docker", "network", "rm", name).Run() })
	return name
}

// RemoveServices removes every swarm service with label key=value, waits
// (bounded) until their containers are gone, then removes every container
// and volume with that label.
func RemoveServices(key, value string) {
	filter := "label=" + key + "=" + value
	if out, err := exec.Command("docker", "service", "ls", "-q", "--filter", filter).Output(); err == nil {
		if ids := strings.Fields(string(out)); len(ids) > 0 {
			exec.Command("docker", append([]string{"service", "rm"}, ids...)...).Run()
		}
	}
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		out, err := exec.Command("docker", "ps", "-q", "--filter", filter).Output()
		if err != nil || len(strings.Fields(string(out))) == 0 {
			break
		}
		time.Sleep(200 * time.Millisecond) // polling the engine: swarm removes the tasks' containers in its own time
	}
	RemoveLabelled(key, value)
}

// Dispatcher is `parley dispatch --json` in a container on a network the
// host cannot reach (a swarm overlay), published on a loopback port.
type Dispatcher struct {
	Container string
	URL       string // http://127.0.0.1:PORT
	events    chan map[string]string
}

// StartDispatcher runs `parley dispatch` from image in a container
// attached to network, as root (to use the engine's socket), with the
// label key=value and args after `dispatch`; it returns once the
// dispatcher's page answers.
func StartDispatcher(ctx context.Context, image, network, key, value string, args ...string) (*Dispatcher, error) {
	name := "parley-test-dispatch-" + Random()
	run := append([]string{"run", "-d", "--name", name, "--label", key + "=" + value, "--user", "0:0",
		"--network", network, "-p", "127.0.0.1::8080", "-v", "/var/run/docker.sock:/var/run/docker.sock",
		image, "dispatch", "--listen", "0.0.0.0:8080", "--data", "/data/dispatch", "--json"}, args...)
	if out, err := exec.CommandContext(ctx, "docker", run...).CombinedOutput(); err != nil {
		return nil, fmt.Errorf("docker run dispatcher: %v: %s", err, out)
	}
	d := &Dispatcher{Container: name, events: make(chan map[string]string, 1024)}
	return d, d.up(ctx, time.Time{})
}

// up follows the dispatcher's events from since and waits for its page.
func (d *Dispatcher) up(ctx context.Context, since time.Time) error {
	logs := []string{"logs", "-f"}
	if !since.IsZero() {
		logs = append(logs, "--since", fmt.Sprintf("%d.%09d", since.Unix(), since.Nanosecond()))
	}
	cmd := exec.Command("docker", append(logs, d.Container)...)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return err
	}
	if err := cmd.Start(); err != nil {
		return err
	}
	go func() {
		// Ends when the container stops (or is removed).
		defer cmd.Wait()
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			var ev map[string]any
			if json.Unmarshal(sc.Bytes(), &ev) != nil {
				continue
			}
			m := make(map[string]string, len(ev))
			for k, v := range ev {
				m[k] = fmt.Sprint(v)
			}
			select {
			case d.events <- m:
			default:
			}
		}
	}()
	out, err := exec.CommandContext(ctx, "docker", "port", d.Container, "8080/tcp").Output()
	if err != nil {
		return fmt.Errorf("docker port: %w", err)
	}
	addr, _, _ := strings.Cut(strings.TrimSpace(string(out)), "\n")
	d.URL = "http://" + addr
	ctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	for {
		req, _ := http.NewRequestWithContext(ctx, "GET", d.URL+"/healthz", nil)
		if resp, err := http.DefaultClient.Do(req); err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return nil
			}
		}
		select {
		case <-ctx.Done():
			logs, _ := exec.Command("docker", "logs", "--tail", "20", d.Container).CombinedOutput()
			return fmt.Errorf("the dispatcher did not answer within a minute: %s", logs)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// Restart restarts the dispatcher's container and waits for its page.
func (d *Dispatcher) Restart(ctx context.Context) error {
	t0 := time.Now()
	if out, err := exec.CommandContext(ctx, "docker", "restart", "-t", "10", d.Container).CombinedOutput(); err != nil {
		return fmt.Errorf("docker restart: %v: %s", err, out)
	}
	return d.up(ctx, t0)
}

// Event waits for the dispatcher's next event of kind.
func (d *Dispatcher) Event(ctx context.Context, kind string) (map[string]string, error) {
	for {
		select {
		case ev := <-d.events:
			if ev["event"] == kind {
				return ev, nil
			}
		case <-ctx.Done():
			return nil, fmt.Errorf("no %s event from the dispatcher: %w", kind, ctx.Err())
		}
	}
}

// Remove removes the dispatcher's container and its data.
func (d *Dispatcher) Remove() {
	exec.Command("docker", "rm", "-f", "-v", d.Container).Run()
}

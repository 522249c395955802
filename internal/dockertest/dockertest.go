// Package dockertest gives tests a Docker Engine to run parley containers
// on: it checks the engine answers (skipping, or failing when
// DOCKER_REQUIRE=1, when none does), builds the parley image once per test
// binary with docker/build.sh under a tag of its own, and makes labelled
// networks; for the Swarm backend it makes the engine a single-node swarm
// manager when it is in no swarm, and runs the dispatcher in a container
// on an overlay network. Everything it makes is removed when the tests end.
package dockertest

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/parley-chat/parley/internal/proctest"
)

// Label marks every network a test makes.
const Label = "parley.test"

var (
	once     sync.Once
	image    string
	buildErr error
	skip     string
)

// Require skips t when no Docker Engine answers, or fails it when
// DOCKER_REQUIRE=1 (as CI sets).
func Require(t testing.TB) {
	t.Helper()
	if out, err := exec.Command("docker", "info", "--format", "{{.ServerVersion}}").CombinedOutput(); err != nil {
		msg := fmt.Sprintf("no Docker Engine answers (docker info: %v: %s)", err, strings.TrimSpace(string(out)))
		if os.Getenv("DOCKER_REQUIRE") == "1" {
			t.Fatal(msg + "; DOCKER_REQUIRE=1 says these tests must run")
		}
		t.Skip(msg)
	}
}

// Image returns the tag of the parley image built from this checkout,
// building it on first use.
func Image(t testing.TB) string {
	t.Helper()
	Require(t)
	once.Do(func() {
		root, err := proctest.ModuleRoot()
		if err != nil {
			buildErr = err
			return
		}
		tag := "parley:test-" + Random()
		out, err := exec.Command(filepath.Join(root, "docker", "build.sh"), tag).CombinedOutput()
		if err != nil {
			buildErr = fmt.Errorf("docker/build.sh: %v\n%s", err, out)
			return
		}
		image = tag
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return image
}

// Cleanup removes the image Image built and leaves the swarm Swarm
// initialised, if it did; call it from TestMain.
func Cleanup() {
	if image != "" {
		exec.Command("docker", "image", "rm", "-f", image).Run()
	}
	LeaveSwarm()
}

// Network makes a bridge network for t, removed when t ends.
func Network(t testing.TB) string {
	t.Helper()
	name := "parley-test-" + Random()
	if out, err := exec.Command("docker", "network", "create", "--label", Label+"=1", name).CombinedOutput(); err != nil {
		t.Fatalf("docker network create: %v: %s", err, out)
	}
	t.Cleanup(func() { exec.Command("docker", "network", "rm", name).Run() })
	return name
}

// RemoveLabelled removes every container and volume with label key=value.
func RemoveLabelled(key, value string) {
	filter := "label=" + key + "=" + value
	if out, err := exec.Command("docker", "ps", "-aq", "--filter", filter).Output(); err == nil {
		if ids := strings.Fields(string(out)); len(ids) > 0 {
			exec.Command("docker", append([]string{"rm", "-f", "-v"}, ids...)...).Run()
		}
	}
	if out, err := exec.Command("docker", "volume", "ls", "-q", "--filter", filter).Output(); err == nil {
		if vs := strings.Fields(string(out)); len(vs) > 0 {
			exec.Command("docker", append([]string{"volume", "rm", "-f"}, vs...)...).Run()
		}
	}
}

// Random returns a short random name part.
func Random() string {
	var b [4]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

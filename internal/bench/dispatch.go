package bench

import (
	"context"
	"crypto/rand"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/cookiejar"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/parley-chat/parley/internal/dispatch"
	"github.com/parley-chat/parley/internal/dispatch/docker"
	"github.com/parley-chat/parley/internal/dockertest"
	"github.com/parley-chat/parley/internal/proctest"
)

// DispatchConfig bounds the dispatcher benchmarks.
type DispatchConfig struct {
	Pool     int // ready peers
	Clicks   int // visitors timed one at a time, each with a full pool
	Visitors int // visitors at once in the load run
	Timeout  time.Duration
}

// DispatchResult is what the dispatcher benchmarks measured, on this
// machine's Docker Engine with the image built from this checkout.
//
// Click is, per visitor, from sending POST /start (a fresh cookie jar) to
// the visitor's peer answering GET /me/api/v1/info through the proxy,
// with the pool full beforehand: what "Start chatting" costs a visitor.
// Refill is pool peers started per second while the pool refills from
// empty (container created and started, web app answering). IdleMemory
// is the memory `docker stats` reports per idle peer container. Load is
// Visitors visitors clicking at once with MaxPeers = Visitors: how many
// were chatting (their peer answered) and the slowest click.
//
// SwarmClick is Click with the Swarm backend (peers are services on an
// overlay network of a single-node swarm the run initialises if the
// engine is in none), the dispatcher running in a container on that
// overlay and reached through a published loopback port (the host cannot
// resolve the peers' service names); SwarmRefill is its Refill.
type DispatchResult struct {
	DispatchConfig
	Unavailable      string // why nothing was measured (no engine)
	Click            Dist
	Refill           float64 // peers per second
	IdleMemory       Dist    // bytes per container (a Dist of bytes, not durations)
	LoadOK           int
	LoadSlowest      time.Duration
	SwarmUnavailable string // why the Swarm figures are missing
	SwarmClick       Dist
	SwarmRefill      float64
}

// RunDispatch measures the dispatcher with real containers.
func RunDispatch(ctx context.Context, cfg DispatchConfig) (DispatchResult, error) {
	res := DispatchResult{DispatchConfig: cfg}
	if err := exec.CommandContext(ctx, "docker", "info").Run(); err != nil {
		res.Unavailable = "no Docker Engine answers"
		return res, nil
	}
	root, err := proctest.ModuleRoot()
	if err != nil {
		return res, err
	}
	suffix := dockertest.Random()
	image := "parley:bench-" + suffix
	if out, err := exec.CommandContext(ctx, filepath.Join(root, "docker", "build.sh"), image).CombinedOutput(); err != nil {
		return res, fmt.Errorf("build image: %v\n%s", err, out)
	}
	defer exec.Command("docker", "image", "rm", "-f", image).Run()
	network := "parley-bench-" + suffix
	if out, err := exec.CommandContext(ctx, "docker", "network", "create", "--label", "parley.test=1", network).CombinedOutput(); err != nil {
		return res, fmt.Errorf("network: %v: %s", err, out)
	}
	defer exec.Command("docker", "network", "rm", network).Run()
	name := "bench" + suffix
	defer dockertest.RemoveLabelled("parley.dispatcher", name)

	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	engine := docker.New(docker.Config{Dispatcher: name, Image: image, Network: network, Memory: 96 << 20, NanoCPUs: 5e8, Pids: 256})
	secret := make([]byte, 32)
	rand.Read(secret)
	run := func(pool, maxPeers int, measure func(url string, d *dispatch.Dispatcher, ready <-chan string) error) error {
		readyCh := make(chan string, 256)
		d, err := dispatch.New(dispatch.Config{Backend: engine, Secret: secret, Pool: pool, MaxPeers: maxPeers,
			Idle: time.Hour, Keep: time.Hour, Sync: 2 * time.Second, StartRate: 1000, StartBurst: 1000, Logger: quiet,
			ReadyTimeout: cfg.Timeout,
			Ephemeral:    true, Event: func(kind string, kv ...any) {
				if kind == "pool-peer" {
					select {
					case readyCh <- fmt.Sprint(kv...):
					default:
					}
				}
			}})
		if err != nil {
			return err
		}
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return err
		}
		srv := &http.Server{Handler: d.Handler()}
		go srv.Serve(ln)
		rctx, stop := context.WithCancel(ctx)
		done := make(chan struct{})
		go func() { defer close(done); d.Run(rctx) }()
		err = measure("http://"+ln.Addr().String(), d, readyCh)
		srv.Close()
		stop()
		<-done // ephemeral: its peers are removed
		return err
	}

	// Clicks with a warm pool, and the refill rate from empty.
	err = run(cfg.Pool, cfg.Pool+cfg.Clicks, func(url string, _ *dispatch.Dispatcher, ready <-chan string) error {
		t0 := time.Now()
		for range cfg.Pool {
			if err := waitReady(ready, cfg.Timeout); err != nil {
				return err
			}
		}
		res.Refill = float64(cfg.Pool) / time.Since(t0).Seconds()
		var clicks []time.Duration
		for range cfg.Clicks {
			d, err := click(url, cfg.Timeout)
			if err != nil {
				return err
			}
			clicks = append(clicks, d)
			if err := waitReady(ready, cfg.Timeout); err != nil { // the pool refills behind
				return err
			}
		}
		res.Click = NewDist(clicks)
		mem, err := containerMemory(ctx, name)
		if err != nil {
			return err
		}
		// A Dist of bytes: its arithmetic is the same.
		asDur := make([]time.Duration, len(mem))
		for i, m := range mem {
			asDur[i] = time.Duration(m)
		}
		res.IdleMemory = NewDist(asDur)
		return nil
	})
	if err != nil {
		return res, err
	}

	// The same clicks with the Swarm backend.
	if err := runSwarmClicks(ctx, cfg, image, &res); err != nil {
		return res, fmt.Errorf("swarm: %w", err)
	}

	// Many visitors at once.
	err = run(cfg.Pool, cfg.Visitors, func(url string, _ *dispatch.Dispatcher, _ <-chan string) error {
		var wg sync.WaitGroup
		var mu sync.Mutex
		for range cfg.Visitors {
			wg.Add(1)
			go func() {
				defer wg.Done()
				d, err := click(url, cfg.Timeout)
				mu.Lock()
				defer mu.Unlock()
				if err == nil {
					res.LoadOK++
					res.LoadSlowest = max(res.LoadSlowest, d)
				}
			}()
		}
		wg.Wait()
		return nil
	})
	return res, err
}

// runSwarmClicks times clicks with a warm pool on a swarm: the
// dispatcher in a container on an overlay network, its peers services.
func runSwarmClicks(ctx context.Context, cfg DispatchConfig, image string, res *DispatchResult) error {
	if _, err := dockertest.InitSwarm(ctx); err != nil {
		res.SwarmUnavailable = err.Error()
		return nil
	}
	defer dockertest.LeaveSwarm() // if it made the swarm and no test uses it now
	suffix := dockertest.Random()
	network := "parley-bench-swarm-" + suffix
	if out, err := exec.CommandContext(ctx, "docker", "network", "create", "--driver", "overlay", "--attachable", "--label", "parley.test=1", network).CombinedOutput(); err != nil {
		return fmt.Errorf("network: %v: %s", err, out)
	}
	defer exec.Command("docker", "network", "rm", network).Run()
	name := "benchsw" + suffix
	defer dockertest.RemoveLabelled("parley.test", name)
	defer dockertest.RemoveServices("parley.dispatcher", name)
	d, err := dockertest.StartDispatcher(ctx, image, network, "parley.test", name, "--backend", "swarm", "--image", image,
		"--network", network, "--name", name, "--pool", strconv.Itoa(cfg.Pool), "--max-peers", strconv.Itoa(cfg.Pool+cfg.Clicks),
		"--idle", "1h", "--start-rate", "60000", "--start-burst", "1000", "--peer-memory", strconv.Itoa(96<<20), "--peer-cpus", "0.5")
	if err != nil {
		return err
	}
	defer d.Remove()
	ready := func() error {
		wctx, cancel := context.WithTimeout(ctx, cfg.Timeout)
		defer cancel()
		_, err := d.Event(wctx, "pool-peer")
		return err
	}
	t0 := time.Now()
	for range cfg.Pool {
		if err := ready(); err != nil {
			return err
		}
	}
	res.SwarmRefill = float64(cfg.Pool) / time.Since(t0).Seconds()
	var clicks []time.Duration
	for range cfg.Clicks {
		c, err := click(d.URL, cfg.Timeout)
		if err != nil {
			return err
		}
		clicks = append(clicks, c)
		if err := ready(); err != nil { // the pool refills behind
			return err
		}
	}
	res.SwarmClick = NewDist(clicks)
	return nil
}

func waitReady(ready <-chan string, timeout time.Duration) error {
	select {
	case <-ready:
		return nil
	case <-time.After(timeout):
		return fmt.Errorf("no pool peer ready within %v", timeout)
	}
}

// click is one new visitor: Start chatting, then their peer answers.
func click(url string, timeout time.Duration) (time.Duration, error) {
	jar, _ := cookiejar.New(nil)
	c := &http.Client{Jar: jar, Timeout: timeout}
	t0 := time.Now()
	resp, err := c.Post(url+"/start", "application/x-www-form-urlencoded", nil)
	if err != nil {
		return 0, err
	}
	resp.Body.Close()
	resp, err = c.Get(url + "/me/api/v1/info")
	if err != nil {
		return 0, err
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 {
		return 0, fmt.Errorf("visitor's peer: %s", resp.Status)
	}
	return time.Since(t0), nil
}

// containerMemory reads the memory each of the dispatcher's containers
// uses now.
func containerMemory(ctx context.Context, name string) ([]int64, error) {
	out, err := exec.CommandContext(ctx, "docker", "ps", "-q", "--filter", "label=parley.dispatcher="+name).Output()
	if err != nil {
		return nil, err
	}
	ids := strings.Fields(string(out))
	if len(ids) == 0 {
		return nil, nil
	}
	out, err = exec.CommandContext(ctx, "docker", append([]string{"stats", "--no-stream", "--format", "{{.MemUsage}}"}, ids...)...).Output()
	if err != nil {
		return nil, err
	}
	var mem []int64
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		used, _, _ := strings.Cut(line, " / ")
		if b, ok := parseSize(strings.TrimSpace(used)); ok {
			mem = append(mem, b)
		}
	}
	return mem, nil
}

// parseSize reads docker's sizes such as "23.4MiB".
func parseSize(s string) (int64, bool) {
	units := []struct {
		suffix string
		mult   float64
	}{{"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10}, {"B", 1}}
	for _, u := range units {
		if v, ok := strings.CutSuffix(s, u.suffix); ok {
			f, err := strconv.ParseFloat(v, 64)
			return int64(f * u.mult), err == nil
		}
	}
	return 0, false
}

package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"golang.org/x/time/rate"

	"github.com/parley-chat/parley/internal/datadir"
	"github.com/parley-chat/parley/internal/dispatch"
	"github.com/parley-chat/parley/internal/dispatch/docker"
	"github.com/parley-chat/parley/internal/dispatch/swarm"
)

func runDispatch(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("dispatch", "dispatch --image IMAGE [flags]", stderr)
	backend := fs.String("backend", "docker", "where peers run: docker (containers of one Docker Engine) or swarm (services of a Docker swarm; run the dispatcher on a manager, attached to --network)")
	image := fs.String("image", "parley:dev", "image of the visitors' peers (build it with docker/build.sh)")
	listen := fs.String("listen", "127.0.0.1:8080", "address of the dispatcher's web page")
	pool := fs.Int("pool", 2, "started peers kept ready for new visitors")
	maxPeers := fs.Int("max-peers", 20, "peers in all: ready, in use, and stopped with their data kept")
	idle := fs.Duration("idle", 30*time.Minute, "stop a visitor's peer after this long without a request")
	keep := fs.Duration("keep", 7*24*time.Hour, "keep a stopped peer's identity and history this long")
	network := fs.String("network", "parley", "Docker network of the peers (with --backend swarm an overlay network, created if missing); the dispatcher must reach them on it, and it must reach the relay")
	var bootstrap, rooms listFlag
	fs.Var(&bootstrap, "bootstrap", "relay multiaddr (with /p2p/ID) the peers use, repeatable")
	fs.Var(&rooms, "rooms", "rooms every visitor joins (comma-separated, repeatable; default lobby)")
	name := fs.String("name", "default", "this dispatcher's name: it manages only the containers and volumes labelled with it")
	data := fs.String("data", filepath.Join(datadir.Default(), "dispatch"), "directory for the dispatcher's secret")
	socket := fs.String("docker-socket", "/var/run/docker.sock", "the Docker Engine's socket")
	memory := fs.Int64("peer-memory", 96<<20, "memory limit per peer, in bytes")
	cpus := fs.Float64("peer-cpus", 0.5, "CPU limit per peer")
	memoryRes := fs.Int64("peer-memory-reservation", 32<<20, "memory reserved per peer, in bytes (--backend swarm: a node takes a peer only if this much is free)")
	cpusRes := fs.Float64("peer-cpus-reservation", 0.05, "CPU reserved per peer (--backend swarm)")
	perNode := fs.Int("max-peers-per-node", 0, "running peers per swarm node at most, so that one node does not fill while others idle (--backend swarm; 0: no cap)")
	startRate := fs.Float64("start-rate", 6, "new peers per minute one client address may ask for (behind a proxy every visitor shares its address)")
	startBurst := fs.Int("start-burst", 3, "new peers one client address may ask for at once")
	jsonOut := fs.Bool("json", false, "one JSON event per line on stdout")
	ephemeral := fs.Bool("ephemeral", false, "remove every peer and its data when the dispatcher stops (demos, tests)")
	logLevel := fs.String("log-level", "warn", "log level on stderr: debug, info, warn or error")
	if err := parseNoArgs(fs, args); err != nil {
		return err
	}
	switch {
	case *pool < 0 || *maxPeers <= 0 || *pool > *maxPeers:
		fs.Usage()
		return fmt.Errorf("%w: want 0 ≤ --pool ≤ --max-peers and --max-peers > 0", errUsage)
	case *idle <= 0 || *keep <= 0:
		fs.Usage()
		return fmt.Errorf("%w: --idle and --keep must be positive", errUsage)
	case *cpus <= 0 || *memory < 16<<20:
		fs.Usage()
		return fmt.Errorf("%w: --peer-cpus must be positive and --peer-memory at least 16 MiB", errUsage)
	case *memoryRes < 0 || *cpusRes < 0 || *memoryRes > *memory || *cpusRes > *cpus || *perNode < 0:
		fs.Usage()
		return fmt.Errorf("%w: reservations must be between 0 and the limits, --max-peers-per-node at least 0", errUsage)
	case *startRate <= 0 || *startBurst <= 0:
		fs.Usage()
		return fmt.Errorf("%w: --start-rate and --start-burst must be positive", errUsage)
	case *backend != "docker" && *backend != "swarm":
		fs.Usage()
		return fmt.Errorf("%w: --backend %q: docker or swarm", errUsage, *backend)
	case strings.ContainsAny(*name, " /.") || *name == "":
		return fmt.Errorf("%w: --name %q: letters, digits, '-' and '_' only", errUsage, *name)
	}
	c := common{logLevel: *logLevel}
	log, err := c.logger(stderr)
	if err != nil {
		return err
	}
	secret, err := loadSecret(filepath.Join(*data, "secret"))
	if err != nil {
		return err
	}
	peerArgs := []string{}
	for _, b := range bootstrap {
		peerArgs = append(peerArgs, "--bootstrap", b)
	}
	for _, list := range rooms {
		for _, r := range strings.Split(list, ",") {
			if r = strings.TrimSpace(r); r != "" {
				peerArgs = append(peerArgs, r)
			}
		}
	}
	var engine dispatch.Backend
	switch *backend {
	case "swarm":
		engine = swarm.New(swarm.Config{Socket: *socket, Dispatcher: *name, Image: *image, Network: *network,
			Args: peerArgs, Memory: *memory, NanoCPUs: int64(*cpus * 1e9), Pids: 256,
			MemoryReservation: *memoryRes, NanoCPUsReservation: int64(*cpusRes * 1e9), MaxPerNode: *perNode, Logger: log})
	default:
		engine = docker.New(docker.Config{Socket: *socket, Dispatcher: *name, Image: *image, Network: *network,
			Args: peerArgs, Memory: *memory, NanoCPUs: int64(*cpus * 1e9), Pids: 256})
	}
	pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	err = engine.Ping(pctx)
	cancel()
	if err != nil {
		return fmt.Errorf("cannot use the Docker engine (--backend %s): %w", *backend, err)
	}

	var outMu sync.Mutex
	emit := func(kind string, kv ...any) {
		if !*jsonOut {
			return
		}
		ev := map[string]any{"event": kind}
		for i := 0; i+1 < len(kv); i += 2 {
			ev[fmt.Sprint(kv[i])] = kv[i+1]
		}
		b, _ := json.Marshal(ev)
		outMu.Lock()
		defer outMu.Unlock()
		fmt.Fprintln(stdout, string(b))
	}
	d, err := dispatch.New(dispatch.Config{Backend: engine, Secret: secret, Pool: *pool, MaxPeers: *maxPeers,
		Idle: *idle, Keep: *keep, Logger: log, Event: emit, Ephemeral: *ephemeral,
		StartRate: rate.Limit(*startRate / 60), StartBurst: *startBurst})
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", *listen, err)
	}
	srv := &http.Server{Handler: d.Handler(), ReadHeaderTimeout: 10 * time.Second,
		BaseContext: func(net.Listener) context.Context { return ctx }}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	ran := make(chan error, 1)
	go func() { ran <- d.Run(ctx) }()
	url := "http://" + ln.Addr().String() + "/"
	emit("ready", "listen", url)
	if !*jsonOut {
		fmt.Fprintf(stdout, "parley dispatch: visitors start at %s\n", url)
	}
	select {
	case <-ctx.Done():
	case err := <-served:
		return fmt.Errorf("web server: %w", err)
	}
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	err = srv.Shutdown(sctx)
	<-ran
	return err
}

// loadSecret returns the dispatcher's secret, creating it on first start:
// it signs visitors' cookies and derives their peers' tokens, so it must
// outlive a restart.
func loadSecret(path string) ([]byte, error) {
	b, err := os.ReadFile(path)
	if err == nil {
		s, err := hex.DecodeString(strings.TrimSpace(string(b)))
		if err != nil || len(s) < 16 {
			return nil, fmt.Errorf("dispatcher secret %s is damaged: move it away (visitors then get new peers)", path)
		}
		return s, nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("read dispatcher secret: %w", err)
	}
	s := make([]byte, 32)
	rand.Read(s)
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("create dispatcher secret: %w", err)
	}
	if err := os.WriteFile(path, []byte(hex.EncodeToString(s)+"\n"), 0o600); err != nil {
		return nil, fmt.Errorf("write dispatcher secret: %w", err)
	}
	return s, nil
}

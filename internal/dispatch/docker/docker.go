// Package docker runs the dispatcher's peers as containers of one Docker
// Engine, over the Engine API on its Unix socket with net/http (package
// engineapi: about a dozen calls, each a small JSON request, pinned to
// API v1.41).
//
// Every container and volume it creates carries the label
// parley.dispatcher=NAME, and it lists, changes and removes only those.
// The dispatcher's state lives in those labels and in container names:
// "parley-NAME-pool-ID" is a started peer no visitor has yet,
// "parley-NAME-peer-ID" one that belongs to a visitor; the volume
// "parley-NAME-ID" holds the peer's identity and history.
package docker

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/parley-chat/parley/internal/dispatch"
	"github.com/parley-chat/parley/internal/dispatch/engineapi"
)

// Labels set on everything the dispatcher creates.
const (
	LabelDispatcher = "parley.dispatcher"
	LabelPeer       = "parley.peer"
)

// Config describes how peers are run.
type Config struct {
	Socket     string   // the Engine's Unix socket (default /var/run/docker.sock)
	Dispatcher string   // this dispatcher's name, in labels and names
	Image      string   // e.g. parley:dev
	Network    string   // the Docker network peers join (the dispatcher reaches them on it)
	Args       []string // arguments after `parley web …` (bootstrap, rooms)
	Memory     int64    // bytes per container
	NanoCPUs   int64    // CPU per container, in 1e-9 CPUs
	Pids       int64    // processes per container
	WebPort    int      // the port each peer's web app listens on (7780)
}

// Engine is a dispatch.Backend on one Docker Engine.
type Engine struct {
	cfg Config
	api *engineapi.Client
}

var _ dispatch.Backend = (*Engine)(nil)

// New returns an engine client; it does not contact the engine (Ping does).
func New(cfg Config) *Engine {
	if cfg.Socket == "" {
		cfg.Socket = "/var/run/docker.sock"
	}
	if cfg.WebPort == 0 {
		cfg.WebPort = 7780
	}
	return &Engine{cfg: cfg, api: engineapi.New(cfg.Socket)}
}

func notFound(err error) bool { return engineapi.NotFound(err) }

func (e *Engine) do(ctx context.Context, method, path string, query url.Values, in, out any) error {
	return e.api.Do(ctx, method, path, query, in, out)
}

// Ping checks the engine answers and the image exists.
func (e *Engine) Ping(ctx context.Context) error {
	if err := e.do(ctx, "GET", "/_ping", nil, nil, nil); err != nil {
		return err
	}
	if err := e.do(ctx, "GET", "/images/"+url.PathEscape(e.cfg.Image)+"/json", nil, nil, nil); err != nil {
		if notFound(err) {
			return fmt.Errorf("image %s not found: build it with docker/build.sh %s", e.cfg.Image, e.cfg.Image)
		}
		return err
	}
	if err := e.do(ctx, "GET", "/networks/"+url.PathEscape(e.cfg.Network), nil, nil, nil); err != nil {
		if notFound(err) {
			return fmt.Errorf("docker network %q not found: create it (docker network create %s) or name another with --network", e.cfg.Network, e.cfg.Network)
		}
		return err
	}
	return nil
}

func (e *Engine) prefix() string { return "parley-" + e.cfg.Dispatcher + "-" }

func (e *Engine) volumeName(id string) string { return e.prefix() + id }

func (e *Engine) filters(extra ...string) url.Values {
	return engineapi.Filters(map[string][]string{"label": append([]string{LabelDispatcher + "=" + e.cfg.Dispatcher}, extra...)})
}

type containerJSON struct {
	ID     string `json:"Id"`
	Names  []string
	Labels map[string]string
	State  string
}

type inspectJSON struct {
	ID    string `json:"Id"`
	Name  string
	State struct {
		Running    bool
		Status     string
		ExitCode   int
		FinishedAt time.Time
	}
	NetworkSettings struct {
		Networks map[string]struct{ IPAddress string }
	}
}

// List returns every peer of this dispatcher: containers, and volumes
// whose container is gone.
func (e *Engine) List(ctx context.Context) ([]dispatch.Peer, error) {
	var cs []containerJSON
	q := e.filters()
	q.Set("all", "1")
	if err := e.do(ctx, "GET", "/containers/json", q, nil, &cs); err != nil {
		return nil, err
	}
	seen := make(map[string]bool)
	var out []dispatch.Peer
	for _, c := range cs {
		id := c.Labels[LabelPeer]
		if id == "" {
			continue
		}
		p, err := e.inspect(ctx, c.ID)
		if err != nil {
			if notFound(err) {
				continue
			}
			return nil, err
		}
		seen[id] = true
		out = append(out, p)
	}
	var vols struct {
		Volumes []struct {
			Name   string
			Labels map[string]string
		}
	}
	if err := e.do(ctx, "GET", "/volumes", e.filters(), nil, &vols); err != nil {
		return nil, err
	}
	for _, v := range vols.Volumes {
		if id := v.Labels[LabelPeer]; id != "" && !seen[id] {
			out = append(out, dispatch.Peer{ID: id, Claimed: true, Gone: true})
		}
	}
	return out, nil
}

func (e *Engine) inspect(ctx context.Context, ref string) (dispatch.Peer, error) {
	var in inspectJSON
	if err := e.do(ctx, "GET", "/containers/"+url.PathEscape(ref)+"/json", nil, nil, &in); err != nil {
		return dispatch.Peer{}, err
	}
	name := strings.TrimPrefix(in.Name, "/")
	p := dispatch.Peer{
		ID:      strings.TrimPrefix(strings.TrimPrefix(name, e.prefix()+"peer-"), e.prefix()+"pool-"),
		Claimed: strings.HasPrefix(name, e.prefix()+"peer-"),
		Running: in.State.Running,
		Exited:  in.State.Status == "exited" || in.State.Status == "dead",
		Stopped: in.State.FinishedAt,
	}
	if n, ok := in.NetworkSettings.Networks[e.cfg.Network]; ok && n.IPAddress != "" {
		p.Addr = net.JoinHostPort(n.IPAddress, fmt.Sprint(e.cfg.WebPort))
	}
	return p, nil
}

func (e *Engine) containerName(id string, claimed bool) string {
	if claimed {
		return e.prefix() + "peer-" + id
	}
	return e.prefix() + "pool-" + id
}

// Create starts a new peer: its volume, then its container.
func (e *Engine) Create(ctx context.Context, id, token string, claimed bool) (dispatch.Peer, error) {
	labels := map[string]string{LabelDispatcher: e.cfg.Dispatcher, LabelPeer: id}
	vol := map[string]any{"Name": e.volumeName(id), "Labels": labels}
	if err := e.do(ctx, "POST", "/volumes/create", nil, vol, nil); err != nil {
		return dispatch.Peer{}, fmt.Errorf("create volume: %w", err)
	}
	cmd := append([]string{"web", "--web", fmt.Sprintf("0.0.0.0:%d", e.cfg.WebPort), "--web-allow-remote", "--no-browser"}, e.cfg.Args...)
	spec := map[string]any{
		"Image":  e.cfg.Image,
		"Cmd":    cmd,
		"Env":    []string{"PARLEY_WEB_TOKEN=" + token},
		"Labels": labels,
		"HostConfig": map[string]any{
			// The volume's labels again: if the engine has to make the
			// volume itself (ours was removed while a cancelled create
			// still ran), it carries them, and clean-up by label finds it.
			"Mounts": []map[string]any{{"Type": "volume", "Source": e.volumeName(id), "Target": "/data",
				"VolumeOptions": map[string]any{"Labels": labels}}},
			"NetworkMode": e.cfg.Network,
			"Memory":      e.cfg.Memory,
			"NanoCpus":    e.cfg.NanoCPUs,
			"PidsLimit":   e.cfg.Pids,
			"CapDrop":     []string{"ALL"},
			"SecurityOpt": []string{"no-new-privileges"},
			"LogConfig":   map[string]any{"Type": "json-file", "Config": map[string]string{"max-size": "1m", "max-file": "2"}},
		},
	}
	var created struct {
		ID string `json:"Id"`
	}
	q := url.Values{"name": {e.containerName(id, claimed)}}
	if err := e.do(ctx, "POST", "/containers/create", q, spec, &created); err != nil {
		return dispatch.Peer{}, fmt.Errorf("create container: %w", err)
	}
	return e.Start(ctx, id)
}

// ref finds a peer's container, claimed or in the pool.
func (e *Engine) ref(ctx context.Context, id string) (string, error) {
	for _, claimed := range []bool{true, false} {
		name := e.containerName(id, claimed)
		var in inspectJSON
		err := e.do(ctx, "GET", "/containers/"+name+"/json", nil, nil, &in)
		if err == nil {
			return name, nil
		}
		if !notFound(err) {
			return "", err
		}
	}
	return "", fmt.Errorf("peer %s: %w", id, dispatch.ErrNoContainer)
}

// Start starts a peer's container (already started is fine).
func (e *Engine) Start(ctx context.Context, id string) (dispatch.Peer, error) {
	name, err := e.ref(ctx, id)
	if err != nil {
		return dispatch.Peer{}, err
	}
	if err := e.do(ctx, "POST", "/containers/"+name+"/start", nil, nil, nil); err != nil && engineapi.Status(err) != http.StatusNotModified {
		return dispatch.Peer{}, fmt.Errorf("start container: %w", err)
	}
	return e.inspect(ctx, name)
}

// Claim gives a pool peer to a visitor: its container is renamed.
func (e *Engine) Claim(ctx context.Context, id string) error {
	q := url.Values{"name": {e.containerName(id, true)}}
	return e.do(ctx, "POST", "/containers/"+e.containerName(id, false)+"/rename", q, nil, nil)
}

// Stop stops a peer's container; its volume stays.
func (e *Engine) Stop(ctx context.Context, id string) error {
	name, err := e.ref(ctx, id)
	if err != nil {
		return err
	}
	if err := e.do(ctx, "POST", "/containers/"+name+"/stop", url.Values{"t": {"5"}}, nil, nil); err != nil && engineapi.Status(err) != http.StatusNotModified {
		return err
	}
	return nil
}

// Remove removes a peer's container and volume.
func (e *Engine) Remove(ctx context.Context, id string) error {
	if name, err := e.ref(ctx, id); err == nil {
		if err := e.do(ctx, "DELETE", "/containers/"+name, url.Values{"force": {"1"}}, nil, nil); err != nil && !notFound(err) {
			return err
		}
	} else if !errors.Is(err, dispatch.ErrNoContainer) {
		return err
	}
	if err := e.do(ctx, "DELETE", "/volumes/"+e.volumeName(id), nil, nil, nil); err != nil && !notFound(err) {
		return err
	}
	return nil
}

// Recreate makes a new container for a peer whose container is gone but
// whose volume is kept.
func (e *Engine) Recreate(ctx context.Context, id, token string) (dispatch.Peer, error) {
	return e.Create(ctx, id, token, true)
}

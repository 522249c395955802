// Package swarm runs the dispatcher's peers as Docker Swarm services, so
// that they spread over the nodes of a cluster. It speaks the Engine API of
// a swarm manager over its Unix socket (package engineapi), like the
// single-host backend (package docker) does.
//
// Each peer is a service "parley-NAME-ID" with one replica on an overlay
// network; the dispatcher reaches it by that name through Swarm's DNS
// (endpoint mode dnsrr: the name resolves to the one task's address, no
// virtual IP), so the dispatcher must itself be attached to that network:
// it runs as a service or container on it (docker/stack.yaml). A host
// process cannot resolve Swarm's names or route to an overlay.
//
// The state lives in service labels, so a restarted dispatcher finds
// every peer again:
//
//	parley.dispatcher=NAME  every service and volume of this dispatcher
//	parley.peer=ID          the peer (and visitor) ID
//	parley.claimed=1        the peer belongs to a visitor (0: in the pool)
//	parley.node=NODE        the node that holds the peer's volume
//	parley.stopped=TIME     when the idle stop scaled it to 0 (RFC 3339)
//
// The peer's identity and history are in a local volume
// "parley-NAME-ID", which Swarm creates on the node that first runs the
// task. As soon as the task is placed, the service gets the placement
// constraint node.id==NODE (and the parley.node label), so the peer always
// comes back to the node that holds its data; changing only a constraint
// that the task's node satisfies does not restart the task. Stop scales
// the service to 0 replicas and Start to 1: the service, its labels and
// its volume stay.
//
// Resources: every task has limits (memory, CPU, processes) and
// reservations (memory, CPU); Swarm's scheduler places a task only where
// its reservation fits, and among those prefers the node running the
// fewest tasks. MaxPerNode, when set, caps this dispatcher's running peers
// per node: nodes at the cap are excluded with node.id!=NODE constraints
// when a new peer is placed (placement is then serialised, so the cap is
// exact for new peers; a returning visitor's peer goes back to its own
// node even when that node is at the cap). Swarm's own per-service
// Placement.MaxReplicas and spread preferences act within one service,
// and each service here has a single replica, so they cannot spread peers.
package swarm

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/parley-chat/parley/internal/dispatch"
	"github.com/parley-chat/parley/internal/dispatch/engineapi"
)

// Labels on the services and volumes the dispatcher creates.
const (
	LabelDispatcher = "parley.dispatcher"
	LabelPeer       = "parley.peer"
	LabelClaimed    = "parley.claimed"
	LabelNode       = "parley.node"
	LabelStopped    = "parley.stopped"
)

// Config describes how peers are run.
type Config struct {
	Socket     string   // a swarm manager's Unix socket (default /var/run/docker.sock)
	Dispatcher string   // this dispatcher's name, in labels and names
	Image      string   // e.g. parley:dev, or repo/parley@sha256:… from a registry
	Network    string   // the overlay network (created, attachable, if missing)
	Args       []string // arguments after `parley web …` (bootstrap, rooms)
	// Limits per task.
	Memory   int64 // bytes
	NanoCPUs int64 // 1e-9 CPUs
	Pids     int64
	// Reservations per task: the scheduler places a task only on a node
	// with this much unreserved.
	MemoryReservation   int64
	NanoCPUsReservation int64
	// MaxPerNode caps this dispatcher's running peers per node (0: no cap).
	MaxPerNode int
	WebPort    int           // the port each peer's web app listens on (7780)
	RunTimeout time.Duration // how long a task may take to run (default 60s)
	Logger     *slog.Logger
}

// Cluster is a dispatch.Backend on a Docker swarm.
type Cluster struct {
	cfg   Config
	api   *engineapi.Client
	log   *slog.Logger
	place sync.Mutex // held from choosing a node to pinning, when MaxPerNode is set

	mu        sync.Mutex
	image     string // what services run: the local image's ID, or cfg.Image
	localNode string // the node ID of the manager spoken to
}

var _ dispatch.Backend = (*Cluster)(nil)

// New returns a swarm client; it does not contact the engine (Ping does).
func New(cfg Config) *Cluster {
	if cfg.WebPort == 0 {
		cfg.WebPort = 7780
	}
	if cfg.RunTimeout == 0 {
		cfg.RunTimeout = 60 * time.Second
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	return &Cluster{cfg: cfg, api: engineapi.New(cfg.Socket), log: cfg.Logger, image: cfg.Image}
}

func (c *Cluster) do(ctx context.Context, method, path string, query url.Values, in, out any) error {
	return c.api.Do(ctx, method, path, query, in, out)
}

// Ping checks the engine is a swarm manager and finds the image; it
// creates the overlay network if it is missing.
func (c *Cluster) Ping(ctx context.Context) error {
	if err := c.do(ctx, "GET", "/_ping", nil, nil, nil); err != nil {
		return err
	}
	var info struct {
		Swarm struct {
			NodeID           string
			LocalNodeState   string
			ControlAvailable bool
		}
	}
	if err := c.do(ctx, "GET", "/info", nil, nil, &info); err != nil {
		return fmt.Errorf("engine info: %w", err)
	}
	switch {
	case info.Swarm.LocalNodeState != "active":
		return fmt.Errorf("this Docker Engine is not in a swarm (state %q): run docker swarm init, or use --backend docker", info.Swarm.LocalNodeState)
	case !info.Swarm.ControlAvailable:
		return errors.New("this Docker Engine is a swarm worker: the dispatcher must speak to a manager's engine (place it on a manager)")
	}
	image := c.cfg.Image
	if !strings.Contains(image, "@sha256:") {
		// A local image is run by its ID: Swarm then uses the image as it
		// is on each node instead of asking a registry for it first. An
		// image loaded with docker load has the same ID on every node.
		var in struct {
			ID string `json:"Id"`
		}
		err := c.do(ctx, "GET", "/images/"+url.PathEscape(image)+"/json", nil, nil, &in)
		switch {
		case err == nil:
			image = in.ID
		case engineapi.NotFound(err):
			c.log.Warn("the image is not on this node: Swarm will pull it from its registry on each node", "image", image)
		default:
			return fmt.Errorf("inspect image %s: %w", image, err)
		}
	}
	c.mu.Lock()
	c.image, c.localNode = image, info.Swarm.NodeID
	c.mu.Unlock()
	var nw struct {
		Driver     string
		Scope      string
		Attachable bool
	}
	err := c.do(ctx, "GET", "/networks/"+url.PathEscape(c.cfg.Network), nil, nil, &nw)
	switch {
	case engineapi.NotFound(err):
		spec := map[string]any{"Name": c.cfg.Network, "Driver": "overlay", "Attachable": true, "CheckDuplicate": true,
			"Labels": map[string]string{LabelDispatcher: c.cfg.Dispatcher}}
		if err := c.do(ctx, "POST", "/networks/create", nil, spec, nil); err != nil {
			return fmt.Errorf("create overlay network %s: %w", c.cfg.Network, err)
		}
		c.log.Info("created the peers' overlay network; the dispatcher must be attached to it to reach them", "network", c.cfg.Network)
	case err != nil:
		return fmt.Errorf("inspect network %s: %w", c.cfg.Network, err)
	case nw.Driver != "overlay" || nw.Scope != "swarm":
		return fmt.Errorf("network %s is a %s network of scope %s: the swarm backend needs an overlay network (name another with --network)", c.cfg.Network, nw.Driver, nw.Scope)
	}
	return nil
}

func (c *Cluster) prefix() string { return "parley-" + c.cfg.Dispatcher + "-" }

func (c *Cluster) name(id string) string { return c.prefix() + id }

func (c *Cluster) addr(id string) string {
	return net.JoinHostPort(c.name(id), strconv.Itoa(c.cfg.WebPort))
}

func (c *Cluster) labelFilter() url.Values {
	return engineapi.Filters(map[string][]string{"label": {LabelDispatcher + "=" + c.cfg.Dispatcher}})
}

type serviceJSON struct {
	ID        string
	UpdatedAt time.Time
	Spec      struct {
		Name   string
		Labels map[string]string
		Mode   struct {
			Replicated *struct{ Replicas uint64 }
		}
	}
	ServiceStatus *struct{ RunningTasks, DesiredTasks uint64 }
}

func (s *serviceJSON) replicas() uint64 {
	if s.Spec.Mode.Replicated == nil {
		return 0
	}
	return s.Spec.Mode.Replicated.Replicas
}

type taskJSON struct {
	ID           string
	NodeID       string
	DesiredState string
	Status       struct {
		State string
		Err   string
	}
}

// services lists this dispatcher's services with their running tasks.
func (c *Cluster) services(ctx context.Context) ([]serviceJSON, error) {
	q := c.labelFilter()
	q.Set("status", "true")
	var ss []serviceJSON
	if err := c.do(ctx, "GET", "/services", q, nil, &ss); err != nil {
		return nil, fmt.Errorf("list services: %w", err)
	}
	return ss, nil
}

// List returns every peer of this dispatcher: services, and volumes on
// this node whose service is gone.
func (c *Cluster) List(ctx context.Context) ([]dispatch.Peer, error) {
	ss, err := c.services(ctx)
	if err != nil {
		return nil, err
	}
	up, err := c.nodes(ctx)
	if err != nil {
		return nil, err
	}
	seen := make(map[string]bool)
	var out []dispatch.Peer
	for i := range ss {
		s := &ss[i]
		id := s.Spec.Labels[LabelPeer]
		if id == "" {
			continue
		}
		seen[id] = true
		p := c.peer(s)
		if node := s.Spec.Labels[LabelNode]; !p.Running && !p.Exited && node != "" && !up[node] {
			// Its node, which holds its data, is gone: the peer cannot
			// run until the node is back. It counts as stopped since its
			// last change, so that the dispatcher removes it after Keep
			// (or at once, a pool peer).
			p.Exited, p.Stopped = true, s.UpdatedAt
		}
		if p.Running && s.Spec.Labels[LabelNode] == "" {
			// Placed but not pinned (the dispatcher stopped in between).
			if _, err := c.pinPlaced(ctx, s.ID); err != nil {
				c.log.Warn("pin a peer to its node", "peer", id, "err", err)
			}
		}
		out = append(out, p)
	}
	var vols struct {
		Volumes []struct {
			Name   string
			Labels map[string]string
		}
	}
	if err := c.do(ctx, "GET", "/volumes", c.labelFilter(), nil, &vols); err != nil {
		return nil, fmt.Errorf("list volumes: %w", err)
	}
	for _, v := range vols.Volumes {
		if id := v.Labels[LabelPeer]; id != "" && !seen[id] {
			out = append(out, dispatch.Peer{ID: id, Claimed: true, Gone: true})
		}
	}
	return out, nil
}

func (c *Cluster) peer(s *serviceJSON) dispatch.Peer {
	p := dispatch.Peer{ID: s.Spec.Labels[LabelPeer], Claimed: s.Spec.Labels[LabelClaimed] == "1"}
	switch {
	case s.replicas() == 0:
		p.Exited = true
		p.Stopped = s.UpdatedAt
		if t, err := time.Parse(time.RFC3339Nano, s.Spec.Labels[LabelStopped]); err == nil {
			p.Stopped = t
		}
	case s.ServiceStatus != nil && s.ServiceStatus.RunningTasks > 0:
		p.Running, p.Addr = true, c.addr(p.ID)
	}
	return p
}

// find returns a peer's service.
func (c *Cluster) find(ctx context.Context, id string) (serviceJSON, error) {
	var s serviceJSON
	err := c.do(ctx, "GET", "/services/"+c.name(id), nil, nil, &s)
	if engineapi.NotFound(err) {
		return s, fmt.Errorf("peer %s: %w", id, dispatch.ErrNoContainer)
	}
	return s, err
}

// update changes a service's spec: read, change, write with the version
// read, again if another writer came in between.
func (c *Cluster) update(ctx context.Context, ref string, change func(spec map[string]any)) error {
	var err error
	for range 5 {
		var s struct {
			Version struct{ Index uint64 }
			Spec    map[string]any
		}
		if err = c.do(ctx, "GET", "/services/"+url.PathEscape(ref), nil, nil, &s); err != nil {
			return err
		}
		change(s.Spec)
		q := url.Values{"version": {strconv.FormatUint(s.Version.Index, 10)}}
		err = c.do(ctx, "POST", "/services/"+url.PathEscape(ref)+"/update", q, s.Spec, nil)
		if err == nil || !strings.Contains(err.Error(), "out of sequence") {
			break
		}
	}
	if err != nil {
		return fmt.Errorf("update service %s: %w", ref, err)
	}
	return nil
}

// obj returns m[key] as an object, creating it.
func obj(m map[string]any, key string) map[string]any {
	if o, ok := m[key].(map[string]any); ok {
		return o
	}
	o := make(map[string]any)
	m[key] = o
	return o
}

func setReplicas(spec map[string]any, n int) {
	obj(obj(spec, "Mode"), "Replicated")["Replicas"] = n
}

func pinSpec(spec map[string]any, node string) {
	obj(spec, "Labels")[LabelNode] = node
	obj(obj(spec, "TaskTemplate"), "Placement")["Constraints"] = []string{"node.id==" + node}
}

// tasks returns a service's tasks.
func (c *Cluster) tasks(ctx context.Context, serviceID string) ([]taskJSON, error) {
	var ts []taskJSON
	q := engineapi.Filters(map[string][]string{"service": {serviceID}})
	if err := c.do(ctx, "GET", "/tasks", q, nil, &ts); err != nil {
		return nil, fmt.Errorf("list tasks: %w", err)
	}
	return ts, nil
}

// pinPlaced pins a service to the node its task was placed on, if it was.
func (c *Cluster) pinPlaced(ctx context.Context, serviceID string) (string, error) {
	ts, err := c.tasks(ctx, serviceID)
	if err != nil {
		return "", err
	}
	for _, t := range ts {
		if t.DesiredState == "running" && t.NodeID != "" {
			return t.NodeID, c.update(ctx, serviceID, func(spec map[string]any) { pinSpec(spec, t.NodeID) })
		}
	}
	return "", nil
}

// wait polls a service's tasks until one is placed on a node (running
// false) or runs (running true), and returns its node.
func (c *Cluster) wait(ctx context.Context, serviceID string, running bool, pinned string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, c.cfg.RunTimeout)
	defer cancel()
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	last := "no task yet"
	for {
		ts, err := c.tasks(ctx, serviceID)
		if err != nil && ctx.Err() == nil {
			return "", err
		}
		for _, t := range ts {
			if t.DesiredState != "running" {
				continue
			}
			switch st := t.Status.State; {
			case st == "running" || (!running && t.NodeID != ""):
				return t.NodeID, nil
			case st == "rejected" || st == "failed":
				return "", fmt.Errorf("the peer's task was %s: %s", st, t.Status.Err)
			case st == "pending" && strings.Contains(t.Status.Err, "no suitable node"):
				if pinned != "" {
					return "", fmt.Errorf("node %s, which holds the peer's data, cannot run it: %s", pinned, t.Status.Err)
				}
				return "", fmt.Errorf("%w: swarm: %s", dispatch.ErrFull, t.Status.Err)
			default:
				last = st
				if t.Status.Err != "" {
					last += ": " + t.Status.Err
				}
			}
		}
		select {
		case <-ctx.Done():
			return "", fmt.Errorf("the peer's task did not run within %v (last state: %s)", c.cfg.RunTimeout, last)
		case <-tick.C:
		}
	}
}

// nodes returns which nodes are ready and active.
func (c *Cluster) nodes(ctx context.Context) (map[string]bool, error) {
	var nodes []struct {
		ID     string
		Spec   struct{ Availability string }
		Status struct{ State string }
	}
	if err := c.do(ctx, "GET", "/nodes", nil, nil, &nodes); err != nil {
		return nil, fmt.Errorf("list nodes: %w", err)
	}
	up := make(map[string]bool, len(nodes))
	for _, n := range nodes {
		up[n.ID] = n.Spec.Availability == "active" && n.Status.State == "ready"
	}
	return up, nil
}

// terminal are the task states of a task whose container is gone or never
// ran.
var terminal = map[string]bool{"complete": true, "shutdown": true, "failed": true, "rejected": true, "orphaned": true, "remove": true}

// waitDown polls a service's tasks until none runs: a task told to shut
// down keeps its container (and the peer's volume and data directory) for
// up to the stop grace period.
func (c *Cluster) waitDown(ctx context.Context, serviceID string) error {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		ts, err := c.tasks(ctx, serviceID)
		if err != nil && ctx.Err() == nil {
			return err
		}
		up := ""
		for _, t := range ts {
			if !terminal[t.Status.State] {
				up = t.ID + " " + t.Status.State
			}
		}
		if err == nil && up == "" {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("the peer's task %s did not stop within 30s", up)
		case <-tick.C:
		}
	}
}

// exclusions returns constraints that keep a new peer off the nodes that
// run MaxPerNode of this dispatcher's peers, or ErrFull when every node
// does.
func (c *Cluster) exclusions(ctx context.Context) ([]string, error) {
	if c.cfg.MaxPerNode <= 0 {
		return nil, nil
	}
	up, err := c.nodes(ctx)
	if err != nil {
		return nil, err
	}
	ss, err := c.services(ctx)
	if err != nil {
		return nil, err
	}
	count := make(map[string]int)
	for i := range ss {
		if n := ss[i].Spec.Labels[LabelNode]; n != "" && ss[i].replicas() > 0 {
			count[n]++
		}
	}
	var cons []string
	free := 0
	for id, ok := range up {
		if !ok {
			continue
		}
		if count[id] >= c.cfg.MaxPerNode {
			cons = append(cons, "node.id!="+id)
		} else {
			free++
		}
	}
	if free == 0 {
		return nil, fmt.Errorf("%w: every node runs %d peers (the cap per node)", dispatch.ErrFull, c.cfg.MaxPerNode)
	}
	return cons, nil
}

func (c *Cluster) spec(id, token string, claimed bool, cons []string, node string) map[string]any {
	labels := map[string]string{LabelDispatcher: c.cfg.Dispatcher, LabelPeer: id}
	svcLabels := map[string]string{LabelDispatcher: c.cfg.Dispatcher, LabelPeer: id, LabelClaimed: "0"}
	if claimed {
		svcLabels[LabelClaimed] = "1"
	}
	if node != "" {
		svcLabels[LabelNode] = node
		cons = []string{"node.id==" + node}
	}
	c.mu.Lock()
	image := c.image
	c.mu.Unlock()
	args := append([]string{"web", "--web", fmt.Sprintf("0.0.0.0:%d", c.cfg.WebPort), "--web-allow-remote", "--no-browser"}, c.cfg.Args...)
	return map[string]any{
		"Name":   c.name(id),
		"Labels": svcLabels,
		"TaskTemplate": map[string]any{
			"ContainerSpec": map[string]any{
				"Image":  image,
				"Args":   args,
				"Env":    []string{"PARLEY_WEB_TOKEN=" + token},
				"Labels": labels,
				"Mounts": []map[string]any{{"Type": "volume", "Source": c.name(id), "Target": "/data",
					"VolumeOptions": map[string]any{"Labels": labels}}},
				"CapabilityDrop":  []string{"ALL"},
				"StopGracePeriod": int64(5 * time.Second),
			},
			"Resources": map[string]any{
				"Limits":       map[string]any{"MemoryBytes": c.cfg.Memory, "NanoCPUs": c.cfg.NanoCPUs, "Pids": c.cfg.Pids},
				"Reservations": map[string]any{"MemoryBytes": c.cfg.MemoryReservation, "NanoCPUs": c.cfg.NanoCPUsReservation},
			},
			"RestartPolicy": map[string]any{"Condition": "any", "Delay": int64(time.Second)},
			"Placement":     map[string]any{"Constraints": cons},
			"Networks":      []map[string]any{{"Target": c.cfg.Network}},
			"LogDriver":     map[string]any{"Name": "json-file", "Options": map[string]string{"max-size": "1m", "max-file": "2"}},
		},
		"Mode":         map[string]any{"Replicated": map[string]any{"Replicas": 1}},
		"EndpointSpec": map[string]any{"Mode": "dnsrr"},
	}
}

// Create starts a new peer: a service whose task creates the peer's
// volume on the node it is placed on, and is then pinned there.
func (c *Cluster) Create(ctx context.Context, id, token string, claimed bool) (dispatch.Peer, error) {
	return c.create(ctx, id, token, claimed, "")
}

func (c *Cluster) create(ctx context.Context, id, token string, claimed bool, node string) (dispatch.Peer, error) {
	var cons []string
	if node == "" && c.cfg.MaxPerNode > 0 {
		c.place.Lock()
		defer c.place.Unlock()
		var err error
		if cons, err = c.exclusions(ctx); err != nil {
			return dispatch.Peer{}, err
		}
	}
	var created struct{ ID string }
	if err := c.do(ctx, "POST", "/services/create", nil, c.spec(id, token, claimed, cons, node), &created); err != nil {
		return dispatch.Peer{}, fmt.Errorf("create service: %w", err)
	}
	if node == "" {
		placed, err := c.wait(ctx, created.ID, false, "")
		if err != nil {
			return dispatch.Peer{}, err
		}
		if err := c.update(ctx, created.ID, func(spec map[string]any) { pinSpec(spec, placed) }); err != nil {
			return dispatch.Peer{}, fmt.Errorf("pin the peer to node %s: %w", placed, err)
		}
		node = placed
	}
	if _, err := c.wait(ctx, created.ID, true, node); err != nil {
		return dispatch.Peer{}, err
	}
	return dispatch.Peer{ID: id, Claimed: claimed, Running: true, Addr: c.addr(id)}, nil
}

// Start scales a peer's service to one replica (already running is fine)
// and waits until its task runs.
func (c *Cluster) Start(ctx context.Context, id string) (dispatch.Peer, error) {
	s, err := c.find(ctx, id)
	if err != nil {
		return dispatch.Peer{}, err
	}
	if s.replicas() == 0 {
		// A task still stopping holds the peer's data: two peers on one
		// data directory, and the name resolving to the one going away.
		if err := c.waitDown(ctx, s.ID); err != nil {
			return dispatch.Peer{}, fmt.Errorf("start peer %s: %w", id, err)
		}
		err := c.update(ctx, s.ID, func(spec map[string]any) {
			setReplicas(spec, 1)
			delete(obj(spec, "Labels"), LabelStopped)
		})
		if err != nil {
			return dispatch.Peer{}, fmt.Errorf("start peer %s: %w", id, err)
		}
	}
	node := s.Spec.Labels[LabelNode]
	if _, err := c.wait(ctx, s.ID, true, node); err != nil {
		return dispatch.Peer{}, err
	}
	if node == "" {
		if _, err := c.pinPlaced(ctx, s.ID); err != nil {
			return dispatch.Peer{}, fmt.Errorf("pin peer %s to its node: %w", id, err)
		}
	}
	return dispatch.Peer{ID: id, Claimed: s.Spec.Labels[LabelClaimed] == "1", Running: true, Addr: c.addr(id)}, nil
}

// Claim gives a pool peer to a visitor: a label changes (a service cannot
// be renamed).
func (c *Cluster) Claim(ctx context.Context, id string) error {
	return c.update(ctx, c.name(id), func(spec map[string]any) { obj(spec, "Labels")[LabelClaimed] = "1" })
}

// Stop scales a peer's service to zero replicas and waits until its task
// has stopped; the service and its volume stay.
func (c *Cluster) Stop(ctx context.Context, id string) error {
	s, err := c.find(ctx, id)
	if err != nil {
		return err
	}
	if s.Spec.Labels[LabelNode] == "" {
		if _, err := c.pinPlaced(ctx, s.ID); err != nil {
			return fmt.Errorf("pin peer %s to its node: %w", id, err)
		}
	}
	now := time.Now().UTC().Format(time.RFC3339Nano)
	err = c.update(ctx, s.ID, func(spec map[string]any) {
		setReplicas(spec, 0)
		obj(spec, "Labels")[LabelStopped] = now
	})
	if err != nil {
		return err
	}
	return c.waitDown(ctx, s.ID)
}

// Remove removes a peer's service and, when it is on this node, its
// volume. A volume on another node stays there: the Engine API of one
// manager cannot remove another node's volumes.
func (c *Cluster) Remove(ctx context.Context, id string) error {
	s, err := c.find(ctx, id)
	switch {
	case errors.Is(err, dispatch.ErrNoContainer):
	case err != nil:
		return err
	default:
		if err := c.do(ctx, "DELETE", "/services/"+s.ID, nil, nil, nil); err != nil && !engineapi.NotFound(err) {
			return fmt.Errorf("remove service: %w", err)
		}
	}
	c.mu.Lock()
	local := c.localNode
	c.mu.Unlock()
	if node := s.Spec.Labels[LabelNode]; node != "" && local != "" && node != local {
		c.log.Warn("the peer's volume stays on its node: remove it there", "peer", id, "node", node, "volume", c.name(id))
		return nil
	}
	// The task's container goes a moment after its service: until then
	// the volume is in use.
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		err := c.do(ctx, "DELETE", "/volumes/"+c.name(id), nil, nil, nil)
		if err == nil || engineapi.NotFound(err) {
			return nil
		}
		if engineapi.Status(err) != http.StatusConflict {
			return fmt.Errorf("remove volume: %w", err)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("remove volume %s: still in use: %w", c.name(id), err)
		case <-tick.C:
		}
	}
}

// Recreate makes a new service for a peer whose service is gone but whose
// volume is kept on this node (List sees only this node's volumes).
func (c *Cluster) Recreate(ctx context.Context, id, token string) (dispatch.Peer, error) {
	c.mu.Lock()
	local := c.localNode
	c.mu.Unlock()
	if local == "" {
		return dispatch.Peer{}, errors.New("recreate a peer: the local node is not known (Ping first)")
	}
	return c.create(ctx, id, token, true, local)
}

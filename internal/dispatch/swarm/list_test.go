package swarm_test

import (
	"context"
	"encoding/json"
	"net"
	"net/http"
	"path/filepath"
	"testing"
	"time"

	"github.com/parley-chat/parley/internal/dispatch"
	"github.com/parley-chat/parley/internal/dispatch/swarm"
)

// fakeEngine answers the list calls of a swarm manager's Engine API on a
// Unix socket with fixed JSON.
func fakeEngine(t *testing.T, answers map[string]any) string {
	t.Helper()
	sock := filepath.Join(t.TempDir(), "docker.sock")
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		a, ok := answers[r.URL.Path]
		if !ok {
			http.Error(w, `{"message":"not here"}`, http.StatusNotFound)
			return
		}
		json.NewEncoder(w).Encode(a)
	})}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return sock
}

func service(id string, replicas, running int, labels map[string]string) map[string]any {
	l := map[string]string{swarm.LabelDispatcher: "d", swarm.LabelPeer: id}
	for k, v := range labels {
		l[k] = v
	}
	return map[string]any{
		"ID": "svc-" + id, "UpdatedAt": "2026-12-01T10:00:00Z",
		"Spec":          map[string]any{"Name": "parley-d-" + id, "Labels": l, "Mode": map[string]any{"Replicated": map[string]any{"Replicas": replicas}}},
		"ServiceStatus": map[string]any{"RunningTasks": running, "DesiredTasks": replicas},
	}
}

// What the dispatcher's view is made of: a service's replicas, running
// tasks and labels, the nodes' state, and volumes left without a service.
func TestListReadsPeersFromServicesNodesAndVolumes(t *testing.T) {
	sock := fakeEngine(t, map[string]any{
		"/v1.41/services": []any{
			service("pool", 1, 1, map[string]string{swarm.LabelClaimed: "0", swarm.LabelNode: "n1"}),
			service("running", 1, 1, map[string]string{swarm.LabelClaimed: "1", swarm.LabelNode: "n1"}),
			service("starting", 1, 0, map[string]string{swarm.LabelClaimed: "1", swarm.LabelNode: "n1"}),
			service("idle", 0, 0, map[string]string{swarm.LabelClaimed: "1", swarm.LabelNode: "n1", swarm.LabelStopped: "2026-12-01T09:00:00Z"}),
			service("stranded", 1, 0, map[string]string{swarm.LabelClaimed: "1", swarm.LabelNode: "n2"}),
		},
		"/v1.41/nodes": []any{
			map[string]any{"ID": "n1", "Spec": map[string]any{"Availability": "active"}, "Status": map[string]any{"State": "ready"}},
			map[string]any{"ID": "n2", "Spec": map[string]any{"Availability": "active"}, "Status": map[string]any{"State": "down"}},
		},
		"/v1.41/volumes": map[string]any{"Volumes": []any{
			map[string]any{"Name": "parley-d-running", "Labels": map[string]string{swarm.LabelDispatcher: "d", swarm.LabelPeer: "running"}},
			map[string]any{"Name": "parley-d-orphan", "Labels": map[string]string{swarm.LabelDispatcher: "d", swarm.LabelPeer: "orphan"}},
		}},
	})
	c := swarm.New(swarm.Config{Socket: sock, Dispatcher: "d", Network: "n"})
	ps, err := c.List(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	got := make(map[string]dispatch.Peer)
	for _, p := range ps {
		got[p.ID] = p
	}
	at := func(s string) time.Time { t, _ := time.Parse(time.RFC3339, s); return t }
	want := map[string]dispatch.Peer{
		"pool":     {ID: "pool", Running: true, Addr: "parley-d-pool:7780"},
		"running":  {ID: "running", Claimed: true, Running: true, Addr: "parley-d-running:7780"},
		"starting": {ID: "starting", Claimed: true},
		"idle":     {ID: "idle", Claimed: true, Exited: true, Stopped: at("2026-12-01T09:00:00Z")},
		// Its node is down: stopped since its last change, so --keep applies.
		"stranded": {ID: "stranded", Claimed: true, Exited: true, Stopped: at("2026-12-01T10:00:00Z")},
		"orphan":   {ID: "orphan", Claimed: true, Gone: true},
	}
	if len(got) != len(want) {
		t.Errorf("got %d peers, want %d: %+v", len(got), len(want), ps)
	}
	for id, w := range want {
		if g := got[id]; !g.Stopped.Equal(w.Stopped) || g.ID != w.ID || g.Claimed != w.Claimed || g.Running != w.Running ||
			g.Exited != w.Exited || g.Gone != w.Gone || g.Addr != w.Addr {
			t.Errorf("peer %s: got %+v, want %+v", id, g, w)
		}
	}
}

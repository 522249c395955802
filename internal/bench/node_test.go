package bench

import (
	"context"
	"testing"
	"time"

	"github.com/parley-chat/parley/internal/proctest"
)

// The floor program builds, speaks the events the node benchmarks wait
// for (ready, peer-joined, message), and the node section's helpers drive
// it as they drive parley: memory with peers, room messages between two.
func TestFloorProgram(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a binary")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	root, err := proctest.ModuleRoot()
	if err != nil {
		t.Fatal(err)
	}
	tmp := t.TempDir()
	bin, err := proctest.BuildPackage(ctx, root, tmp, FloorPackage)
	if err != nil {
		t.Fatal(err)
	}
	floor := floorProgram(bin)
	cfg := NodeConfig{Floor: bin, Idle: 100 * time.Millisecond, Peers: 2, DMRoundTrips: 4, Timeout: 20 * time.Second}

	p, err := floor.start(ctx, "floor", "", cfg.Timeout)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Kill()
	ready, _, err := p.Ready(ctx)
	if err != nil {
		t.Fatal(err)
	}
	mem, err := programMem(ctx, cfg, p, ready)
	if err != nil {
		t.Fatal(err)
	}
	if mem.PeersConnected != cfg.Peers || mem.IdleRSS <= 0 || mem.PeersRSS <= 0 || mem.IdleMem.Exe <= 0 {
		t.Errorf("memory %+v: want %d peers joined and every figure read", mem, cfg.Peers)
	}
	if err := p.CloseAndWait(ctx); err != nil {
		t.Errorf("exit on stdin EOF: %v", err)
	}

	dm, room, err := binaryPair(ctx, cfg, floor, tmp)
	if err != nil {
		t.Fatal(err)
	}
	if dm.N != 0 || room.N != cfg.DMRoundTrips/2 || room.P50 <= 0 {
		t.Errorf("two floor processes: dm %+v, room %+v; want no DM and %d room messages", dm, room, cfg.DMRoundTrips/2)
	}
}

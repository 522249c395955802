package bench

import (
	"context"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/parley-chat/parley/internal/chromium"
)

// The tests check the helpers only and stay fast; the measurements run
// with go test -bench (below) or go run ./cmd/parley-bench.

func TestPercentile(t *testing.T) {
	var s []time.Duration
	for i := 1; i <= 100; i++ {
		s = append(s, time.Duration(101-i)*time.Millisecond)
	}
	d := NewDist(s)
	if d.P50 != 50*time.Millisecond || d.P95 != 95*time.Millisecond || d.P99 != 99*time.Millisecond ||
		d.Min != time.Millisecond || d.Max != 100*time.Millisecond || d.N != 100 {
		t.Errorf("NewDist(1..100 ms) = %+v", d)
	}
	if got := Percentile([]time.Duration{7}, 99); got != 7 {
		t.Errorf("Percentile of one sample = %v, want 7", got)
	}
	if d := NewDist(nil); d.N != 0 || d.P99 != 0 {
		t.Errorf("NewDist(nil) = %+v", d)
	}
}

func TestFormats(t *testing.T) {
	for d, want := range map[time.Duration]string{
		87300 * time.Nanosecond: "87.3µs", 1240 * time.Microsecond: "1.24ms", 2050 * time.Millisecond: "2.05s", 0: "0",
	} {
		if got := FmtDur(d); got != want {
			t.Errorf("FmtDur(%v) = %q, want %q", d, got, want)
		}
	}
	if got := FmtPct(0.99999); got != "99.999 %" {
		t.Errorf("FmtPct(0.99999) = %q: must not round up to 100", got)
	}
	if got := FmtPct(1); got != "100 %" {
		t.Errorf("FmtPct(1) = %q", got)
	}
}

func TestRandomGraph(t *testing.T) {
	for _, c := range []struct{ n, k int }{{2, 1}, {10, 4}, {50, 4}, {100, 4}, {50, 49}, {7, 100}} {
		rng := rand.New(rand.NewPCG(uint64(c.n), uint64(c.k)))
		edges := RandomGraph(c.n, c.k, rng)
		seen := map[[2]int]bool{}
		adj := make([][]int, c.n)
		for _, e := range edges {
			a, b := min(e[0], e[1]), max(e[0], e[1])
			if a == b || seen[[2]int{a, b}] {
				t.Fatalf("n=%d k=%d: self or repeated link %v", c.n, c.k, e)
			}
			seen[[2]int{a, b}] = true
			adj[a], adj[b] = append(adj[a], b), append(adj[b], a)
		}
		// Connected?
		reached := map[int]bool{0: true}
		for queue := []int{0}; len(queue) > 0; queue = queue[1:] {
			for _, m := range adj[queue[0]] {
				if !reached[m] {
					reached[m] = true
					queue = append(queue, m)
				}
			}
		}
		if len(reached) != c.n {
			t.Errorf("n=%d k=%d: %d of %d nodes reachable", c.n, c.k, len(reached), c.n)
		}
		if full := c.n * (c.n - 1) / 2; c.k >= c.n-1 && len(edges) != full {
			t.Errorf("n=%d k=%d: %d links, want the full mesh's %d", c.n, c.k, len(edges), full)
		}
		if deg := Degrees(c.n, edges); c.k < c.n-1 {
			for i, d := range deg {
				if d < min(c.k, c.n-1) {
					t.Errorf("n=%d k=%d: node %d has %d links, fewer than it dialed", c.n, c.k, i, d)
				}
			}
		}
	}
}

func TestParseTune(t *testing.T) {
	tune, err := ParseTune("D=3,Dlo=2,Dhi=4,Dout=0,flood=false")
	if err != nil {
		t.Fatal(err)
	}
	if s := tune.String(); !strings.Contains(s, "D=3 Dlo=2 Dhi=4 Dout=0") || !strings.Contains(s, "no flood publishing") {
		t.Errorf("String() = %q", s)
	}
	for _, bad := range []string{"D=2,Dlo=3", "x=1", "D", "D=-1", "flood=maybe", "D=4,Dout=2"} {
		if _, err := ParseTune(bad); err == nil {
			t.Errorf("ParseTune(%q) accepted", bad)
		}
	}
}

func TestReport(t *testing.T) {
	s := &Suite{Cfg: DefaultSuiteConfig(), Env: Env{Date: time.Now(), GoVersion: "go", Cores: 2}}
	s.Fanout = []FanoutResult{
		{FanoutConfig: FanoutConfig{Router: GossipSub, N: 50}, Latency: Dist{N: 1, P99: 10 * time.Millisecond}, Delivered: 49, Expected: 49, Amplification: 5},
		{FanoutConfig: FanoutConfig{Router: FloodSub, N: 50}, Latency: Dist{N: 1, P99: 10 * time.Millisecond}, Delivered: 49, Expected: 49, Amplification: 30},
		{FanoutConfig: FanoutConfig{Router: Parley, N: 50}, Latency: Dist{N: 1, P99: 30 * time.Millisecond}, Delivered: 48, Expected: 49, Amplification: 5, DupPerNode: -1},
	}
	s.Lab = &LabResult{Unavailable: "no root"}
	s.Sim = []SimResult{{SimConfig: DefaultSimConfig(), Latency: Dist{N: 1, P50: 100 * time.Millisecond, P99: 300 * time.Millisecond},
		Delivered: 99, Expected: 99, Amplification: 5.8, Framed: 6.1}}
	s.Node = &NodeResult{NodeConfig: NodeConfig{Peers: 50}, ProgramMem: ProgramMem{IdleRSS: 34 << 20, PeersRSS: 40 << 20, PeersConnected: 50},
		BinarySize: 48 << 20, BinaryDM: Dist{N: 1}, BinaryRoom: Dist{N: 1, P50: time.Millisecond},
		Floor: &FloorResult{ProgramMem: ProgramMem{IdleRSS: 20 << 20, PeersRSS: 24 << 20, PeersConnected: 50}, BinarySize: 32 << 20,
			Room: Dist{N: 1, P50: 200 * time.Microsecond, P99: 400 * time.Microsecond}}}
	rows := s.Rows()
	find := func(prefix string) Row {
		for _, r := range rows {
			if strings.HasPrefix(r.Figure, prefix) {
				return r
			}
		}
		t.Fatalf("no row %q in %v", prefix, rows)
		return Row{}
	}
	if r := find("Room, 50 members, Parley: publish→delivery"); r.Met != "NO" {
		t.Errorf("p99 of 30 ms met the 25 ms target: %+v", r)
	}
	if r := find("Room, 50 members, random graph: FloodSub ÷ GossipSub"); r.Met != "yes" || r.Value != "6.00" {
		t.Errorf("FloodSub ratio row %+v", r)
	}
	if r := find("Room, 100 members, simulated network (50ms RTT, 20 Mbit/s links), Parley"); r.Value != "100 % · 100ms / 300ms · 5.80× (6.10×)" {
		t.Errorf("simulated room row %+v", r)
	}
	if r := find("mDNS"); r.Met != "pending" || !strings.Contains(r.Value, "no root") {
		t.Errorf("mDNS row %+v", r)
	}
	if r := find("Idle RSS, bare go-libp2p host"); r.Target != "" || !strings.HasPrefix(r.Value, "20.0 MB") {
		t.Errorf("floor idle row %+v: a baseline has no target", r)
	}
	if r := find("Room message between two bare GossipSub processes"); r.Value != "200µs / 400µs" {
		t.Errorf("floor room row %+v", r)
	}
	if r := find("Executable size"); r.Value != "48.0 MB · 32.0 MB" {
		t.Errorf("size row %+v", r)
	}
	md := s.Markdown("go run ./cmd/parley-bench", "")
	if !strings.Contains(md, NotesMarker) || !strings.Contains(md, "| Room, 50 members, Parley: delivery | 97.959 % | 100 % | NO |") {
		t.Errorf("markdown:\n%s", md)
	}
	if got := KeptNotes(s.Markdown("x", "## Why\n\nbecause")); got != "## Why\n\nbecause" {
		t.Errorf("KeptNotes = %q", got)
	}
	if !strings.Contains(Table(rows), "met?") {
		t.Error("table has no header")
	}
}

func TestTCPEcho(t *testing.T) {
	d, err := TCPEcho(context.Background(), 5, 20)
	if err != nil {
		t.Fatal(err)
	}
	if d.N != 20 || d.P50 <= 0 {
		t.Errorf("TCPEcho = %+v", d)
	}
}

// Benchmarks: go test -run '^$' -bench . ./internal/bench/

func BenchmarkTCPEcho(b *testing.B) {
	d, err := TCPEcho(context.Background(), 10, b.N)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(float64(d.Mean.Nanoseconds()), "ns/op")
	b.ReportMetric(float64(d.P99.Nanoseconds()), "p99-ns")
}

// BenchmarkDMRoundTrip: one op is SendDM until Delivered, on an open stream.
func BenchmarkDMRoundTrip(b *testing.B) {
	res, err := RunDM(context.Background(), DMConfig{RoundTrips: b.N, Warmup: 10, TextBytes: 100, Timeout: 30 * time.Second, SkipReferences: true})
	if err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(float64(res.RTT.Mean.Nanoseconds()), "ns/op") // without starting the nodes
	b.ReportMetric(float64(res.RTT.P50.Nanoseconds()), "p50-ns")
	b.ReportMetric(float64(res.RTT.P99.Nanoseconds()), "p99-ns")
}

// BenchmarkRoomFanout: one op is a 1 KB message published by a random
// member of a 10-member room until every other member has it.
func BenchmarkRoomFanout(b *testing.B) {
	for _, r := range []Router{GossipSub, FloodSub, Parley} {
		b.Run(string(r), func(b *testing.B) {
			ctx := context.Background()
			room, err := newRoom(ctx, roomConfig{Router: r, N: 10, Degree: 4, Size: 1024, Seed: 1, Measured: b.N, Warmup: 5})
			if err != nil {
				b.Fatal(err)
			}
			defer room.close()
			if err := room.waitReady(ctx, 30*time.Second); err != nil {
				b.Fatal(err)
			}
			room.warmup(ctx)
			rng := rand.New(rand.NewPCG(1, 2))
			w0 := room.hosts.Written()
			b.ResetTimer()
			for i := range b.N {
				if err := room.publish(ctx, rng.IntN(10), i); err != nil {
					b.Fatal(err)
				}
				want := int64(i+1) * 9
				if !waitUntilFast(10*time.Second, func() bool { return room.recvM.Load() >= want }) {
					b.Fatalf("message %d not delivered everywhere", i)
				}
			}
			b.StopTimer()
			b.ReportMetric(float64(room.hosts.Written()-w0)/float64(1024*9*b.N), "amplification")
		})
	}
}

// waitUntilFast polls cond without sleeping (for latency), up to d.
func waitUntilFast(d time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(20 * time.Microsecond)
	}
	return true
}

// BenchmarkPageReady: one op is a load of the web app on a room with 200
// stored messages, until the newest is painted (needs chromium).
func BenchmarkPageReady(b *testing.B) {
	if chromium.Find() == "" {
		b.Skip("chromium not found (apt-get install chromium, or set CHROMIUM)")
	}
	res, err := RunPage(context.Background(), PageConfig{Stored: 200, Loads: b.N, Timeout: 30 * time.Second})
	if err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(float64(res.Ready.Mean.Nanoseconds()), "ns/op")
	b.ReportMetric(float64(res.Ready.P95.Nanoseconds()), "p95-ns")
}

// Command parley-bench runs Parley's benchmark suite (internal/bench),
// prints a table of the figures against their targets and writes the same
// figures, with the environment and how they were measured, to
// docs/benchmarks.md.
//
//	go run ./cmd/parley-bench                   # everything, under 5 minutes on 2 cores
//	go run ./cmd/parley-bench -sections dm,node # some sections only
//	go run ./cmd/parley-bench -quick -out ''    # a small smoke run, no file written
//	go run ./cmd/parley-bench -sections sim -sim-members 1000 -timeout 60m -out ''
//	                                            # a larger room on the simulated network
//
// All traffic stays on 127.0.0.1, except the "lab" section, which runs
// inside the network namespaces of internal/netlab (needs root; reported
// as pending otherwise).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/parley-chat/parley/internal/bench"
	"github.com/parley-chat/parley/internal/proctest"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "parley-bench:", err)
		os.Exit(1)
	}
}

func run() error {
	cfg := bench.DefaultSuiteConfig()
	fs := flag.NewFlagSet("parley-bench", flag.ContinueOnError)
	sections := fs.String("sections", strings.Join(bench.DefaultSections, ","), "sections to run: "+strings.Join(bench.Sections, ", "))
	sizes := fs.String("sizes", "10,50,100,200", "room sizes for the fan-out")
	fs.IntVar(&cfg.Degree, "degree", cfg.Degree, "links each room member dials (random graph)")
	fs.IntVar(&cfg.Dense, "dense", cfg.Dense, "size of the full-mesh fan-out comparison (0: skip)")
	fs.IntVar(&cfg.Messages, "messages", cfg.Messages, "measured messages per fan-out run")
	fs.DurationVar(&cfg.Interval, "interval", cfg.Interval, "time between two fan-out publishes")
	fs.IntVar(&cfg.Size, "size", cfg.Size, "fan-out payload bytes")
	fs.IntVar(&cfg.Sim.N, "sim-members", cfg.Sim.N, "members of the simulated room (section sim)")
	fs.IntVar(&cfg.Sim.Messages, "sim-messages", cfg.Sim.Messages, "measured messages in the simulated room")
	fs.DurationVar(&cfg.Sim.Interval, "sim-interval", cfg.Sim.Interval, "time between two publishes in the simulated room")
	fs.Float64Var(&cfg.Sim.ReadyShare, "sim-ready", 1, "share of the simulated room's members that must see all their neighbours before measuring (the rest count in delivery)")
	fs.BoolVar(&cfg.SimBaseline, "sim-baseline", cfg.SimBaseline, "also run GossipSub with chat's options on the simulated network")
	fs.IntVar(&cfg.BurstMessages, "burst", cfg.BurstMessages, "messages in the burst")
	fs.IntVar(&cfg.BurstN, "burst-members", cfg.BurstN, "members of the burst room")
	fs.IntVar(&cfg.BurstSize, "burst-size", cfg.BurstSize, "burst message bytes")
	fs.DurationVar(&cfg.BurstTimeout, "burst-timeout", cfg.BurstTimeout, "bound on one burst")
	fs.IntVar(&cfg.DMRoundTrips, "dm-rtts", cfg.DMRoundTrips, "measured DM round trips")
	fs.IntVar(&cfg.DMThroughput, "dm-throughput", cfg.DMThroughput, "DMs sent back to back for the throughput")
	fs.IntVar(&cfg.FirstDMRuns, "first-dms", cfg.FirstDMRuns, "first DMs to fresh, unconnected peers")
	fs.IntVar(&cfg.NodeRuns, "node-runs", cfg.NodeRuns, "starts of the binary timed (the first creates the identity)")
	fs.DurationVar(&cfg.Idle, "idle", cfg.Idle, "wait before each RSS reading")
	fs.IntVar(&cfg.Peers, "peers", cfg.Peers, "peers connected to the binary for the second RSS reading")
	fs.IntVar(&cfg.BinaryDMs, "binary-dms", cfg.BinaryDMs, "DM round trips between two binaries")
	fs.IntVar(&cfg.Page.Loads, "page-loads", cfg.Page.Loads, "loads of the web app timed in headless chromium")
	fs.IntVar(&cfg.LabRuns, "lab-runs", cfg.LabRuns, "runs of each test-bed measurement")
	fs.IntVar(&cfg.NATRuns, "nat-runs", cfg.NATRuns, "runs of each network of the nat section")
	fs.BoolVar(&cfg.Profile, "profile", cfg.Profile, "profile (CPU) the measurements whose targets are missed")
	fs.StringVar(&cfg.ProfileDir, "profile-dir", "", "where to keep the profiles (default: a temporary directory)")
	tunes := fs.String("tune", "D=6", "GossipSub variants also measured with 50 members, ';'-separated (keys D, Dlo, Dhi, Dout, Dlazy, flood, idontwant; '' for none)")
	seed := fs.Uint64("seed", cfg.Seed, "seed of the random topologies")
	quick := fs.Bool("quick", false, "a small smoke run (small rooms, short burst, few round trips)")
	out := fs.String("out", "docs/benchmarks.md", "results file, relative to the module root ('' to write none)")
	timeout := fs.Duration("timeout", 20*time.Minute, "bound on the whole run (what is not measured by then is reported missing; the 200-member rooms take 2–3 min of it)")
	if err := fs.Parse(os.Args[1:]); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		os.Exit(2)
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	cfg.Seed = *seed
	cfg.Sections = map[string]bool{}
	for _, s := range strings.Split(*sections, ",") {
		s = strings.TrimSpace(s)
		if s == "" {
			continue
		}
		if !slices.Contains(bench.Sections, s) {
			return fmt.Errorf("-sections: unknown section %q (have %s)", s, strings.Join(bench.Sections, ", "))
		}
		cfg.Sections[s] = true
	}
	cfg.Sizes = nil
	for _, s := range strings.Split(*sizes, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil || n < 2 || n > 500 {
			return fmt.Errorf("-sizes: %q is not a room size between 2 and 500", s)
		}
		cfg.Sizes = append(cfg.Sizes, n)
	}
	if cfg.Sim.N < 2 || cfg.Sim.N > 5000 || cfg.Sim.Messages < 1 || cfg.Sim.Interval <= 0 {
		return errors.New("bad bounds: need 2 ≤ -sim-members ≤ 5000, -sim-messages ≥ 1, -sim-interval > 0")
	}
	cfg.Sim.Degree, cfg.Sim.Seed = cfg.Degree, *seed
	if cfg.Dense > 200 || cfg.Degree < 1 || cfg.Messages < 1 || cfg.Interval <= 0 || cfg.BurstN < 2 {
		return errors.New("bad bounds: need -dense ≤ 200, -degree ≥ 1, -messages ≥ 1, -interval > 0, -burst-members ≥ 2")
	}
	cfg.Tunes = nil
	for _, t := range strings.Split(*tunes, ";") {
		if strings.TrimSpace(t) == "" {
			continue
		}
		tune, err := bench.ParseTune(t)
		if err != nil {
			return fmt.Errorf("-tune: %w", err)
		}
		cfg.Tunes = append(cfg.Tunes, tune)
	}
	if *quick {
		cfg.Tunes = nil
		cfg.Sizes, cfg.Dense, cfg.Messages = []int{10}, 0, 30
		cfg.Sim.N, cfg.Sim.Messages, cfg.SimBaseline = 30, 10, false
		cfg.BurstMessages, cfg.DMRoundTrips, cfg.DMThroughput, cfg.FirstDMRuns = 1000, 300, 500, 2
		cfg.NodeRuns, cfg.Idle, cfg.Peers, cfg.BinaryDMs, cfg.LabRuns = 2, time.Second, 10, 20, 1
		cfg.NATRuns = 2
		cfg.Profile = false
		cfg.Web.LatencyMessages, cfg.Web.Duration = 50, time.Second
		cfg.Page.Loads = 5
		cfg.Dispatch = bench.DispatchConfig{Pool: 2, Clicks: 3, Visitors: 5, Timeout: time.Minute}
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()

	suite := bench.RunSuite(ctx, cfg, os.Stderr)
	fmt.Println()
	fmt.Print(bench.Table(suite.Rows()))
	for _, e := range suite.Errors {
		fmt.Println("error:", e)
	}
	if len(suite.Profiles) > 0 {
		fmt.Println("\nCPU profiles of missed targets:")
		for _, p := range suite.Profiles {
			fmt.Printf("  %s: %s\n", p.Title, p.File)
			for _, b := range p.Buckets {
				fmt.Printf("    %5.1f %%  %s\n", b.Pct, b.Name)
			}
		}
	}
	if ctx.Err() != nil {
		fmt.Fprintln(os.Stderr, "parley-bench: stopped early:", context.Cause(ctx))
	}
	if *out == "" {
		return nil
	}
	root, err := proctest.ModuleRoot()
	if err != nil {
		return err
	}
	path := *out
	if !filepath.IsAbs(path) {
		path = filepath.Join(root, path)
	}
	old, _ := os.ReadFile(path)
	command := "go run ./cmd/parley-bench"
	if args := os.Args[1:]; len(args) > 0 {
		command += " " + strings.Join(args, " ")
	}
	if err := os.WriteFile(path, []byte(suite.Markdown(command, bench.KeptNotes(string(old)))), 0o644); err != nil {
		return err
	}
	fmt.Printf("\nwrote %s\n", path)
	return nil
}

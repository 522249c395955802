package bench

import (
	"context"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/parley-chat/parley/internal/netlab"
	"github.com/parley-chat/parley/internal/proctest"
)

// WildDCUtRSuccess is the hole punching success rate measured in the
// wild, the anchor the NAT rows are read against: 70 % ± 7 % of DCUtR
// attempts succeeded across 4.4 million attempts from 85,000+ networks
// (arXiv 2510.27500, "Decentralized NAT traversal in the wild", 2025).
const WildDCUtRSuccess = "≈ 70 % ± 7 % (arXiv 2510.27500)"

// NATScenario is one network of the NAT section: how the test bed is
// built and what the two nodes listen on and bootstrap from.
type NATScenario struct {
	Name      string
	Lab       netlab.Config
	BlockUDPA bool     // natA drops all UDP
	Listen    []string // the nodes' listen addresses
	Relay     []string // parts of the relay address the nodes are given ("/ip6/", "/tcp/")
}

// NATScenarios are the networks the NAT section measures.
var NATScenarios = []NATScenario{
	{Name: "IPv4, TCP, port-preserving NATs", Listen: []string{"/ip4/0.0.0.0/tcp/4001"}, Relay: []string{"/ip4/", "/tcp/"}},
	{Name: "IPv4, QUIC, port-preserving NATs", Listen: []string{"/ip4/0.0.0.0/udp/4001/quic-v1"}, Relay: []string{"/ip4/", "/quic-v1"}},
	{Name: "IPv6, TCP, stateful firewalls", Lab: netlab.Config{IPv6: true}, Listen: []string{"/ip6/::/tcp/4001"}, Relay: []string{"/ip6/", "/tcp/"}},
	{Name: "IPv6, QUIC, stateful firewalls", Lab: netlab.Config{IPv6: true}, Listen: []string{"/ip6/::/udp/4001/quic-v1"}, Relay: []string{"/ip6/", "/quic-v1"}},
	{Name: "IPv4, LAN A drops all UDP (nodes listen on TCP and QUIC)", BlockUDPA: true,
		Listen: []string{"/ip4/0.0.0.0/tcp/4001", "/ip4/0.0.0.0/udp/4001/quic-v1"}, Relay: []string{"/ip4/", "/tcp/"}},
	{Name: "IPv4, double NAT: LAN A behind a carrier NAT too", Lab: netlab.Config{CGNAT: netlab.CGNATForA},
		Listen: []string{"/ip4/0.0.0.0/tcp/4001", "/ip4/0.0.0.0/udp/4001/quic-v1"}, Relay: []string{"/ip4/", "/tcp/"}},
	{Name: "IPv4, double NAT: both LANs behind one carrier NAT", Lab: netlab.Config{CGNAT: netlab.CGNATShared},
		Listen: []string{"/ip4/0.0.0.0/tcp/4001", "/ip4/0.0.0.0/udp/4001/quic-v1"}, Relay: []string{"/ip4/", "/tcp/"}},
}

// natLogs, from PARLEY_BENCH_NAT_LOGS, is a directory where the debug
// logs of both nodes of every run that did not go direct are kept.
var natLogs = os.Getenv("PARLEY_BENCH_NAT_LOGS")

// NATConfig bounds the NAT section.
type NATConfig struct {
	Binary  string
	Runs    int
	Window  time.Duration // how long a run waits for a direct connection
	Timeout time.Duration // bounds every other wait
}

// NATResult is one scenario's figures over Runs runs. FirstMessage is b1's
// process start → the first room message from a1 (a1 sends one every
// 100 ms from its ready event). Direct counts runs in which a1 reached b1
// directly within the window; ToDirect is the time from a1's first
// relayed connection to b1 to its direct one (from a1's start when it
// went direct with no relayed connection first: NoRelayFirst counts
// those). Transports counts the direct connections by family/transport.
// PunchFailures counts failed rounds reported by hole-punch events.
type NATResult struct {
	Scenario      string
	Runs          int
	Unavailable   string
	FirstMessage  Dist
	ToDirect      Dist
	Direct        int
	HolePunched   int
	NoRelayFirst  int
	Transports    map[string]int
	PunchFailures int
	LastError     string   // of a failed punch, as reported
	Failed        []string // per run that did not go direct: what a1 and b1 reported about each other
}

// Rate is the share of runs that went direct.
func (r NATResult) Rate() float64 {
	if r.Runs == 0 {
		return 0
	}
	return float64(r.Direct) / float64(r.Runs)
}

// RunNAT measures every scenario in a test bed of its own.
func RunNAT(ctx context.Context, cfg NATConfig, logf func(string, ...any)) ([]NATResult, error) {
	if err := netlab.Available(); err != nil {
		return []NATResult{{Unavailable: err.Error()}}, nil
	}
	var out []NATResult
	for _, sc := range NATScenarios {
		if ctx.Err() != nil {
			break
		}
		r, err := runNATScenario(ctx, cfg, sc)
		if err != nil {
			return out, fmt.Errorf("%s: %w", sc.Name, err)
		}
		logf("  %s: direct in %d of %d runs, first message %s, relayed → direct %s", sc.Name, r.Direct, r.Runs, FmtDur(r.FirstMessage.P50), FmtDur(r.ToDirect.P50))
		for _, f := range r.Failed {
			logf("    not direct: %s", f)
		}
		out = append(out, r)
	}
	return out, nil
}

func runNATScenario(ctx context.Context, cfg NATConfig, sc NATScenario) (NATResult, error) {
	res := NATResult{Scenario: sc.Name, Transports: map[string]int{}}
	tmp, err := os.MkdirTemp("", "parley-bench-nat")
	if err != nil {
		return res, err
	}
	defer os.RemoveAll(tmp)
	var first, toDirect []time.Duration
	for run := range cfg.Runs {
		if err := natRun(ctx, cfg, filepath.Join(tmp, strconv.Itoa(run)), sc, &res, &first, &toDirect); err != nil {
			return res, fmt.Errorf("run %d: %w", run, err)
		}
		res.Runs++
	}
	res.FirstMessage, res.ToDirect = NewDist(first), NewDist(toDirect)
	return res, nil
}

// startNATRelay runs `parley relay` on the lab's relay host, on TCP and
// QUIC (IPv6 too where the lab has it), and returns its address that
// contains all of parts.
func startNATRelay(ctx context.Context, cfg NATConfig, lab *netlab.Lab, data string, parts []string) (*proctest.Proc, string, error) {
	args := []string{"relay", "--json", "--data", data}
	ips := []string{"/ip4/" + lab.Relay.IP.String()}
	if lab.Relay.IP6 != nil {
		ips = append(ips, "/ip6/"+lab.Relay.IP6.String())
	}
	for _, ip := range ips {
		args = append(args, "--listen", ip+"/tcp/4001", "--listen", ip+"/udp/4001/quic-v1")
	}
	relay, err := startProc("relay", labCmd(ctx, lab.Relay, cfg.Binary, args...), cfg.Timeout)
	if err != nil {
		return nil, "", err
	}
	ready, _, err := relay.Ready(ctx)
	if err != nil {
		return relay, "", err
	}
	for _, a := range ready["addrs"].([]any) {
		s, ok := a.(string), true
		for _, part := range parts {
			ok = ok && strings.Contains(s, part)
		}
		if ok {
			return relay, s, nil
		}
	}
	return relay, "", fmt.Errorf("relay has no address with %v: %v", parts, ready["addrs"])
}

// natRun starts a1 and b1, measures one run into res, and stops them.
//
// Every run has a test bed and a relay of its own, as two people meeting
// for the first time would: nodes with fresh identities on the addresses
// of an earlier run's would find that run's stale provider records in the
// relay's DHT (pointing at their own address, or at the other node's
// address under an old peer ID), and the relay's per-IP limits would
// count every run's connections from the same router address.
func natRun(ctx context.Context, cfg NATConfig, dir string, sc NATScenario, res *NATResult, first, toDirect *[]time.Duration) error {
	lctx, cancel := context.WithTimeout(ctx, time.Minute)
	lab, err := netlab.New(lctx, sc.Lab)
	if err == nil && sc.BlockUDPA {
		err = lab.RouterA.SetUDPBlocked(lctx, true)
	}
	cancel()
	if lab != nil {
		defer lab.Close()
	}
	if err != nil {
		return err
	}
	relay, relayAddr, err := startNATRelay(ctx, cfg, lab, dir+"-relay", sc.Relay)
	if relay != nil {
		defer func() {
			relay.Signal(os.Interrupt) // a relay does not stop at the end of its input
			relay.Stop(10 * time.Second)
		}()
	}
	if err != nil {
		return err
	}
	args := func(d string) []string {
		a := []string{"join", "lobby", "--json", "--data", d, "--bootstrap", relayAddr}
		if natLogs != "" {
			a = append(a, "--log-level", "debug")
		}
		for _, l := range sc.Listen {
			a = append(a, "--listen", l)
		}
		return a
	}
	a1, err := startProc("a1", labCmd(ctx, lab.A1, cfg.Binary, args(dir+"-a1")...), cfg.Timeout)
	if err != nil {
		return err
	}
	defer a1.Stop(10 * time.Second)
	b1, err := startProc("b1", labCmd(ctx, lab.B1, cfg.Binary, args(dir+"-b1")...), cfg.Timeout)
	if err != nil {
		return err
	}
	defer b1.Stop(10 * time.Second)
	aReady, _, err := a1.Ready(ctx)
	if err != nil {
		return err
	}
	bReady, _, err := b1.Ready(ctx)
	if err != nil {
		return err
	}
	aID, bID := fmt.Sprint(aReady["peer"]), fmt.Sprint(bReady["peer"])
	at, err := firstMessage(ctx, a1, b1, aID, cfg.Timeout)
	if err != nil {
		return err
	}
	*first = append(*first, at)

	wctx, wcancel := context.WithTimeout(ctx, cfg.Window)
	defer wcancel()
	ev, directAt, err := a1.Wait(wctx, "a direct connection to b1", func(ev proctest.Event) bool {
		return ev["event"] == "connection" && ev["peer"] == bID && (ev["path"] == "hole-punched" || ev["path"] == "direct")
	})
	for _, p := range []*proctest.Proc{a1, b1} {
		for _, e := range p.Snapshot() {
			if e["event"] == "hole-punch" && e["ok"] == false {
				res.PunchFailures++
				res.LastError = fmt.Sprint(e["error"])
			}
		}
	}
	if err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		// Not direct within the window: a failed run. Keep what each side
		// said about the other.
		var seen []string
		for _, side := range []struct {
			p     *proctest.Proc
			other string
		}{{a1, bID}, {b1, aID}} {
			for _, e := range side.p.Snapshot() {
				if (e["event"] == "connection" || e["event"] == "hole-punch") && e["peer"] == side.other {
					c := maps.Clone(e) // the log's own map: never modify it
					delete(c, "peer")
					seen = append(seen, side.p.Name+": "+fmt.Sprint(c))
				}
			}
		}
		res.Failed = append(res.Failed, strings.Join(seen, "; "))
		if natLogs != "" {
			for _, p := range []*proctest.Proc{a1, b1} {
				name := filepath.Join(natLogs, fmt.Sprintf("%s-%s.log", filepath.Base(dir), p.Name))
				os.WriteFile(name, []byte(p.Stderr()), 0o644)
			}
		}
		return nil
	}
	res.Direct++
	if ev["path"] == "hole-punched" {
		res.HolePunched++
	}
	res.Transports[fmt.Sprintf("%v/%v", ev["family"], ev["transport"])]++
	isRelayed := proctest.Match("connection", "peer", bID, "path", "relayed")
	from := time.Duration(0)
	for i, e := range a1.Snapshot() {
		if isRelayed(e) {
			_, _, from, _ = a1.WaitFrom(ctx, i, "relayed", isRelayed)
			break
		}
	}
	if from == 0 || from > directAt {
		res.NoRelayFirst++
		from = 0
	}
	*toDirect = append(*toDirect, directAt-from)
	return nil
}

// NATMarkdown renders the NAT section's table.
func NATMarkdown(rs []NATResult) string {
	var b strings.Builder
	b.WriteString("### NAT traversal (internal/netlab; in the wild DCUtR succeeds " + WildDCUtRSuccess + ")\n\n")
	b.WriteString("| network | runs | went direct | of which hole-punched | over | relayed → direct: median / max | start → first room message: median / max | failed punch rounds reported |\n|---|---|---|---|---|---|---|---|\n")
	for _, r := range rs {
		if r.Unavailable != "" {
			continue
		}
		over := make([]string, 0, len(r.Transports))
		for k, n := range r.Transports {
			over = append(over, fmt.Sprintf("%s ×%d", k, n))
		}
		slices.Sort(over)
		direct := fmt.Sprintf("%d (%s)", r.Direct, FmtPct(r.Rate()))
		if r.NoRelayFirst > 0 {
			direct += fmt.Sprintf(", %d without a relayed connection first", r.NoRelayFirst)
		}
		fails := strconv.Itoa(r.PunchFailures)
		if r.LastError != "" {
			fails += " (e.g. " + oneLine(r.LastError, 90) + ")"
		}
		fmt.Fprintf(&b, "| %s | %d | %s | %d | %s | %s / %s | %s / %s | %s |\n", r.Scenario, r.Runs, direct, r.HolePunched,
			strings.Join(over, ", "), FmtDur(r.ToDirect.P50), FmtDur(r.ToDirect.Max), FmtDur(r.FirstMessage.P50), FmtDur(r.FirstMessage.Max), fails)
	}
	return b.String()
}

// oneLine shortens an error to its first line, at most n runes.
func oneLine(s string, n int) string {
	s, _, _ = strings.Cut(s, "\n")
	if r := []rune(s); len(r) > n {
		return string(r[:n]) + "…"
	}
	return s
}

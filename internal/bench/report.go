package bench

import (
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/parley-chat/parley/chat"
	"github.com/parley-chat/parley/chat/protocol/history"
)

// Row is one line of the results table.
type Row struct {
	Figure, Value, Target string
	Met                   string // "yes", "NO", "pending" or "" (no target)
}

func met(ok bool) string {
	if ok {
		return "yes"
	}
	return "NO"
}

func ms3(d Dist) string {
	return FmtDur(d.P50) + " / " + FmtDur(d.P95) + " / " + FmtDur(d.P99)
}

func p5099(d Dist) string { return FmtDur(d.P50) + " / " + FmtDur(d.P99) }

// Rows returns the summary table: the figures with targets and the main
// informational ones.
func (s *Suite) Rows() []Row {
	var rows []Row
	add := func(fig, val, target, m string) { rows = append(rows, Row{fig, val, target, m}) }

	// Room fan-out.
	for _, n := range s.Cfg.Sizes {
		p := s.fanout(Parley, n, false)
		if p == nil {
			if s.Cfg.Sections["fanout"] {
				add(fmt.Sprintf("Room, %d members, Parley: latency", n), "not measured (see errors)", "", "")
			}
			continue
		}
		if n == targetRoomN {
			add(fmt.Sprintf("Room, %d members, Parley: publish→delivery p50 / p95 / p99", n), ms3(p.Latency),
				"p99 ≤ "+FmtDur(TargetRoomP99), met(p.Latency.P99 <= TargetRoomP99))
			add(fmt.Sprintf("Room, %d members, Parley: delivery", n), FmtPct(p.Ratio()), "100 %", met(p.Ratio() >= 1))
			add(fmt.Sprintf("Room, %d members, Parley: amplification", n), fmt.Sprintf("%.2f×", p.Amplification),
				fmt.Sprintf("≤ %.1f×", TargetAmplify), met(p.Amplification <= TargetAmplify))
		} else {
			add(fmt.Sprintf("Room, %d members, Parley: p50 / p95 / p99 · delivery", n), ms3(p.Latency)+" · "+FmtPct(p.Ratio()), "", "")
		}
		switch g := s.fanout(GossipSub, n, false); {
		case n == scaleRoomN && g != nil:
			amp, p99 := p.Amplification/g.Amplification, float64(p.Latency.P99)/float64(g.Latency.P99)
			want := fmt.Sprintf("≤ %.1f", TargetVsGossip)
			add(fmt.Sprintf("Room, %d members: Parley ÷ GossipSub amplification (%.2f× ÷ %.2f×)", n, p.Amplification, g.Amplification),
				fmt.Sprintf("%.2f", amp), want, met(amp <= TargetVsGossip))
			add(fmt.Sprintf("Room, %d members: Parley ÷ GossipSub p99 (%s ÷ %s)", n, FmtDur(p.Latency.P99), FmtDur(g.Latency.P99)),
				fmt.Sprintf("%.2f", p99), want, met(p99 <= TargetVsGossip))
			add(fmt.Sprintf("Room, %d members, Parley: delivery · dropped from queues (copies pubsub had no stream for yet: Parley · GossipSub)", n),
				fmt.Sprintf("%s · %d (%d · %d)", FmtPct(p.Ratio()), p.Dropped, p.Unsent, g.Unsent),
				"100 % · 0", met(p.Ratio() >= 1 && p.Dropped == 0))
			add(fmt.Sprintf("Room, %d members, Parley: presences sent while forming · while measuring (copies)", n),
				fmt.Sprintf("%d · %d", p.SetupWire.Presence, p.Wire.Presence), "", "")
		case n == bigRoomN:
			add(fmt.Sprintf("Room, %d members, Parley: delivery", n), FmtPct(p.Ratio()), "100 %", met(p.Ratio() >= 1))
		}
	}
	for _, dense := range []bool{false, true} {
		sizes := s.Cfg.Sizes
		topo := "random graph"
		if dense {
			sizes, topo = []int{s.Cfg.Dense}, "full mesh"
		}
		for _, n := range sizes {
			g, f := s.fanout(GossipSub, n, dense), s.fanout(FloodSub, n, dense)
			if g == nil || f == nil {
				continue
			}
			if n == targetRoomN {
				add(fmt.Sprintf("Room, %d members, %s: GossipSub amplification", n, topo), fmt.Sprintf("%.2f×", g.Amplification),
					fmt.Sprintf("≤ %.1f×", TargetAmplify), met(g.Amplification <= TargetAmplify))
				ratio := f.Amplification / g.Amplification
				add(fmt.Sprintf("Room, %d members, %s: FloodSub ÷ GossipSub amplification (%.2f× ÷ %.2f×)", n, topo, f.Amplification, g.Amplification),
					fmt.Sprintf("%.2f", ratio), fmt.Sprintf("≥ %.0f", TargetFloodRatio), met(ratio >= TargetFloodRatio))
			} else {
				add(fmt.Sprintf("Room, %d members, %s: FloodSub ÷ GossipSub amplification (%.2f× ÷ %.2f×)", n, topo, f.Amplification, g.Amplification),
					fmt.Sprintf("%.2f", f.Amplification/g.Amplification), "", "")
			}
		}
	}

	for _, t := range s.Tuned {
		topo := "random graph"
		if t.MeanDegree >= float64(t.N-1) {
			topo = "full mesh"
		}
		add(fmt.Sprintf("Room, %d members, %s, GossipSub with %s: amplification · p99 · delivery", t.N, topo, t.Tune),
			fmt.Sprintf("%.2f× · %s · %s", t.Amplification, FmtDur(t.Latency.P99), FmtPct(t.Ratio())), "", "")
	}

	// Simulated network.
	for _, r := range s.Sim {
		fig := fmt.Sprintf("Room, %d members, simulated network (%v RTT, %.0f Mbit/s links), %s", r.N, 2*r.OneWay, r.Bandwidth*8/1e6, routerName(r.Router))
		add(fig+": delivery · p50 / p99 · amplification (with Noise and yamux framing)",
			fmt.Sprintf("%s · %s · %.2f× (%.2f×)", FmtPct(r.Ratio()), p5099(r.Latency), r.Amplification, r.Framed), "", "")
		add(fig+": set-up · quiet after · whole run · peak RSS", fmt.Sprintf("%s · %s · %s · %s", FmtDur(r.Setup), FmtDur(r.Settle), FmtDur(r.Wall), FmtMB(r.PeakRSS)), "", "")
	}
	if len(s.Sim) == 0 && s.Cfg.Sections["sim"] {
		add(fmt.Sprintf("Room, %d members, simulated network", s.Cfg.Sim.N), "not measured (see errors)", "", "NO")
	}

	// Burst.
	if b := s.burst(Parley); b != nil {
		fig := fmt.Sprintf("Burst, %d members, %d messages, Parley", b.N, b.Messages)
		add(fig+": delivered", fmt.Sprintf("%s (%d of %d)", FmtPct(b.Ratio()), b.Delivered, b.Expected), "100 %", met(b.Ratio() >= 1))
		add(fig+": time until the last arrives", FmtDur(b.LastArrival), "≤ "+FmtDur(TargetBurstTime),
			met(b.Ratio() >= 1 && b.LastArrival <= TargetBurstTime))
		lost := int64(b.Expected - b.Delivered)
		cpu := FmtDur(b.CPUPerMessage())
		if g := s.burst(GossipSub); g != nil && g.CPUPerMessage() > 0 {
			cpu += fmt.Sprintf(" (%.2f× GossipSub's %s, which stores nothing)", float64(b.CPUPerMessage())/float64(g.CPUPerMessage()), FmtDur(g.CPUPerMessage()))
		}
		add(fig+": CPU per message, all members", cpu, "", "")
		add(fig+": loss handling", fmt.Sprintf("the %d Post calls took %s of the %s until the last arrival; drops surfaced: %d (%d Error events)",
			b.Messages, FmtDur(b.SendTime), FmtDur(b.LastArrival), b.Dropped, b.ErrorEvents), "no silent loss", met(lost <= b.Dropped))
	} else if s.Cfg.Sections["burst"] {
		add("Burst, Parley", "not measured (see errors)", "100 % in ≤ "+FmtDur(TargetBurstTime), "NO")
	}
	if b := s.burst(PlainGossipSub); b != nil {
		add("Burst, plain go-libp2p GossipSub (defaults): delivered",
			fmt.Sprintf("%s (%d of %d); the rest lost silently (%d drops seen only by a tracer)", FmtPct(b.Ratio()), b.Delivered, b.Expected, b.Dropped), "", "")
	}
	if b := s.burst(GossipSub); b != nil {
		v := fmt.Sprintf("%s · %s", FmtPct(b.Ratio()), FmtDur(b.LastArrival))
		if b.Dropped > 0 {
			v += fmt.Sprintf(" (%d copies dropped from full queues", b.Dropped)
			if b.Ratio() >= 1 {
				v += "; every message still arrived through other paths"
			}
			v += ")"
		}
		add("Burst, GossipSub with chat's options, no store: delivered · last arrival", v, "", "")
	}

	// Direct messages.
	if d := s.DM; d != nil {
		add("DM round trip (SendDM → Delivered), open stream: p50 / p99", p5099(d.RTT), "", "")
		add("Raw TCP echo round trip, loopback: p50 / p99", p5099(d.TCP), "", "")
		r50, r99 := d.Ratio()
		add("DM round trip in parts, p50: SendDM call · until the receiver's event · ack back to Delivered",
			FmtDur(d.SendCall.P50)+" · "+FmtDur(d.OneWay.P50)+" · "+FmtDur(d.AckBack.P50), "", "")
		add("DM ÷ raw TCP round trip: p50 / p99", fmt.Sprintf("%.1f× / %.1f×", r50, r99), fmt.Sprintf("p50 ≤ %.0f×", TargetDMRatio),
			met(r50 <= TargetDMRatio))
		add("libp2p stream echo round trip (TCP + Noise + yamux): p50 / p99", p5099(d.Stream), "", "")
		add("DM throughput, one stream, several DMs in flight", fmt.Sprintf("%.0f DMs/s", d.Throughput),
			fmt.Sprintf("≥ %d/s", TargetDMThroughput), met(d.Throughput >= TargetDMThroughput))
		if d.DiskRTT.N > 0 {
			add("DM with both stores on disk (WAL, synchronous=NORMAL): round trip p50 / p99 · throughput",
				p5099(d.DiskRTT)+fmt.Sprintf(" · %.0f DMs/s", d.DiskThroughput), "", "")
		}
		add("First DM to a peer not yet connected: median / max", FmtDur(d.FirstDM.P50)+" / "+FmtDur(d.FirstDM.Max), "", "")
	} else if s.Cfg.Sections["dm"] {
		add("DM round trip", "not measured (see errors)", fmt.Sprintf("p50 ≤ %.0f× TCP", TargetDMRatio), "NO")
	}

	// The binary.
	if n := s.Node; n != nil {
		add(fmt.Sprintf("parley join: start to ready (median of %d)", n.Ready.N),
			fmt.Sprintf("%s (first start, creating identity and store: %s)", FmtDur(n.Ready.P50), FmtDur(n.FirstReady)),
			"≤ "+FmtDur(TargetReady), met(n.Ready.P50 <= TargetReady && n.Ready.N > 0))
		add("Idle RSS of one node (anonymous · file-backed, of which the binary's own)", fmt.Sprintf("%s (%s · %s, %s)", FmtMB(n.IdleRSS), FmtMB(n.IdleMem.Anon), FmtMB(n.IdleMem.File), FmtMB(n.IdleMem.Exe)),
			"≤ "+FmtMB(TargetIdleRSS), met(n.IdleRSS <= TargetIdleRSS))
		if n.Peers > 0 {
			add(fmt.Sprintf("RSS with %d connected peers (anonymous · file-backed, of which the binary's own)", n.PeersConnected), fmt.Sprintf("%s (%s · %s, %s)", FmtMB(n.PeersRSS), FmtMB(n.PeersMem.Anon), FmtMB(n.PeersMem.File), FmtMB(n.PeersMem.Exe)),
				"≤ "+FmtMB(TargetPeersRSS), met(n.PeersRSS <= TargetPeersRSS))
		}
		if n.BinaryDM.N > 0 {
			add("DM round trip between two parley binaries (JSON, on-disk store): p50 / p99", p5099(n.BinaryDM), "", "")
			add("Room message between the same two binaries, send → message event: p50 / p99", p5099(n.BinaryRoom), "", "")
		}
		// The floor: no target, a baseline for the rows above.
		if f := n.Floor; f != nil {
			add("Idle RSS, bare go-libp2p host with GossipSub and kad-dht (no Parley) (anonymous · file-backed, of which the binary's own)",
				fmt.Sprintf("%s (%s · %s, %s)", FmtMB(f.IdleRSS), FmtMB(f.IdleMem.Anon), FmtMB(f.IdleMem.File), FmtMB(f.IdleMem.Exe)), "", "")
			if n.Peers > 0 {
				add(fmt.Sprintf("RSS with %d connected peers, same bare host (anonymous · file-backed, of which the binary's own)", f.PeersConnected),
					fmt.Sprintf("%s (%s · %s, %s)", FmtMB(f.PeersRSS), FmtMB(f.PeersMem.Anon), FmtMB(f.PeersMem.File), FmtMB(f.PeersMem.Exe)), "", "")
			}
			if f.Room.N > 0 {
				add("Room message between two bare GossipSub processes (StrictSign, no store), send → message event: p50 / p99", p5099(f.Room), "", "")
			}
			add("Executable size, same build: parley · bare host", FmtMB(n.BinarySize)+" · "+FmtMB(f.BinarySize), "", "")
		}
	} else if s.Cfg.Sections["node"] {
		add("parley join: start to ready, RSS", "not measured (see errors)", "≤ 200 ms, ≤ 40 MB", "NO")
	}

	// Web API.
	if w := s.Web; w != nil {
		add("Web: event reaches an open page (SSE on loopback) after the node has it: p50 / p99", p5099(w.EventLatency),
			"p99 ≤ "+FmtDur(TargetEventToPage), met(w.EventLatency.P99 <= TargetEventToPage))
		growth := float64(int64(w.HeapAfter)-int64(w.HeapBefore)) / (1 << 20)
		add(fmt.Sprintf("Web: %d messages/s for 3 × %v to %d event streams: delivered to each · heap in use after round 2 → 3", w.Rate, w.Duration, w.Tabs),
			fmt.Sprintf("%d of %d · %s → %s (%+.1f MB)", w.Delivered, w.Sent, FmtMB(int64(w.HeapBefore)), FmtMB(int64(w.HeapAfter)), growth),
			"no loss, no growth", met(w.Delivered == w.Sent && growth < 3)+" (a heap profile of this run: ~2 MB of the growth is GossipSub's seen-message cache, which holds each message ID for 2 minutes; the web layer's own state is bounded)")
	} else if s.Cfg.Sections["web"] {
		add("Web: event stream latency and throughput", "not measured (see errors)", "", "NO")
	}
	switch p := s.Page; {
	case p == nil && s.Cfg.Sections["web"]:
		add("Web app: page ready", "not measured (see errors)", "", "NO")
	case p == nil:
	case p.Unavailable != "":
		add("Web app: page ready", "pending: "+p.Unavailable, "", "pending")
	default:
		add(fmt.Sprintf("Web app: page ready, navigation → first paint with the newest of %d stored messages, HTTP cache off (%d loads, headless chromium): p50 / p95", p.Stored, p.Ready.N),
			FmtDur(p.Ready.P50)+" / "+FmtDur(p.Ready.P95), "≤ "+FmtDur(TargetPageReady), met(p.Ready.P95 <= TargetPageReady))
	}

	// Private rooms.
	switch r := s.Sealed; {
	case r == nil && s.Cfg.Sections["private"]:
		add("Private room: CPU of a message, sealed vs plain", "not measured (see errors)", "", "NO")
	case r == nil:
	default:
		add("Private room: CPU of one message (seal or encode, envelope, Ed25519 sign and check, decode, open), plain → sealed",
			fmt.Sprintf("%s → %s (%+.1f %%)", FmtDur(r.Plain), FmtDur(r.Sealed), 100*r.Overhead()),
			fmt.Sprintf("≤ +%.0f %%", 100*TargetSealedOverhead), met(r.Overhead() <= TargetSealedOverhead))
	}

	// Abuse.
	switch a := s.Abuse; {
	case a == nil && s.Cfg.Sections["abuse"]:
		add("Abuse: floods against the default limits", "not measured (see errors)", "", "NO")
	case a == nil:
	default:
		ratio := float64(a.Flooded.P99) / float64(max(a.Quiet.P99, 1))
		add(fmt.Sprintf("Abuse: honest room line (one every %v) while a member floods %d valid messages/s for %v: p99 quiet → flooded", a.HonestEvery, a.FloodRate, a.FloodFor),
			fmt.Sprintf("%s → %s (%.1f×)", FmtDur(a.Quiet.P99), FmtDur(a.Flooded.P99), ratio), fmt.Sprintf("≤ %.0f× quiet", TargetFloodP99), met(ratio <= TargetFloodP99))
		add("Abuse: the flooder graylisted after · flood messages shown by the victim", fmt.Sprintf("%s · %d of %d", FmtDur(a.Graylisted), a.FloodShown, a.FloodSent),
			"≤ "+FmtDur(TargetGraylist), met(a.Graylisted > 0 && a.Graylisted <= TargetGraylist))
		page, wal := int64(history.PageSize*2*4300), int64(4<<20)
		add("Abuse: victim's store growth (files on disk) while one peer serves endless valid 4 KB history",
			FmtMB(a.HistoryGrowth), "≤ budget "+FmtMB(a.HistoryBudget)+" + one page + WAL", met(a.HistoryGrowth <= a.HistoryBudget+page+wal))
		growth := float64(a.RelayRSS[2]-a.ControlRSS[2]) / float64(max(a.ControlRSS[2], 1))
		add(fmt.Sprintf("Abuse: relay (a process of its own) RSS · heap in use: idle → while one peer holds %d subscriptions (%d rooms carried for it) → after it left and the idle sweep released its rooms (%v); after, next to a relay never attacked", a.Subscriptions, a.RelayTopics, a.RelayReleased),
			fmt.Sprintf("%s → %s → %s · %s → %s → %s; %s vs %s (%+.0f %%)", FmtMB(a.RelayRSS[0]), FmtMB(a.RelayRSS[1]), FmtMB(a.RelayRSS[2]),
				FmtMB(a.RelayHeap[0]), FmtMB(a.RelayHeap[1]), FmtMB(a.RelayHeap[2]), FmtMB(a.RelayRSS[2]), FmtMB(a.ControlRSS[2]), 100*growth),
			"RSS after ≤ idle + 10 %", met(a.RelayReleased && growth <= 0.10))
	}

	// Dispatcher.
	switch d := s.Dispatch; {
	case d == nil && s.Cfg.Sections["dispatch"]:
		add("Dispatcher: click → usable web app", "not measured (see errors)", "", "NO")
	case d == nil:
	case d.Unavailable != "":
		add("Dispatcher: click → usable web app", "pending: "+d.Unavailable, "", "pending")
	default:
		add(fmt.Sprintf("Dispatcher: click → visitor's web app answers, warm pool of %d (%d visitors): p50 / p95", d.Pool, d.Click.N),
			FmtDur(d.Click.P50)+" / "+FmtDur(d.Click.P95), "p95 ≤ "+FmtDur(TargetClick), met(d.Click.P95 <= TargetClick))
		add("Dispatcher: pool refill from empty (container started, web app answering)", fmt.Sprintf("%.2f peers/s", d.Refill), "", "")
		if d.SwarmUnavailable != "" {
			add("Dispatcher on Swarm: click → usable web app", "pending: "+d.SwarmUnavailable, "", "pending")
		} else {
			add(fmt.Sprintf("Dispatcher on Swarm: click → visitor's web app answers, warm pool of %d (%d visitors): p50 / p95", d.Pool, d.SwarmClick.N),
				FmtDur(d.SwarmClick.P50)+" / "+FmtDur(d.SwarmClick.P95), "p95 ≤ "+FmtDur(TargetClick)+" (single host: "+FmtDur(d.Click.P95)+")", met(d.SwarmClick.P95 <= TargetClick))
			add("Dispatcher on Swarm: pool refill from empty (service placed and pinned, web app answering)", fmt.Sprintf("%.2f peers/s", d.SwarmRefill), "", "")
		}
		add(fmt.Sprintf("Dispatcher: memory per idle peer container (%d containers): median / max", d.IdleMemory.N),
			FmtMB(int64(d.IdleMemory.P50))+" / "+FmtMB(int64(d.IdleMemory.Max)), "≤ "+FmtMB(TargetPeerMemory), met(d.IdleMemory.Max <= TargetPeerMemory))
		add(fmt.Sprintf("Dispatcher: %d visitors clicking at once on 2 cores: chatting · slowest click", d.Visitors),
			fmt.Sprintf("%d of %d · %s", d.LoadOK, d.Visitors, FmtDur(d.LoadSlowest)), fmt.Sprintf("%d of %d", d.Visitors, d.Visitors), met(d.LoadOK == d.Visitors))
	}

	// Test bed.
	switch l := s.Lab; {
	case l == nil:
		reason := "not run (section not selected)"
		if s.Cfg.Sections["lab"] {
			reason = "failed (see errors)"
		}
		add("mDNS: time to first peer, two LAN nodes started together", "pending: "+reason, "", "pending")
		add("Bridge: start to first room message between two NATed LANs", "pending: "+reason, "", "pending")
	case l.Unavailable != "":
		add("mDNS: time to first peer, two LAN nodes started together", "pending: "+l.Unavailable, "", "pending")
		add("Bridge: start to first room message between two NATed LANs", "pending: "+l.Unavailable, "", "pending")
	default:
		add(fmt.Sprintf("mDNS: time to first peer, two LAN nodes started together (median of %d)", l.MDNS.N),
			fmt.Sprintf("%s (connected: %s; max %s)", FmtDur(l.MDNS.P50), FmtDur(l.MDNSConn.P50), FmtDur(l.MDNS.Max)), "", "")
		add(fmt.Sprintf("Bridge: start to first room message between two NATed LANs (median of %d)", l.Bridge.N),
			fmt.Sprintf("%s (max %s)", FmtDur(l.Bridge.P50), FmtDur(l.Bridge.Max)), "", "")
	}

	// NAT traversal.
	for _, r := range s.NAT {
		if r.Unavailable != "" {
			add("NAT traversal: relayed → direct", "pending: "+r.Unavailable, "", "pending")
			continue
		}
		add(fmt.Sprintf("NAT, %s: direct · relayed → direct (median) · first room message (median), %d runs", r.Scenario, r.Runs),
			fmt.Sprintf("%d of %d (%s) · %s · %s", r.Direct, r.Runs, FmtPct(r.Rate()), FmtDur(r.ToDirect.P50), FmtDur(r.FirstMessage.P50)),
			WildDCUtRSuccess, "—")
	}
	return rows
}

// Table renders rows as an aligned text table.
func Table(rows []Row) string {
	head := Row{"figure", "value", "target", "met?"}
	w := [4]int{}
	all := append([]Row{head}, rows...)
	for _, r := range all {
		for i, c := range []string{r.Figure, r.Value, r.Target, r.Met} {
			w[i] = max(w[i], utf8.RuneCountInString(c))
		}
	}
	pad := func(s string, n int) string {
		return s + strings.Repeat(" ", max(0, n-utf8.RuneCountInString(s)))
	}
	var b strings.Builder
	for i, r := range all {
		fmt.Fprintf(&b, "%s  %s  %s  %s\n", pad(r.Figure, w[0]), pad(r.Value, w[1]), pad(r.Target, w[2]), r.Met)
		if i == 0 {
			b.WriteString(strings.Repeat("-", w[0]+w[1]+w[2]+12) + "\n")
		}
	}
	return b.String()
}

// NotesMarker starts the hand-written part of docs/benchmarks.md, which
// a new run keeps.
const NotesMarker = "<!-- parley-bench: everything below this line is written by hand and kept when the file is regenerated -->"

// KeptNotes returns the hand-written part of an existing results file.
func KeptNotes(existing string) string {
	if _, after, ok := strings.Cut(existing, NotesMarker); ok {
		return strings.TrimSpace(after)
	}
	return ""
}

const defaultNotes = `## Where targets are missed and why

(Nothing written yet: read the table and the profiles above, and explain here.)`

// Markdown renders the results file: environment, summary table, details,
// how it was measured, profiles, and the kept hand-written notes.
func (s *Suite) Markdown(command, notes string) string {
	var b strings.Builder
	p := func(format string, args ...any) { fmt.Fprintf(&b, format, args...) }
	p("# Parley benchmarks\n\n")
	p("Generated by `%s`; the part above the notes marker is rewritten on every run.\n\n", command)
	p("| | |\n|---|---|\n")
	p("| date | %s |\n", s.Env.Date.Format("2006-01-02 15:04 MST"))
	p("| Go | %s |\n", s.Env.GoVersion)
	p("| machine | %d cores (%s); load average at start %s |\n", s.Env.Cores, orDash(s.Env.CPUModel), orDash(s.Env.LoadAvg))
	code := orDash(s.Env.Commit)
	if len(s.Env.Dirty) > 0 {
		code += fmt.Sprintf(", with uncommitted changes in %d files (%s)", len(s.Env.Dirty), strings.Join(s.Env.Dirty, ", "))
	} else {
		code += ", no uncommitted change to Parley itself"
	}
	if s.Env.BenchDirty {
		code += "; the benchmark code (internal/bench, cmd/parley-bench) not yet committed"
	}
	p("| code | %s |\n", code)
	p("| run | %s in all |\n\n", s.Elapsed.Round(time.Second))

	p("## Results\n\n| figure | value | target | met? |\n|---|---|---|---|\n")
	for _, r := range s.Rows() {
		p("| %s | %s | %s | %s |\n", r.Figure, r.Value, orDash(r.Target), orDash(r.Met))
	}
	if len(s.Errors) > 0 {
		p("\n**Errors during the run:**\n\n")
		for _, e := range s.Errors {
			p("- %s\n", e)
		}
	}

	p("\n## Details\n")
	if len(s.Fanout)+len(s.Dense) > 0 {
		p("\n### Room fan-out (%d messages of %d bytes per run, %v apart, from random members)\n\n", s.Cfg.Messages, s.Cfg.Size, s.Cfg.Interval)
		p("| topology | members | router | mean degree (min–max) | p50 | p95 | p99 | max | delivered | duplicates per member and message | amplification | bytes on the wire | CPU busy | drops |\n")
		p("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|\n")
		row := func(topo string, r FanoutResult) {
			dup := fmt.Sprintf("%.2f", r.DupPerNode)
			if r.DupPerNode < 0 {
				dup = "n/a"
			}
			name := routerName(r.Router)
			if r.Tune != nil {
				name = "GossipSub, " + r.Tune.String()
			}
			p("| %s | %d | %s | %.1f (%d–%d) | %s | %s | %s | %s | %s | %s | %.2f× | %s | %.0f %% | %d |\n", topo, r.N, name,
				r.MeanDegree, r.MinDegree, r.MaxDegree, FmtDur(r.Latency.P50), FmtDur(r.Latency.P95), FmtDur(r.Latency.P99), FmtDur(r.Latency.Max),
				FmtPct(r.Ratio()), dup, r.Amplification, FmtMB(r.WireBytes), 100*r.CPUBusy, r.Dropped)
		}
		for _, r := range s.Fanout {
			row(fmt.Sprintf("random, each dials %d", s.Cfg.Degree), r)
		}
		for _, r := range s.Dense {
			row("full mesh", r)
		}
		for _, r := range s.Tuned {
			topo := fmt.Sprintf("random, each dials %d", s.Cfg.Degree)
			if r.MeanDegree >= float64(r.N-1) {
				topo = "full mesh"
			}
			row(topo, r)
		}
		p("\nFloodSub ÷ GossipSub, same topology and run:\n\n| topology | members | amplification | p50 latency | p99 latency |\n|---|---|---|---|---|\n")
		for _, dense := range []bool{false, true} {
			list, topo := s.Fanout, "random graph"
			if dense {
				list, topo = s.Dense, "full mesh"
			}
			for _, g := range list {
				if g.Router != GossipSub {
					continue
				}
				if f := s.fanout(FloodSub, g.N, dense); f != nil {
					p("| %s | %d | %.2f | %.2f | %.2f |\n", topo, g.N, f.Amplification/g.Amplification,
						float64(f.Latency.P50)/float64(g.Latency.P50), float64(f.Latency.P99)/float64(g.Latency.P99))
				}
			}
		}
	}
	if len(s.Sim) > 0 {
		c := s.Cfg.Sim
		p("\n### Room on a simulated network (%d × %d-byte messages %v apart, from random members; %v one way and %.0f Mbit/s on every link)\n\n",
			c.Messages, c.Size, c.Interval, c.OneWay, c.Bandwidth*8/1e6)
		p("| members | router | mean degree (min–max) | set-up | messages delivered during set-up (Parley: presence) | p50 | p95 | p99 | max | delivered | amplification | … with framing | bytes written | CPU busy | drops | Error events | whole run | peak RSS | peak goroutines |\n")
		p("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|\n")
		for _, r := range s.Sim {
			setup := "n/a"
			if r.Router == Parley {
				setup = fmt.Sprintf("%d (%.0f a member)", r.SetupDeliveries, float64(r.SetupDeliveries)/float64(r.N))
			}
			p("| %d | %s | %.1f (%d–%d) | %s | %s | %s | %s | %s | %s | %s | %.2f× | %.2f× | %s | %.0f %% | %d | %d | %s | %s | %d |\n", r.N, routerName(r.Router),
				r.MeanDegree, r.MinDegree, r.MaxDegree, FmtDur(r.Setup), setup, FmtDur(r.Latency.P50), FmtDur(r.Latency.P95), FmtDur(r.Latency.P99), FmtDur(r.Latency.Max),
				FmtPct(r.Ratio()), r.Amplification, r.Framed, FmtMB(r.WireBytes), 100*r.CPUBusy, r.Dropped, r.ErrorEvents, FmtDur(r.Wall), FmtMB(r.PeakRSS), r.PeakGoroutines)
		}
	}
	if len(s.Burst) > 0 {
		p("\n### Burst (one member of %d publishes back to back, %d-byte messages)\n\n", s.Cfg.BurstN, s.Cfg.BurstSize)
		p("| router | messages | publish calls took | last arrival | delivered | fewest at one member | drops surfaced (Parley) or traced | … traced in outbound / validation / subscription queues | Error events | CPU busy | CPU per message |\n|---|---|---|---|---|---|---|---|---|---|---|\n")
		for _, r := range s.Burst {
			q := fmt.Sprintf("%d / %d / %d", r.DropsByQueue[0], r.DropsByQueue[1], r.DropsByQueue[2])
			if r.Router == Parley {
				q = "n/a"
			}
			p("| %s | %d | %s | %s | %s | %d | %d | %s | %d | %.0f %% | %s |\n", routerName(r.Router), r.Messages, FmtDur(r.SendTime), FmtDur(r.LastArrival),
				FmtPct(r.Ratio()), r.MinPerMember, r.Dropped, q, r.ErrorEvents, 100*r.CPUBusy, FmtDur(r.CPUPerMessage()))
		}
	}
	if d := s.DM; d != nil {
		p("\n### Direct messages (%d-byte texts)\n\n| round trip | n | min | p50 | p95 | p99 | max |\n|---|---|---|---|---|---|---|\n", d.TextBytes)
		drow := func(name string, x Dist) {
			p("| %s | %d | %s | %s | %s | %s | %s |\n", name, x.N, FmtDur(x.Min), FmtDur(x.P50), FmtDur(x.P95), FmtDur(x.P99), FmtDur(x.Max))
		}
		drow("raw TCP echo (160 B → 40 B)", d.TCP)
		drow("libp2p stream echo, same nodes", d.Stream)
		drow("Parley DM, SendDM → Delivered", d.RTT)
		if d.DiskRTT.N > 0 {
			drow("Parley DM, both stores on disk (WAL, synchronous=NORMAL)", d.DiskRTT)
		}
		drow("first DM, peer not connected", d.FirstDM)
		if s.Node != nil && s.Node.BinaryDM.N > 0 {
			drow("DM between two binaries (JSON, on-disk store)", s.Node.BinaryDM)
		}
		drow("… of it: the SendDM call", d.SendCall)
		drow("… of it: SendDM → receiver's DirectMessage event", d.OneWay)
		drow("… of it: receiver's event → sender's Delivered event", d.AckBack)
		p("\nThroughput: %d DMs sent back to back to one peer were all acknowledged after %s: %.0f DMs/s", d.Delivered, FmtDur(d.ThroughputTime), d.Throughput)
		if d.DiskThroughput > 0 {
			p(" (%.0f DMs/s with both stores on disk)", d.DiskThroughput)
		}
		p(".\n")
	}
	if len(s.Store) > 0 {
		p("\n### Store operations on the message paths (internal/store, one at a time)\n\n")
		p("| operation | called by | in memory p50 / p99 (n) | on disk, WAL + synchronous=FULL, p50 / p99 (n) |\n|---|---|---|---|\n")
		for _, o := range s.Store {
			p("| %s | %s | %s / %s (%d) | %s / %s (%d) |\n", o.Name, o.PerMessage, FmtDur(o.Mem.P50), FmtDur(o.Mem.P99), o.Mem.N,
				FmtDur(o.Disk.P50), FmtDur(o.Disk.P99), o.Disk.N)
		}
	}
	if n := s.Node; n != nil {
		p("\n### The binary\n\n| figure | value |\n|---|---|\n")
		p("| start to ready, first start (creates identity and store) | %s |\n", FmtDur(n.FirstReady))
		p("| start to ready, next %d starts: min / median / max | %s / %s / %s |\n", n.Ready.N, FmtDur(n.Ready.Min), FmtDur(n.Ready.P50), FmtDur(n.Ready.Max))
		p("| RSS after %v idle, no peer | %s |\n", n.Idle, FmtMB(n.IdleRSS))
		p("| RSS after %v with %d peers in the room | %s |\n", n.Idle, n.PeersConnected, FmtMB(n.PeersRSS))
		if n.BinaryRoom.N > 0 {
			p("| room message between two binaries, send command → message event (%d): p50 / p95 / p99 | %s |\n", n.BinaryRoom.N, ms3(n.BinaryRoom))
		}
		if f := n.Floor; f != nil {
			p("| bare host (floor): RSS after %v idle, no peer | %s |\n", n.Idle, FmtMB(f.IdleRSS))
			p("| bare host (floor): RSS after %v with %d peers in the room | %s |\n", n.Idle, f.PeersConnected, FmtMB(f.PeersRSS))
			if f.Room.N > 0 {
				p("| bare host (floor): room message between two processes (%d): p50 / p95 / p99 | %s |\n", f.Room.N, ms3(f.Room))
			}
		}
	}
	if l := s.Lab; l != nil && l.Unavailable == "" {
		p("\n### Test bed (internal/netlab)\n\n| figure | n | min | median | max |\n|---|---|---|---|---|\n")
		p("| mDNS: start → connection to the other LAN node | %d | %s | %s | %s |\n", l.MDNSConn.N, FmtDur(l.MDNSConn.Min), FmtDur(l.MDNSConn.P50), FmtDur(l.MDNSConn.Max))
		p("| mDNS: start → the other in the room (peer-joined) | %d | %s | %s | %s |\n", l.MDNS.N, FmtDur(l.MDNS.Min), FmtDur(l.MDNS.P50), FmtDur(l.MDNS.Max))
		p("| bridge: b1 start → first room message from a1 | %d | %s | %s | %s |\n", l.Bridge.N, FmtDur(l.Bridge.Min), FmtDur(l.Bridge.P50), FmtDur(l.Bridge.Max))
	}

	if len(s.NAT) > 0 && s.NAT[0].Unavailable == "" {
		p("\n%s", NATMarkdown(s.NAT))
	}

	p("\n## How measured\n\n%s\n", s.howMeasured())

	if len(s.Profiles) > 0 {
		p("\n## CPU profiles of the missed targets\n\n")
		p("Each measurement below was run again with the CPU profiler on during its measured window only (not the setup; not the run in the tables). Shares are of all samples; a frame's share includes what it calls, so shares overlap (allocation happens inside the others).\n")
		for _, pr := range s.Profiles {
			p("\n### %s\n\n%s wall, %s of CPU samples (%.0f %% of %d cores). Profile: `%s`.\n\n", pr.Title, FmtDur(pr.Wall), FmtDur(pr.CPU),
				100*busy(pr.CPU, pr.Wall), s.Env.Cores, pr.File)
			if per := pr.PerOp(); per > 0 {
				p("CPU per %s: %s (%d in the run).\n\n", pr.OpName, FmtDur(per), pr.Ops)
				p("| where | share of CPU | per %s |\n|---|---|---|\n", pr.OpName)
				for _, bk := range pr.Buckets {
					p("| %s | %.1f %% | %s |\n", bk.Name, bk.Pct, FmtDur(time.Duration(bk.Pct/100*float64(per))))
				}
			} else {
				p("| where | share of CPU |\n|---|---|\n")
				for _, bk := range pr.Buckets {
					p("| %s | %.1f %% |\n", bk.Name, bk.Pct)
				}
			}
			if pr.Top != "" {
				p("\n<details><summary>go tool pprof -top</summary>\n\n```\n%s\n```\n</details>\n", pr.Top)
			}
		}
	}

	if notes == "" {
		notes = defaultNotes
	}
	p("\n%s\n\n%s\n", NotesMarker, notes)
	return b.String()
}

func (s *Suite) howMeasured() string {
	c := s.Cfg
	return strings.TrimSpace(fmt.Sprintf(`
- **Hosts for rooms and the burst.** All members run in this one process as light libp2p hosts: TCP on 127.0.0.1 only, Noise, yamux, no DHT, no relay, no QUIC, no resource limits (`+"`bench.NewLightHost`"+`). So all N members share %d cores: latencies include waiting for a core, which a real room (one member per machine) does not.
- **Topology.** Random graph: member i > 0 first dials one member started before it (so the graph is connected), then every member dials random others until it has dialed %d; mean degree just under %d, as when each member connects to the few members its discovery returned. The full-mesh rows connect every pair, as mDNS does on one LAN.
- **Routers.** *GossipSub*: go-libp2p-pubsub with chat's options (StrictSign, flood publishing, peer exchange, outbound and validation queues of %d). *FloodSub*: pubsub.NewFloodSub, StrictSign, same queues. *Parley*: the real chat.Service on the same hosts (envelopes, validator, history store in memory, event stream). *Plain GossipSub* (burst only): pubsub defaults (queues of 32, no flood publishing), as the go-libp2p chat example runs it.
- **GossipSub variants.** The rows "GossipSub with D=… " are the GossipSub router with chat's options but other mesh parameters (`+"`-tune`"+`), to show what smaller meshes would do; they are not what Parley runs.
- **Mesh warm-up.** Before measuring, every member must know all its neighbours as room members (GossipSub: ListPeers; Parley: a peer-joined event each) and, for GossipSub, have at least one mesh peer; then one heartbeat (1.1 s) passes and 5 warm-up messages are sent and awaited.
- **Latency** is from just before Topic.Publish (Service.Send for Parley) to the moment a receiving member's reader gets the message from its subscription (its Message event for Parley); one sample per message and receiver, one clock. Percentiles are nearest-rank. %d messages of %d bytes per run, %v apart, each from a random member.
- **Delivery** is the share of (message, receiver) pairs that arrived within 10 s of the last publish. **Duplicates** are redundant copies received and discarded (pubsub's DuplicateMessage trace), per message and receiver; not observable inside chat.Service.
- **Amplification** = bytes all hosts wrote to their TCP sockets (counted by wrapping each raw TCP connection before go-libp2p's upgrader secures it: Noise frames and tags, yamux headers, pubsub RPCs, control and gossip all included) from the first publish until 1 s after the last delivery, ÷ (payload bytes × receivers × messages).
- **Simulated network** (section `+"`sim`"+`). go-libp2p's mocknet: %d in-process hosts (Ed25519 keys, one address each in 198.18.0.0/15), no TCP, Noise or yamux; linked and connected only along the same random graph (each dials %d), so GossipSub peer exchange cannot add links. Every stream the application opens or accepts (GossipSub, history, DMs; not identify) is wrapped: a write is delayed by %v one way after the link's earlier bytes have left at %.0f Mbit/s (each direction of each link on its own), in order, up to 1,024 writes in flight before Write blocks. mocknet's own link options are not used (they let one stream carry only one large write per one-way latency). Members: the real chat.Service (in-memory store, chat.Unlimited limits, as in the fan-out) or GossipSub with chat's options. Latency and delivery as in the fan-out (%d messages, %v apart, each Send from a goroutine of its own so that one slow Send does not hold the schedule; delivery counted until everything arrived or nothing more did for 10 s, at most 5 min after the last publish). Amplification: bytes the application wrote to its streams (GossipSub RPCs with their length prefixes, history, DMs) from the first publish until 1 s after the last delivery ÷ (payload × receivers × messages); "with framing" adds 30 bytes a write for Noise (2 + 16) and yamux (12), which real connections would carry. Peak RSS and goroutines are sampled every 200 ms during the run (set-up included).
- **Burst.** Member 0 of a %d-member room calls Publish (Service.Post, retried while chat says it is busy; Post publishes in the background with up to 64 messages in flight) %d times in a loop, each call as soon as the previous one returned; each Parley member keeps an on-disk SQLite store (WAL, synchronous=NORMAL) as the program does; the time is from the first call to the last first-arrival at any member. Drops are chat.Service.Dropped summed over members (each also surfaced as an Error event) for Parley, and what a pubsub tracer saw for the others (nothing tells their user).
- **DMs.** Two real Parley nodes (node.New, TCP on 127.0.0.1, no mDNS) with chat.Service (default in-memory store). Round trip: SendDM until the sender's Delivered event, one at a time on an open stream (50 warm-up first). Raw TCP: a 160-byte request and a 40-byte reply on a loopback socket. libp2p echo: the same exchange on a libp2p stream between the same two nodes. Throughput: %d SendDM calls back to back, until all are Delivered (SendDM does not wait for acks: up to dm.Window DMs are in flight on the one stream). The round trip (500 of them) and the throughput are measured again with both nodes keeping their state in on-disk stores (internal/store in a temporary directory: SQLite, WAL, synchronous=NORMAL), as `+"`parley`"+` does. First DM: a fresh receiver whose address the sender knows but is not connected to, SendDM until Delivered (dial, Noise and yamux handshakes, identify, protocol negotiation, the DM, the ack). The round trip is also cut in parts: the SendDM call, SendDM until the receiver's DirectMessage event (taken by a goroutine draining the receiver's events), and from there to the sender's Delivered event. Store operations: each operation of internal/store that a DM or a room message makes, timed alone (1000 times in memory, 200 on disk in a temporary directory). Between binaries: two `+"`parley join`"+` processes (the sender bootstrapped from the receiver), from writing the JSON dm command to reading the delivered event; then room messages between the same two, from writing the JSON send command at one to reading the message event at the other.
- **The binary** is built once (`+"`go build ./cmd/parley`"+`) and started as `+"`parley join bench --json --data DIR --listen /ip4/127.0.0.1/tcp/0 --no-mdns`"+`; start to ready is from just before exec to reading the `+"`ready`"+` line. RSS is VmRSS from /proc/PID/status after %v idle, and again after %d in-process light hosts running GossipSub joined the room and each was reported as peer-joined, after %v more. The floor rows measure, in the same run and the same way (one program at a time), `+"`internal/bench/floor`"+`: a bare go-libp2p host built as node.New builds its host (TCP and QUIC, Noise, yamux, the same resource and connection managers), kad-dht in server mode and GossipSub with go-libp2p-pubsub's defaults (StrictSign, no peer scoring) plus chat's flood publishing, joined to the room's topic, printing the same JSON events; no store, no chat layer, no NAT port mapping, relay or hole punching. It is what Parley's dependencies cost before Parley adds anything.
- **Test bed.** internal/netlab (network namespaces: a public segment, two LANs behind NAT routers). mDNS: a1 and a2 on LAN A run `+"`parley join lobby --json`"+` with default flags (mDNS on), started together; time from each process start to its peer-joined (and connection) event for the other. Bridge: `+"`parley relay`"+` on the public segment, then a1 and b1 started together with `+"`--bootstrap`"+` the relay; a1 sends a room message every 100 ms from its ready event; time from b1's start to the first message from a1 at b1. Process starts include `+"`ip netns exec`"+`.
- **NAT traversal** (section `+"`nat`"+`, not in the default run: `+"`-sections nat -nat-runs N`"+`). For each network, a test bed of its own with `+"`parley relay`"+` on the public segment (TCP and QUIC, IPv6 too where the bed has it); each run starts a1 (LAN A) and b1 (LAN B) with fresh data directories, listening only on the network's addresses and bootstrapped from the relay address of the network's family and transport; a1 sends a room message every 100 ms from its ready event. First room message: b1's start to the first message from a1. Direct: a1's connection event for b1 says hole-punched or direct within 10 s of that first message; relayed → direct is from a1's first relayed connection event for b1 to that one (from a1's start if it went direct with none before). Failed punch rounds are the hole-punch events with "ok":false on either side in that time. NAT mappings are flushed between runs. There is no added latency: the kernel of this machine kind has no netem qdisc, so every hop is sub-millisecond and the times are a lower bound; what they show is whether a path is found and how many round trips it takes, not WAN timing. The in-the-wild rate is the anchor: its networks include symmetric NATs, firewalls that answer with RSTs, and real latency, none of which these beds have unless they say so.
- **Profiles.** Measurements whose targets are missed are run again under the CPU profiler and summarised with `+"`go tool pprof`"+`.`,
		s.Env.Cores, c.Degree, 2*c.Degree, chatQueue(), c.Messages, c.Size, c.Interval, c.Sim.N, c.Sim.Degree, c.Sim.OneWay, c.Sim.Bandwidth*8/1e6, c.Sim.Messages, c.Sim.Interval, c.BurstN, c.BurstMessages, c.DMThroughput, c.Idle, c.Peers, c.Idle))
}

func chatQueue() int { return chat.PeerQueueSize }

func routerName(r Router) string {
	switch r {
	case GossipSub:
		return "GossipSub (chat's options)"
	case FloodSub:
		return "FloodSub"
	case Parley:
		return "Parley (chat.Service)"
	case PlainGossipSub:
		return "plain GossipSub (defaults)"
	}
	return string(r)
}

func orDash(s string) string {
	if s == "" {
		return "—"
	}
	return s
}

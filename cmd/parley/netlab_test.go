package main_test

import (
	"context"
	"fmt"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/parley-chat/parley/internal/netlab"
	"github.com/parley-chat/parley/internal/proctest"
)

// These tests run the real binary on hosts of a network-namespace test bed
// (internal/netlab): a relay on a public segment, LAN A (a1, a2) and LAN
// B (b1, b2), each LAN behind its own NAT router. They need root,
// iproute2 and nftables, and skip otherwise.

const relayPort = "4001"

// startIn runs parley on a lab host.
func startIn(t *testing.T, h *netlab.Host, name string, args ...string) *proc {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	cmd := h.Command(ctx, binary, args...)
	// Debug logs (ours and go-libp2p's hole punching) are shown when a
	// test fails.
	cmd.Env = append(os.Environ(), "GOLOG_LOG_LEVEL=error,p2p-holepunch=debug")
	return proctest.StartTest(t, name, cmd)
}

// startRelay runs `parley relay` on the lab's relay host with data dir
// data and returns it with its TCP multiaddr.
func startRelay(t *testing.T, lab *netlab.Lab, data string) (*proc, string) {
	t.Helper()
	return startRelayOn(t, lab.Relay, data)
}

// startRelayOn runs `parley relay` on a public host h.
func startRelayOn(t *testing.T, h *netlab.Host, data string) (*proc, string) {
	t.Helper()
	ip := h.IP.String()
	r := startIn(t, h, h.Name, "relay", "--json", "--data", data,
		"--listen", "/ip4/"+ip+"/tcp/"+relayPort, "--listen", "/ip4/"+ip+"/udp/"+relayPort+"/quic-v1")
	r.Ready()
	addr, err := proctest.AddrOf(r.Event("ready"), "/tcp/")
	if err != nil {
		t.Fatalf("relay: %v", err)
	}
	return r, addr
}

// joinIn starts a chat node on a lab host, behind its NAT, bootstrapped
// from relay (if given). mDNS stays on, as for any user.
func joinIn(t *testing.T, h *netlab.Host, nick, relay string) *proc {
	t.Helper()
	args := []string{"join", "lobby", "--json", "--log-level", "debug", "--nick", nick, "--data", t.TempDir(),
		"--listen", "/ip4/0.0.0.0/tcp/4001", "--listen", "/ip4/0.0.0.0/udp/4001/quic-v1"}
	if relay != "" {
		args = append(args, "--bootstrap", relay)
	}
	return startIn(t, h, nick, args...)
}

func TestLabMDNSFindsPeersOnTheLANOnly(t *testing.T) {
	lab := netlab.Setup(t, netlab.Config{})
	a1 := joinIn(t, lab.A1, "a1", "")
	a2 := joinIn(t, lab.A2, "a2", "")
	b1 := joinIn(t, lab.B1, "b1", "")
	a1ID, _ := a1.Ready()
	a2ID, _ := a2.Ready()
	b1.Ready()

	_, found := a1.EventAt("peer-joined", "peer", a2ID)
	a2.Event("peer-joined", "peer", a1ID)
	t.Logf("mDNS: a1 saw a2 in the room %v after a1 started", found.Round(time.Millisecond))
	if c := a1.Event("connection", "peer", a2ID); c["path"] != "lan" {
		t.Errorf("a1 reaches a2 via %v, want lan", c["path"])
	}
	a1.Send("hello LAN")
	a2.Event("message", "text", "hello LAN", "from", a1ID)
	a2.Send("hello back")
	a1.Event("message", "text", "hello back", "from", a2ID)

	for _, ev := range b1.Snapshot() {
		if ev["event"] == "peer-joined" || ev["event"] == "message" && ev["from"] != b1.Event("ready")["peer"] {
			t.Errorf("b1 on LAN B saw LAN A: %v", ev)
		}
	}
	for _, p := range []*proc{a1, a2, b1} {
		p.CloseAndWait()
	}
}

// crossNAT starts a relay and a1, b1 behind their NATs, and checks that
// room messages flow both ways and a DM is delivered. It returns the
// nodes and their peer IDs.
func crossNAT(t *testing.T, lab *netlab.Lab, relayData string) (relay, a1, b1 *proc, relayID, a1ID, b1ID string) {
	t.Helper()
	relay, relayAddr := startRelay(t, lab, relayData)
	relayID = relay.Event("ready")["peer"].(string)
	a1 = joinIn(t, lab.A1, "alice", relayAddr)
	b1 = joinIn(t, lab.B1, "bob", relayAddr)
	a1ID, _ = a1.Ready()
	b1ID, _ = b1.Ready()
	for _, p := range []*proc{a1, b1} {
		_, at := p.EventAt("relay-reservation")
		t.Logf("%s: start → relay reservation %v", p.Name(), at.Round(time.Millisecond))
		p.Event("peer-joined", "peer", relayID) // the bridge carries the room
	}
	// ... and knows both members are in it.
	relay.Event("peer-joined", "room", "lobby", "peer", a1ID)
	relay.Event("peer-joined", "room", "lobby", "peer", b1ID)
	a1.Send("hello from LAN A")
	_, at := b1.EventAt("message", "text", "hello from LAN A", "from", a1ID)
	t.Logf("bob: start → first room message across the NATs %v", at.Round(time.Millisecond))
	b1.Send("hello from LAN B")
	a1.Event("message", "text", "hello from LAN B", "from", b1ID)

	a1.Send("/dm " + b1ID + " first dm")
	id := a1.Event("sent", "to", b1ID)["id"].(string)
	b1.Event("dm", "id", id, "from", a1ID)
	a1.Event("delivered", "id", id)
	return relay, a1, b1, relayID, a1ID, b1ID
}

func TestLabPortPreservingNATsGoDirect(t *testing.T) {
	lab := netlab.Setup(t, netlab.Config{NATA: netlab.PortPreserving, NATB: netlab.PortPreserving})
	_, a1, b1, _, a1ID, b1ID := crossNAT(t, lab, t.TempDir())

	// The relayed connection is upgraded by DCUtR.
	relayed, relayedAt := a1.EventAt("connection", "peer", b1ID, "path", "relayed")
	_, punchedAt := a1.EventAt("connection", "peer", b1ID, "path", "hole-punched")
	t.Logf("alice: relayed (via %v) → hole-punched in %v", relayed["relay"], (punchedAt - relayedAt).Round(time.Millisecond))
	// Once direct, the two see each other in the room, and DMs go direct.
	a1.Event("peer-joined", "peer", b1ID)
	b1.Send("/dm " + a1ID + " direct dm")
	id := b1.Event("sent", "to", a1ID)["id"].(string)
	a1.Event("dm", "id", id)
	b1.Event("delivered", "id", id)
	a1.CloseAndWait()
	b1.CloseAndWait()
}

func TestLabFullyRandomNATsStayRelayed(t *testing.T) {
	lab := netlab.Setup(t, netlab.Config{NATA: netlab.FullyRandom, NATB: netlab.FullyRandom})
	_, a1, b1, relayID, _, b1ID := crossNAT(t, lab, t.TempDir())
	a1.Send("/peers")
	listed := false
	for _, p := range a1.Event("peers")["peers"].([]any) {
		p := p.(map[string]any)
		if p["peer"] == b1ID {
			listed = true
			if p["path"] != "relayed" || p["relay"] != relayID {
				t.Errorf("through symmetric NATs bob is reached %v via %v, want relayed via %s", p["path"], p["relay"], relayID)
			}
			if rooms := fmt.Sprint(p["rooms"]); rooms != "[lobby]" {
				t.Errorf("/peers lists bob in rooms %s, want [lobby] (heard through the bridge)", rooms)
			}
		}
	}
	if !listed {
		t.Errorf("/peers does not list bob, who is connected through the relay")
	}
	for _, ev := range a1.Snapshot() {
		if ev["event"] == "connection" && ev["path"] == "hole-punched" {
			t.Errorf("hole punching through symmetric NATs cannot work, yet: %v", ev)
		}
	}
	a1.CloseAndWait()
	b1.CloseAndWait()
}

func TestLabRelayRestart(t *testing.T) {
	lab := netlab.Setup(t, netlab.Config{NATA: netlab.FullyRandom, NATB: netlab.FullyRandom})
	relayData := t.TempDir()
	relay, a1, b1, relayID, a1ID, b1ID := crossNAT(t, lab, relayData)

	relay.Signal(os.Interrupt)
	<-relay.P.Exited()
	for _, p := range []*proc{a1, b1} {
		p.Event("peer-left", "peer", relayID)
	}
	restarted, _ := startRelay(t, lab, relayData)
	if id := restarted.Event("ready")["peer"]; id != relayID {
		t.Fatalf("relay came back as %v, want the same identity %s", id, relayID)
	}
	// Both sides reconnect on their own and the bridge carries the room again.
	for _, p := range []*proc{a1, b1} {
		p.WaitNth("relay back in the room", 2, func(ev map[string]any) bool {
			return ev["event"] == "peer-joined" && ev["peer"] == relayID
		})
		restarted.Event("peer-joined", "room", "lobby", "peer", p.Event("ready")["peer"].(string))
	}
	a1.Send("after the restart")
	b1.Event("message", "text", "after the restart", "from", a1ID)
	b1.Send("still here")
	a1.Event("message", "text", "still here", "from", b1ID)
	a1.CloseAndWait()
	b1.CloseAndWait()
}

// addAddr gives a lab host an extra address on lo (this kernel has no
// dummy links), as a host with a global IPv6 or a CGNAT-side address
// carries one on some interface.
func addAddr(t *testing.T, h *netlab.Host, cidr string) {
	t.Helper()
	if out, err := h.Command(t.Context(), "ip", "addr", "add", cidr, "dev", "lo").CombinedOutput(); err != nil {
		t.Fatalf("%v: ip addr add %s dev lo: %v: %s", h, cidr, err, out)
	}
}

// A NATed host with a public-looking address on an interface is still
// behind its NAT: it reserves a relay slot at once, reports it, and chats
// with the other LAN through the relay. (The reachability rule used to
// read interface addresses, and such a host never reserved a slot.)
func TestLabPublicLookingInterfaceAddrStillReserves(t *testing.T) {
	lab := netlab.Setup(t, netlab.Config{NATA: netlab.FullyRandom, NATB: netlab.FullyRandom})
	addAddr(t, lab.A1, "11.99.0.5/32")
	_, a1, b1, relayID, a1ID, b1ID := crossNAT(t, lab, t.TempDir())
	_, at := a1.EventAt("relay-reservation")
	if at > 3*time.Second {
		t.Errorf("alice reserved a relay slot %v after start, want within about a second", at.Round(time.Millisecond))
	}
	// bob reaches alice through her reservation: a DM from him goes over
	// a circuit through the relay.
	b1.Send("/dm " + a1ID + " through your reservation")
	id := b1.Event("sent", "to", a1ID)["id"].(string)
	a1.Event("dm", "id", id, "from", b1ID)
	b1.Event("delivered", "id", id)
	b1.Event("connection", "peer", a1ID, "path", "relayed", "relay", relayID)
	a1.CloseAndWait()
	b1.CloseAndWait()
}

// A host on the public segment, with no NAT in front of it, reserves
// slots on its two relays at start like any node with --bootstrap peers,
// and gives them up once AutoNAT v2 (both relays serve it) has confirmed
// that it is reachable directly.
func TestLabPublicHostGivesUpItsReservation(t *testing.T) {
	lab := netlab.Setup(t, netlab.Config{})
	_, relay1 := startRelay(t, lab, t.TempDir())
	_, relay2 := startRelayOn(t, lab.Relay2, t.TempDir())
	p := startIn(t, lab.Public, "public", "join", "lobby", "--json", "--log-level", "debug", "--data", t.TempDir(),
		"--listen", "/ip4/0.0.0.0/tcp/4001", "--listen", "/ip4/0.0.0.0/udp/4001/quic-v1",
		"--bootstrap", relay1, "--bootstrap", relay2)
	p.Ready()
	_, reservedAt := p.WaitForAt("a relay reservation", func(ev proctest.Event) bool {
		return ev["event"] == "relay-reservation" && len(ev["addrs"].([]any)) > 0
	})
	_, gaveUpAt := p.WaitForAt("the reservations given up", func(ev proctest.Event) bool {
		return ev["event"] == "relay-reservation" && len(ev["addrs"].([]any)) == 0
	})
	t.Logf("public host: start → relay reservation %v → given up (AutoNAT v2 confirmed reachability) %v",
		reservedAt.Round(time.Millisecond), gaveUpAt.Round(time.Millisecond))
	p.CloseAndWait()
}

// joinTwoRelays starts a chat node on h bootstrapped from two relays.
func joinTwoRelays(t *testing.T, h *netlab.Host, nick, relay1, relay2 string) *proc {
	t.Helper()
	return startIn(t, h, nick, "join", "lobby", "--json", "--log-level", "debug", "--nick", nick, "--data", t.TempDir(),
		"--listen", "/ip4/0.0.0.0/tcp/4001", "--listen", "/ip4/0.0.0.0/udp/4001/quic-v1",
		"--bootstrap", relay1, "--bootstrap", relay2)
}

// reservedOn matches a relay-reservation event whose circuit addresses go
// through all of relays and no other.
func reservedOn(relays ...string) func(proctest.Event) bool {
	return func(ev proctest.Event) bool {
		if ev["event"] != "relay-reservation" {
			return false
		}
		through := map[string]bool{}
		for _, a := range ev["addrs"].([]any) {
			r, _, ok := strings.Cut(a.(string)[strings.Index(a.(string), "/p2p/")+len("/p2p/"):], "/p2p-circuit")
			if !ok || !slices.Contains(relays, r) {
				return false
			}
			through[r] = true
		}
		return len(through) == len(relays)
	}
}

// waitAfter waits for the first event at index from or later for which f
// holds.
func waitAfter(t *testing.T, p *proc, from int, what string, f func(proctest.Event) bool) (proctest.Event, time.Duration) {
	t.Helper()
	ev, _, at, err := p.P.WaitFrom(t.Context(), from, what, f)
	if err != nil {
		t.Fatalf("%v\nevents: %v", err, p.Snapshot())
	}
	return ev, at
}

// Two relays, and symmetric NATs so that everything between the LANs goes
// through them: both nodes hold reservations on both relays and both
// bridges carry the room. The relay that carries alice's connection to bob
// dies (SIGKILL): room messages and a DM sent at once still arrive, through
// the other relay, and nothing is lost. When it comes back with its
// identity, both nodes reserve on it again and it carries the room again.
func TestLabTwoRelaysFailover(t *testing.T) {
	lab := netlab.Setup(t, netlab.Config{NATA: netlab.FullyRandom, NATB: netlab.FullyRandom})
	hosts := []*netlab.Host{lab.Relay, lab.Relay2}
	data := []string{t.TempDir(), t.TempDir()}
	relays := make([]*proc, 2)
	addrs, ids := make([]string, 2), make([]string, 2)
	for i, h := range hosts {
		relays[i], addrs[i] = startRelayOn(t, h, data[i])
		ids[i] = relays[i].Event("ready")["peer"].(string)
	}
	a1 := joinTwoRelays(t, lab.A1, "alice", addrs[0], addrs[1])
	b1 := joinTwoRelays(t, lab.B1, "bob", addrs[0], addrs[1])
	a1ID, _ := a1.Ready()
	b1ID, _ := b1.Ready()
	for _, p := range []*proc{a1, b1} {
		_, at := p.WaitForAt("reservations on both relays", reservedOn(ids...))
		t.Logf("%s: start → reservations on both relays %v", p.Name(), at.Round(time.Millisecond))
	}
	for _, r := range relays {
		r.Event("peer-joined", "room", "lobby", "peer", a1ID)
		r.Event("peer-joined", "room", "lobby", "peer", b1ID)
	}
	a1.Send("before")
	b1.Event("message", "text", "before", "from", a1ID)
	a1.Send("/dm " + b1ID + " dm before")
	id := a1.Event("sent", "to", b1ID)["id"].(string)
	b1.Event("dm", "id", id)
	a1.Event("delivered", "id", id)

	// Kill the relay that carries alice's connection to bob.
	dead := slices.Index(ids, a1.Event("connection", "peer", b1ID, "path", "relayed")["relay"].(string))
	if dead < 0 {
		t.Fatalf("alice reaches bob through neither relay")
	}
	alive := 1 - dead
	from := map[*proc]int{a1: a1.P.Count(), b1: b1.P.Count()}
	relays[dead].Kill()
	killed := time.Now()
	t.Logf("killed %s, which carried alice → bob", hosts[dead].Name)

	const burst = 5
	for i := range burst {
		a1.Send(fmt.Sprintf("during %d", i))
	}
	a1.Send("/dm " + b1ID + " dm during")
	b1.Send("back during")
	for i := range burst {
		b1.Event("message", "text", fmt.Sprintf("during %d", i), "from", a1ID)
	}
	t.Logf("bob: the %d room messages alice sent after the kill arrived within %v", burst, time.Since(killed).Round(time.Millisecond))
	a1.Event("message", "text", "back during", "from", b1ID)
	sent, _ := a1.WaitNth("the DM sent after the kill", 2, proctest.Match("sent", "to", b1ID))
	b1.Event("dm", "id", sent["id"].(string), "from", a1ID)
	a1.Event("delivered", "id", sent["id"].(string))
	t.Logf("alice: the DM sent after the kill delivered within %v", time.Since(killed).Round(time.Millisecond))
	for _, p := range []*proc{a1, b1} {
		waitAfter(t, p, from[p], "a reservation on the surviving relay only", reservedOn(ids[alive]))
	}
	t.Logf("both: reservation on %s only %v after the kill", hosts[alive].Name, time.Since(killed).Round(time.Millisecond))
	waitAfter(t, a1, from[a1], "a relayed connection to bob through the surviving relay",
		proctest.Match("connection", "peer", b1ID, "path", "relayed", "relay", ids[alive]))

	// The dead relay comes back with its identity: both nodes return to it.
	from = map[*proc]int{a1: a1.P.Count(), b1: b1.P.Count()}
	back, _ := startRelayOn(t, hosts[dead], data[dead])
	restarted := time.Now()
	if got := back.Event("ready")["peer"]; got != ids[dead] {
		t.Fatalf("%s came back as %v, want %s", hosts[dead].Name, got, ids[dead])
	}
	for _, p := range []*proc{a1, b1} {
		waitAfter(t, p, from[p], "reservations on both relays again", reservedOn(ids...))
		back.Event("peer-joined", "room", "lobby", "peer", p.Event("ready")["peer"].(string))
	}
	t.Logf("both: reservations on both relays again %v after the restart", time.Since(restarted).Round(time.Millisecond))
	a1.Send("after")
	b1.Event("message", "text", "after", "from", a1ID)
	a1.CloseAndWait()
	b1.CloseAndWait()
}

package main_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/parley-chat/parley/internal/netlab"
	"github.com/parley-chat/parley/internal/proctest"
)

// Hole punching as people have it: over QUIC or TCP only, over IPv6
// through stateful firewalls, from a LAN that drops all UDP, and behind a
// carrier-grade NAT. Each test runs the real binary in the test bed and
// checks what a user sees: the chat works through the relay at once, and
// /peers (and the connection event) says how each peer is reached, over
// which address family and transport.

// relayListen are the addresses a lab relay listens on: TCP and QUIC, on
// IPv6 too when the host has an IPv6 address.
func relayListen(h *netlab.Host) []string {
	ls := []string{"/ip4/" + h.IP.String() + "/tcp/" + relayPort, "/ip4/" + h.IP.String() + "/udp/" + relayPort + "/quic-v1"}
	if h.IP6 != nil {
		ls = append(ls, "/ip6/"+h.IP6.String()+"/tcp/"+relayPort, "/ip6/"+h.IP6.String()+"/udp/"+relayPort+"/quic-v1")
	}
	return ls
}

// startLabRelay runs `parley relay` on the lab's relay host, listening on
// relayListen, and returns it with its ready event.
func startLabRelay(t *testing.T, lab *netlab.Lab) (*proc, proctest.Event) {
	t.Helper()
	args := []string{"relay", "--json", "--data", t.TempDir()}
	for _, l := range relayListen(lab.Relay) {
		args = append(args, "--listen", l)
	}
	r := startIn(t, lab.Relay, "relay", args...)
	r.Ready()
	return r, r.Event("ready")
}

// relayAddr returns the relay's address that contains all of parts, e.g.
// "/ip6/" and "/quic-v1".
func relayAddr(t *testing.T, ready proctest.Event, parts ...string) string {
	t.Helper()
	for _, a := range ready["addrs"].([]any) {
		s := a.(string)
		ok := true
		for _, p := range parts {
			ok = ok && strings.Contains(s, p)
		}
		if ok {
			return s
		}
	}
	t.Fatalf("relay has no address with %v: %v", parts, ready["addrs"])
	return ""
}

// joinListening starts a chat node on h that listens on listen only and
// is bootstrapped from the given relay addresses (one relay, several of
// its addresses).
func joinListening(t *testing.T, h *netlab.Host, nick string, listen []string, bootstrap ...string) *proc {
	t.Helper()
	args := []string{"join", "lobby", "--json", "--log-level", "debug", "--nick", nick, "--data", t.TempDir()}
	for _, l := range listen {
		args = append(args, "--listen", l)
	}
	for _, b := range bootstrap {
		args = append(args, "--bootstrap", b)
	}
	return startIn(t, h, nick, args...)
}

// chatThroughRelay checks that a1 and b1 chat through the relay: a room
// message each way, and a DM.
func chatThroughRelay(t *testing.T, relay, a1, b1 *proc) (a1ID, b1ID string) {
	t.Helper()
	a1ID, _ = a1.Ready()
	b1ID, _ = b1.Ready()
	relay.Event("peer-joined", "room", "lobby", "peer", a1ID)
	relay.Event("peer-joined", "room", "lobby", "peer", b1ID)
	a1.Send("hello from LAN A")
	_, at := b1.EventAt("message", "text", "hello from LAN A", "from", a1ID)
	t.Logf("bob: start → first room message from alice %v", at.Round(time.Millisecond))
	b1.Send("hello from LAN B")
	a1.Event("message", "text", "hello from LAN B", "from", b1ID)
	a1.Send("/dm " + b1ID + " first dm")
	id := a1.Event("sent", "to", b1ID)["id"].(string)
	b1.Event("dm", "id", id, "from", a1ID)
	a1.Event("delivered", "id", id)
	return a1ID, b1ID
}

// peerEntry asks p for /peers and returns the entry of peer id.
func peerEntry(t *testing.T, p *proc, id string) map[string]any {
	t.Helper()
	from := p.P.Count()
	p.Send("/peers")
	ev, _ := waitAfter(t, p, from, "the answer to /peers", proctest.Match("peers"))
	for _, e := range ev["peers"].([]any) {
		if e := e.(map[string]any); e["peer"] == id {
			return e
		}
	}
	t.Fatalf("/peers does not list %s: %v", id, ev)
	return nil
}

// goesDirect waits until alice reaches bob directly and checks that
// /peers on both sides says so, over family and transport ("" for any).
// It returns alice's connection event.
func goesDirect(t *testing.T, a1, b1 *proc, a1ID, b1ID, family, transport string) proctest.Event {
	t.Helper()
	direct, directAt := a1.WaitForAt("a direct connection to bob", func(ev proctest.Event) bool {
		return ev["event"] == "connection" && ev["peer"] == b1ID && (ev["path"] == "hole-punched" || ev["path"] == "direct")
	})
	// Usually a relayed connection comes first; with IPv6, both sides may
	// dial each other's global address at once and go direct at the first
	// try (simultaneous open, with no relayed connection in between).
	isRelayed := proctest.Match("connection", "peer", b1ID, "path", "relayed")
	if relayed, _, relayedAt, err := a1.P.WaitFrom(ctxNow(t), 0, "relayed", isRelayed); err == nil && relayedAt < directAt {
		t.Logf("alice: relayed (over %v/%v) → %v over %v/%v in %v", relayed["family"], relayed["transport"],
			direct["path"], direct["family"], direct["transport"], (directAt - relayedAt).Round(time.Millisecond))
	} else {
		t.Logf("alice: %v over %v/%v %v after start, with no relayed connection before", direct["path"], direct["family"], direct["transport"], directAt.Round(time.Millisecond))
	}
	for _, side := range []struct {
		p    *proc
		peer string
	}{{a1, b1ID}, {b1, a1ID}} {
		// Each side learns of the direct connection on its own (a QUIC
		// client finishes its handshake a round trip before the server).
		side.p.WaitFor("a direct connection", func(ev proctest.Event) bool {
			return ev["event"] == "connection" && ev["peer"] == side.peer && (ev["path"] == "hole-punched" || ev["path"] == "direct")
		})
		e := peerEntry(t, side.p, side.peer)
		if e["path"] != "hole-punched" && e["path"] != "direct" {
			t.Errorf("%s: /peers says %v, want a direct path", side.p.Name(), e)
		}
		if family != "" && e["family"] != family || transport != "" && e["transport"] != transport {
			t.Errorf("%s: /peers says over %v/%v, want %s/%s", side.p.Name(), e["family"], e["transport"], family, transport)
		}
	}
	// The DM after the punch goes over the direct connection.
	b1.Send("/dm " + a1ID + " direct dm")
	id := b1.Event("sent", "to", a1ID)["id"].(string)
	a1.Event("dm", "id", id)
	b1.Event("delivered", "id", id)
	return direct
}

// Behind port-preserving NATs, nodes that speak one transport only punch
// over it: QUIC (UDP) or TCP, and /peers names it.
func TestLabHolePunchOverEachTransport(t *testing.T) {
	for _, tt := range []struct {
		transport string
		listen    string // the nodes' only listen address
		relay     string // the relay address they bootstrap from
	}{
		{"quic", "/ip4/0.0.0.0/udp/4001/quic-v1", "/quic-v1"},
		{"tcp", "/ip4/0.0.0.0/tcp/4001", "/tcp/"},
	} {
		t.Run(tt.transport, func(t *testing.T) {
			lab := netlab.Setup(t, netlab.Config{NATA: netlab.PortPreserving, NATB: netlab.PortPreserving})
			relay, ready := startLabRelay(t, lab)
			addr := relayAddr(t, ready, "/ip4/", tt.relay)
			a1 := joinListening(t, lab.A1, "alice", []string{tt.listen}, addr)
			b1 := joinListening(t, lab.B1, "bob", []string{tt.listen}, addr)
			a1ID, b1ID := chatThroughRelay(t, relay, a1, b1)
			c := goesDirect(t, a1, b1, a1ID, b1ID, "ip4", tt.transport)
			if c["path"] != "hole-punched" {
				t.Errorf("alice reaches bob %v, want hole-punched (nothing else reaches through two NATs)", c["path"])
			}
			a1.CloseAndWait()
			b1.CloseAndWait()
		})
	}
}

// IPv6 hosts in different LANs, each behind its router's stateful
// firewall (global addresses, no NAT): they chat through the relay at
// once and end up on a direct IPv6 connection (simultaneous open).
func TestLabIPv6FirewallsGoDirect(t *testing.T) {
	lab := netlab.Setup(t, netlab.Config{IPv6: true})
	relay, ready := startLabRelay(t, lab)
	listen := []string{"/ip6/::/tcp/4001", "/ip6/::/udp/4001/quic-v1"}
	bootstrap := []string{relayAddr(t, ready, "/ip6/", "/tcp/"), relayAddr(t, ready, "/ip6/", "/quic-v1")}
	a1 := joinListening(t, lab.A1, "alice", listen, bootstrap...)
	b1 := joinListening(t, lab.B1, "bob", listen, bootstrap...)
	a1ID, b1ID := chatThroughRelay(t, relay, a1, b1)
	goesDirect(t, a1, b1, a1ID, b1ID, "ip6", "")
	a1.CloseAndWait()
	b1.CloseAndWait()
}

// A LAN whose router drops all UDP (QUIC cannot leave it) still chats:
// its node, listening on TCP and QUIC like any other, reaches the relay
// over TCP, and the punch to the other LAN goes over TCP. Both nodes are
// given the relay's TCP address, as the README shows it: a punch can only
// use a transport over which both sides learned their public address,
// and a node that reached its relay over QUIC only has no TCP address to
// offer (go-libp2p keeps one connection per peer).
func TestLabUDPBlockedLANPunchesOverTCP(t *testing.T) {
	lab := netlab.Setup(t, netlab.Config{NATA: netlab.PortPreserving, NATB: netlab.PortPreserving})
	if err := lab.RouterA.SetUDPBlocked(t.Context(), true); err != nil {
		t.Fatal(err)
	}
	relay, ready := startLabRelay(t, lab)
	listen := []string{"/ip4/0.0.0.0/tcp/4001", "/ip4/0.0.0.0/udp/4001/quic-v1"}
	addr := relayAddr(t, ready, "/ip4/", "/tcp/")
	a1 := joinListening(t, lab.A1, "alice", listen, addr)
	b1 := joinListening(t, lab.B1, "bob", listen, addr)
	a1ID, b1ID := chatThroughRelay(t, relay, a1, b1)
	c := goesDirect(t, a1, b1, a1ID, b1ID, "ip4", "tcp")
	if c["path"] != "hole-punched" {
		t.Errorf("alice reaches bob %v, want hole-punched", c["path"])
	}
	a1.CloseAndWait()
	b1.CloseAndWait()
}

// Two LANs behind home NATs that both sit behind one carrier-grade NAT
// (double NAT, one shared public address, no hairpinning): the chat works
// through the relay, hole punching is tried, and its outcome is reported
// as it is, in a hole-punch event and in /peers.
func TestLabSharedCGNATReportsPunchOutcome(t *testing.T) {
	lab := netlab.Setup(t, netlab.Config{CGNAT: netlab.CGNATShared, Carrier: netlab.PortPreserving})
	relay, ready := startLabRelay(t, lab)
	addr := relayAddr(t, ready, "/ip4/", "/tcp/")
	listen := []string{"/ip4/0.0.0.0/tcp/4001", "/ip4/0.0.0.0/udp/4001/quic-v1"}
	a1 := joinListening(t, lab.A1, "alice", listen, addr)
	b1 := joinListening(t, lab.B1, "bob", listen, addr)
	a1ID, b1ID := chatThroughRelay(t, relay, a1, b1)

	// One side coordinates each round; either may report it. A failed round
	// takes up to four 10 s dials (a direct dial, then three punches).
	for _, p := range []*proc{a1, b1} {
		p.P.Timeout = 90 * time.Second
	}
	type outcome struct {
		ev proctest.Event // shared with the event log: read only
		by *proc
	}
	punched := make(chan outcome, 2)
	for _, side := range []struct {
		p    *proc
		peer string
	}{{a1, b1ID}, {b1, a1ID}} {
		go func() {
			ev, _, err := side.p.P.Wait(t.Context(), "a hole-punch outcome", proctest.Match("hole-punch", "peer", side.peer))
			if err == nil {
				punched <- outcome{ev, side.p}
			}
		}()
	}
	var o outcome
	select {
	case o = <-punched:
	case <-time.After(90 * time.Second):
		t.Fatalf("no hole-punch event on either side in 90 s\nalice: %v\nbob: %v", a1.Snapshot(), b1.Snapshot())
	}
	ev := o.ev
	t.Logf("%s: hole punching behind the shared carrier NAT: %v", o.by.Name(), ev)
	from, to := a1, b1ID
	if o.by == b1 {
		from, to = b1, a1ID
	}
	e := peerEntry(t, from, to)
	switch ok := ev["ok"] == true; {
	case ok && e["path"] != "hole-punched":
		t.Errorf("hole-punch reported success, yet /peers says %v", e)
	case !ok && e["path"] != "relayed":
		t.Errorf("hole-punch reported failure (%v), yet /peers says %v", ev["error"], e)
	}
	// Whatever the punch did, the chat goes on.
	a1.Send("still here")
	b1.Event("message", "text", "still here", "from", a1ID)
	a1.CloseAndWait()
	b1.CloseAndWait()
}

// ctxNow is a context that has ended: a wait with it only looks at the
// events that came already.
func ctxNow(t *testing.T) context.Context {
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	return ctx
}

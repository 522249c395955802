package netlab_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	manet "github.com/multiformats/go-multiaddr/net"

	"github.com/parley-chat/parley/internal/netlab"
)

// dropWait is how long a packet that should be dropped is waited for. Inside a lab the round trip
// is tens of microseconds, so an answer would arrive long before.
const dropWait = 300 * time.Millisecond

func TestAddressRanges(t *testing.T) {
	pub := netip.MustParsePrefix(netlab.PublicNet)
	for a := pub.Masked().Addr().Next(); pub.Contains(a); a = a.Next() {
		if m, err := manet.FromIP(a.AsSlice()); err != nil || !manet.IsPublicAddr(m) {
			t.Fatalf("manet.IsPublicAddr(%s) = false (err %v), want true for all of PublicNet", a, err)
		}
	}
	for _, lan := range []string{netlab.LANANet, netlab.LANBNet} {
		p := netip.MustParsePrefix(lan)
		if p.Overlaps(pub) {
			t.Errorf("%s overlaps PublicNet %s", lan, pub)
		}
		m, err := manet.FromIP(p.Addr().Next().AsSlice())
		if err != nil || !manet.IsPrivateAddr(m) {
			t.Errorf("manet.IsPrivateAddr(%s) = false (err %v), want true", p.Addr().Next(), err)
		}
	}
}

func TestLabAddresses(t *testing.T) {
	l := netlab.Setup(t, netlab.Config{})
	for _, tc := range []struct {
		h   *netlab.Host
		net string
	}{
		{l.Relay, netlab.PublicNet},
		{l.Relay2, netlab.PublicNet},
		{l.Public, netlab.PublicNet},
		{l.RouterA.Host, netlab.PublicNet},
		{l.RouterB.Host, netlab.PublicNet},
		{l.A1, netlab.LANANet},
		{l.A2, netlab.LANANet},
		{l.B1, netlab.LANBNet},
		{l.B2, netlab.LANBNet},
	} {
		a, _ := netip.AddrFromSlice(tc.h.IP.To4())
		if !netip.MustParsePrefix(tc.net).Contains(a) {
			t.Errorf("%v: address not in %s", tc.h, tc.net)
		}
		// The namespace has the address: Command runs inside it.
		out, err := tc.h.Command(t.Context(), "ip", "-4", "-o", "addr", "show").CombinedOutput()
		if err != nil {
			t.Fatalf("%v: ip addr show: %v: %s", tc.h, err, out)
		}
		if !strings.Contains(string(out), " "+tc.h.IP.String()+"/24 ") {
			t.Errorf("%v: ip addr show: got\n%s\nwant %s/24", tc.h, out, tc.h.IP)
		}
	}
}

func TestReachability(t *testing.T) {
	l := netlab.Setup(t, netlab.Config{})
	// An attacker on the public segment routes LAN A's private range to natA's WAN address.
	if out, err := l.Relay.Command(t.Context(), "ip", "route", "add", netlab.LANANet, "via", l.RouterA.IP.String()).CombinedOutput(); err != nil {
		t.Fatalf("ip route add: %v: %s", err, out)
	}
	for _, tc := range []struct {
		name     string
		from, to *netlab.Host
		toIP     net.IP // where the dial goes, if not to.IP
		seen     net.IP // the source address the listener sees; nil: the dial must fail
		silent   bool   // the failure must be a timeout: the packets were dropped, not refused
	}{
		{name: "a1 reaches the relay through natA", from: l.A1, to: l.Relay, seen: l.RouterA.IP},
		{name: "a2 reaches the relay through natA", from: l.A2, to: l.Relay, seen: l.RouterA.IP},
		{name: "b1 reaches the relay through natB", from: l.B1, to: l.Relay, seen: l.RouterB.IP},
		{name: "b2 reaches the relay through natB", from: l.B2, to: l.Relay, seen: l.RouterB.IP},
		{name: "a1 reaches relay2 through natA", from: l.A1, to: l.Relay2, seen: l.RouterA.IP},
		{name: "the public host reaches the relay", from: l.Public, to: l.Relay, seen: l.Public.IP},
		{name: "relay2 reaches the public host", from: l.Relay2, to: l.Public, seen: l.Relay2.IP},
		{name: "a1 reaches a2 on LAN A", from: l.A1, to: l.A2, seen: l.A1.IP},
		{name: "a2 reaches a1 on LAN A", from: l.A2, to: l.A1, seen: l.A2.IP},
		{name: "b1 reaches b2 on LAN B", from: l.B1, to: l.B2, seen: l.B1.IP},
		{name: "a1 does not reach b1's private address", from: l.A1, to: l.B1},
		{name: "b2 does not reach a2's private address", from: l.B2, to: l.A2},
		{name: "relay's unsolicited packets to a1 are dropped", from: l.Relay, to: l.A1, silent: true},
		{name: "relay's unsolicited packets to natA are dropped", from: l.Relay, to: l.A1, toIP: l.RouterA.IP, silent: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ln, err := tc.to.Listen("tcp4", ":0")
			if err != nil {
				t.Fatal(err)
			}
			defer ln.Close()
			accepted := make(chan net.Addr, 1)
			go func() {
				if c, err := ln.Accept(); err == nil {
					accepted <- c.RemoteAddr()
					c.Close()
				}
			}()

			ip := tc.to.IP
			if tc.toIP != nil {
				ip = tc.toIP
			}
			port := ln.Addr().(*net.TCPAddr).Port
			ctx, cancel := context.WithTimeout(t.Context(), dropWait)
			defer cancel()
			c, err := tc.from.Dial(ctx, "tcp4", net.JoinHostPort(ip.String(), strconv.Itoa(port)))
			if tc.seen == nil {
				if err == nil {
					c.Close()
					t.Fatalf("%v dialed %s:%d: connected, want failure", tc.from, ip, port)
				}
				var ne net.Error
				if tc.silent && !(errors.As(err, &ne) && ne.Timeout()) {
					t.Fatalf("%v dialed %s:%d: got %v, want a timeout (silent drop)", tc.from, ip, port, err)
				}
				return
			}
			if err != nil {
				t.Fatalf("%v dialed %s:%d: %v", tc.from, ip, port, err)
			}
			defer c.Close()
			select {
			case a := <-accepted:
				if got := a.(*net.TCPAddr).IP; !got.Equal(tc.seen) {
					t.Errorf("%v saw the connection from %s, want %s", tc.to, got, tc.seen)
				}
			case <-ctx.Done():
				t.Fatalf("%v accepted nothing", tc.to)
			}
		})
	}
}

// TestNAT checks the mappings of both NAT modes, and that hole punching between LAN A and LAN B works
// when both routers preserve ports and fails when either randomises them. It also exercises
// Config, Router.SetNAT and Lab.FlushConntrack.
func TestNAT(t *testing.T) {
	l := netlab.Setup(t, netlab.Config{NATA: netlab.FullyRandom})
	if got, want := l.RouterA.NAT(), netlab.FullyRandom; got != want {
		t.Fatalf("natA mode %v, want %v", got, want)
	}
	if got, want := l.RouterB.NAT(), netlab.PortPreserving; got != want {
		t.Fatalf("natB mode %v, want %v", got, want)
	}
	checkMapping(t, l.A1, l.RouterA.IP, l.Relay, netlab.FullyRandom)
	checkMapping(t, l.B1, l.RouterB.IP, l.Relay, netlab.PortPreserving)

	for _, tc := range []struct {
		a, b    netlab.NATMode
		punched bool
	}{
		{netlab.PortPreserving, netlab.PortPreserving, true},
		{netlab.FullyRandom, netlab.PortPreserving, false},
		{netlab.PortPreserving, netlab.FullyRandom, false},
	} {
		t.Run(fmt.Sprintf("punch %v to %v", tc.a, tc.b), func(t *testing.T) {
			ctx := t.Context()
			if err := l.RouterA.SetNAT(ctx, tc.a); err != nil {
				t.Fatal(err)
			}
			if err := l.RouterB.SetNAT(ctx, tc.b); err != nil {
				t.Fatal(err)
			}
			if err := l.FlushConntrack(ctx); err != nil {
				t.Fatal(err)
			}
			if got := punch(t, l); got != tc.punched {
				t.Errorf("UDP hole punch a1 <-> b1 worked: %t, want %t", got, tc.punched)
			}
		})
	}
}

// checkMapping sends from several sockets of from to to, and checks the source addresses to sees:
// always the router's public address, with the source port kept for PortPreserving and not always
// kept for FullyRandom.
func checkMapping(t *testing.T, from *netlab.Host, public net.IP, to *netlab.Host, mode netlab.NATMode) {
	t.Helper()
	srv, err := to.ListenPacket("udp4", ":0")
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	dst := &net.UDPAddr{IP: to.IP, Port: srv.LocalAddr().(*net.UDPAddr).Port}
	const n = 8
	sent := make(map[int]bool) // source port → seen unchanged
	for range n {
		c, err := from.ListenPacket("udp4", ":0")
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		if _, err := c.WriteTo([]byte("hi"), dst); err != nil {
			t.Fatalf("%v: %v", from, err)
		}
		sent[c.LocalAddr().(*net.UDPAddr).Port] = false
	}
	srv.SetReadDeadline(time.Now().Add(3 * time.Second)) // generous: a loaded machine is slow to set up conntrack entries
	buf := make([]byte, 16)
	preserved := 0
	for range n {
		_, a, err := srv.ReadFrom(buf)
		if err != nil {
			t.Fatalf("%v: %v", to, err)
		}
		ua := a.(*net.UDPAddr)
		if !ua.IP.Equal(public) {
			t.Errorf("%v: packet from %v, want from %s", to, ua, public)
		}
		if _, ok := sent[ua.Port]; ok {
			preserved++
		}
	}
	switch {
	case mode == netlab.PortPreserving && preserved != n:
		t.Errorf("%v through %v NAT: %d of %d source ports kept, want all", from, mode, preserved, n)
	case mode == netlab.FullyRandom && preserved == n:
		t.Errorf("%v through %v NAT: all %d source ports kept, want random ones", from, mode, n)
	}
}

// punch has a1 and b1 send UDP to each other's router at their own port, as hole punching over a
// port-preserving NAT does, and reports whether both received something.
func punch(t *testing.T, l *netlab.Lab) bool {
	t.Helper()
	a, err := l.A1.ListenPacket("udp4", ":0")
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	b, err := l.B1.ListenPacket("udp4", ":0")
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	// Where each expects the other's mapping, if the routers keep ports.
	toB := &net.UDPAddr{IP: l.RouterB.IP, Port: b.LocalAddr().(*net.UDPAddr).Port}
	toA := &net.UDPAddr{IP: l.RouterA.IP, Port: a.LocalAddr().(*net.UDPAddr).Port}

	// got reports whether c receives a packet before the deadline.
	got := func(c net.PacketConn) bool {
		c.SetReadDeadline(time.Now().Add(dropWait / 3))
		_, _, err := c.ReadFrom(make([]byte, 16))
		return err == nil
	}
	var aGot, bGot bool
	for range 3 {
		if _, err := a.WriteTo([]byte("a"), toB); err != nil {
			t.Fatal(err)
		}
		if _, err := b.WriteTo([]byte("b"), toA); err != nil {
			t.Fatal(err)
		}
		bc := make(chan bool, 1)
		go func() { bc <- bGot || got(b) }()
		aGot = aGot || got(a)
		bGot = <-bc
		if aGot && bGot {
			return true
		}
	}
	return false
}

func TestClose(t *testing.T) {
	l := netlab.Setup(t, netlab.Config{})
	names := l.Namespaces()
	if len(names) != 11 {
		t.Fatalf("Namespaces() = %q, want 11", names)
	}
	if got := listNetns(t); !containsAll(got, names) {
		t.Fatalf("ip netns list = %q, want all of %q", got, names)
	}
	// A process left running in the lab must not keep it alive.
	// It says when it runs inside the namespace: "ip netns exec" enters
	// the namespace after Start returns, and a process not in it yet is
	// not one of the namespace's processes.
	sleeper := l.B2.Command(t.Context(), "sh", "-c", "echo in; exec sleep 60")
	out, err := sleeper.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := sleeper.Start(); err != nil {
		t.Fatal(err)
	}
	if _, err := out.Read(make([]byte, 3)); err != nil {
		t.Fatalf("the process in b2 did not start: %v", err)
	}
	done := make(chan error, 1)
	go func() { done <- sleeper.Wait() }()

	if err := l.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	for _, ns := range listNetns(t) {
		if slices.Contains(names, ns) {
			t.Errorf("after Close, ip netns list still has %s", ns)
		}
	}
	if len(l.Namespaces()) != 0 {
		t.Errorf("after Close, Namespaces() = %q, want none", l.Namespaces())
	}
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Errorf("the process in b2 still runs after Close")
	}
	if err := l.Close(); err != nil {
		t.Errorf("second Close: %v, want nil", err)
	}
}

func listNetns(t *testing.T) []string {
	t.Helper()
	out, err := exec.Command("ip", "netns", "list").CombinedOutput()
	if err != nil {
		t.Fatalf("ip netns list: %v: %s", err, out)
	}
	var names []string
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		if f := strings.Fields(line); len(f) > 0 {
			names = append(names, f[0]) // "name (id: 3)"
		}
	}
	return names
}

func containsAll(have, want []string) bool {
	for _, w := range want {
		if !slices.Contains(have, w) {
			return false
		}
	}
	return true
}

// TestIPv6 checks the dual-stack lab: global IPv6 addresses everywhere, no NAT for IPv6 (the relay
// sees a LAN host's own address), unsolicited inbound IPv6 dropped silently by the routers' stateful
// firewalls, and a UDP hole punch between LAN A and LAN B over IPv6 (simultaneous open).
func TestIPv6(t *testing.T) {
	l := netlab.Setup(t, netlab.Config{IPv6: true})
	for _, tc := range []struct {
		h   *netlab.Host
		net string
	}{
		{l.Relay, netlab.PublicNet6}, {l.Relay2, netlab.PublicNet6}, {l.Public, netlab.PublicNet6},
		{l.RouterA.Host, netlab.PublicNet6}, {l.RouterB.Host, netlab.PublicNet6},
		{l.A1, netlab.LANANet6}, {l.A2, netlab.LANANet6}, {l.B1, netlab.LANBNet6}, {l.B2, netlab.LANBNet6},
	} {
		a, _ := netip.AddrFromSlice(tc.h.IP6)
		if !netip.MustParsePrefix(tc.net).Contains(a) {
			t.Errorf("%v: IPv6 address not in %s", tc.h, tc.net)
		}
		if m, err := manet.FromIP(tc.h.IP6); err != nil || !manet.IsPublicAddr(m) {
			t.Errorf("%v: manet.IsPublicAddr = false (err %v), want true", tc.h, err)
		}
	}
	for _, tc := range []struct {
		name     string
		from, to *netlab.Host
		ok       bool
	}{
		{"a1 reaches the relay, not NATed", l.A1, l.Relay, true},
		{"b2 reaches the public host", l.B2, l.Public, true},
		{"a1 reaches a2 on LAN A", l.A1, l.A2, true},
		{"relay's unsolicited packets to a1 are dropped", l.Relay, l.A1, false},
		{"a1's unsolicited packets to b1 are dropped", l.A1, l.B1, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ln, err := tc.to.Listen("tcp6", "[::]:0")
			if err != nil {
				t.Fatal(err)
			}
			defer ln.Close()
			accepted := make(chan net.Addr, 1)
			go func() {
				if c, err := ln.Accept(); err == nil {
					accepted <- c.RemoteAddr()
					c.Close()
				}
			}()
			addr := net.JoinHostPort(tc.to.IP6.String(), strconv.Itoa(ln.Addr().(*net.TCPAddr).Port))
			ctx, cancel := context.WithTimeout(t.Context(), dropWait)
			defer cancel()
			c, err := tc.from.Dial(ctx, "tcp6", addr)
			if !tc.ok {
				var ne net.Error
				if err == nil {
					c.Close()
					t.Fatalf("%v dialed %s: connected, want a silent drop", tc.from, addr)
				} else if !(errors.As(err, &ne) && ne.Timeout()) {
					t.Fatalf("%v dialed %s: %v, want a timeout (silent drop)", tc.from, addr, err)
				}
				return
			}
			if err != nil {
				t.Fatalf("%v dialed %s: %v", tc.from, addr, err)
			}
			defer c.Close()
			select {
			case a := <-accepted:
				if got := a.(*net.TCPAddr).IP; !got.Equal(tc.from.IP6) {
					t.Errorf("%v saw the connection from %s, want %s (no NAT)", tc.to, got, tc.from.IP6)
				}
			case <-ctx.Done():
				t.Fatalf("%v accepted nothing", tc.to)
			}
		})
	}
	t.Run("UDP hole punch over IPv6", func(t *testing.T) {
		a, err := l.A1.ListenPacket("udp6", "[::]:0")
		if err != nil {
			t.Fatal(err)
		}
		defer a.Close()
		b, err := l.B1.ListenPacket("udp6", "[::]:0")
		if err != nil {
			t.Fatal(err)
		}
		defer b.Close()
		toB := &net.UDPAddr{IP: l.B1.IP6, Port: b.LocalAddr().(*net.UDPAddr).Port}
		toA := &net.UDPAddr{IP: l.A1.IP6, Port: a.LocalAddr().(*net.UDPAddr).Port}
		// b's first packet opens natB's firewall for a, a's opens natA's for b.
		if _, err := b.WriteTo([]byte("b"), toA); err != nil {
			t.Fatal(err)
		}
		for _, c := range []struct {
			from net.PacketConn
			to   *net.UDPAddr
			recv net.PacketConn
		}{{a, toB, b}, {b, toA, a}} {
			if _, err := c.from.WriteTo([]byte("x"), c.to); err != nil {
				t.Fatal(err)
			}
			c.recv.SetReadDeadline(time.Now().Add(time.Second))
			if _, _, err := c.recv.ReadFrom(make([]byte, 16)); err != nil {
				t.Fatalf("after both sent, %v got nothing: %v", c.recv.LocalAddr(), err)
			}
		}
	})
}

// TestUDPBlocked checks that a router with UDP blocked forwards no UDP either way, still forwards
// TCP, and forwards UDP again once unblocked.
func TestUDPBlocked(t *testing.T) {
	l := netlab.Setup(t, netlab.Config{})
	srv, err := l.Relay.ListenPacket("udp4", ":0")
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	dst := &net.UDPAddr{IP: l.Relay.IP, Port: srv.LocalAddr().(*net.UDPAddr).Port}
	udpGetsThrough := func() bool {
		c, err := l.A1.ListenPacket("udp4", ":0")
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		if _, err := c.WriteTo([]byte("x"), dst); err != nil {
			t.Fatal(err)
		}
		srv.SetReadDeadline(time.Now().Add(dropWait))
		_, _, err = srv.ReadFrom(make([]byte, 16))
		return err == nil
	}
	if !udpGetsThrough() {
		t.Fatal("UDP from a1 does not reach the relay before blocking")
	}
	if err := l.RouterA.SetUDPBlocked(t.Context(), true); err != nil {
		t.Fatal(err)
	}
	if !l.RouterA.UDPBlocked() {
		t.Error("UDPBlocked() = false after SetUDPBlocked(true)")
	}
	if udpGetsThrough() {
		t.Error("UDP from a1 reaches the relay through a router that blocks UDP")
	}
	ln, err := l.Relay.Listen("tcp4", ":0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	ctx, cancel := context.WithTimeout(t.Context(), dropWait)
	defer cancel()
	c, err := l.A1.Dial(ctx, "tcp4", net.JoinHostPort(l.Relay.IP.String(), strconv.Itoa(ln.Addr().(*net.TCPAddr).Port)))
	if err != nil {
		t.Fatalf("TCP from a1 through a router that blocks UDP: %v", err)
	}
	c.Close()
	if err := l.RouterA.SetUDPBlocked(t.Context(), false); err != nil {
		t.Fatal(err)
	}
	if !udpGetsThrough() {
		t.Error("UDP from a1 does not reach the relay after unblocking")
	}
}

// TestCGNAT checks the carrier-grade NAT: the relay sees LAN A through it (double NAT), the home
// router's WAN address is in the carrier's shared range, hosts behind the carrier can punch to a
// LAN elsewhere (both NATs keep ports), and two LANs behind the same carrier cannot punch to each
// other, since the carrier does not hairpin.
func TestCGNAT(t *testing.T) {
	for _, tc := range []struct {
		cgnat   netlab.CGNAT
		punched bool
	}{
		{netlab.CGNATForA, true},
		{netlab.CGNATShared, false},
	} {
		t.Run(fmt.Sprint(tc.cgnat), func(t *testing.T) {
			t.Parallel()
			l := netlab.Setup(t, netlab.Config{CGNAT: tc.cgnat})
			if l.Carrier == nil {
				t.Fatal("no carrier router")
			}
			if len(l.Namespaces()) != 13 {
				t.Errorf("%d namespaces, want 13", len(l.Namespaces()))
			}
			if a, _ := netip.AddrFromSlice(l.RouterA.IP.To4()); !netip.MustParsePrefix(netlab.CarrierNet).Contains(a) {
				t.Errorf("natA's WAN address %s is not in %s", l.RouterA.IP, netlab.CarrierNet)
			}
			publicOf := map[*netlab.Host]net.IP{l.A1: l.Carrier.IP, l.B1: l.RouterB.IP}
			if tc.cgnat == netlab.CGNATShared {
				publicOf[l.B1] = l.Carrier.IP
			}
			checkMapping(t, l.A1, publicOf[l.A1], l.Relay, netlab.PortPreserving)
			checkMapping(t, l.B1, publicOf[l.B1], l.Relay, netlab.PortPreserving)
			if got := punchVia(t, l.A1, l.B1, publicOf); got != tc.punched {
				t.Errorf("UDP hole punch a1 <-> b1 worked: %t, want %t", got, tc.punched)
			}
		})
	}
}

// punchVia is punch with the public address of each host given.
func punchVia(t *testing.T, x, y *netlab.Host, publicOf map[*netlab.Host]net.IP) bool {
	t.Helper()
	a, err := x.ListenPacket("udp4", ":0")
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	b, err := y.ListenPacket("udp4", ":0")
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	toB := &net.UDPAddr{IP: publicOf[y], Port: b.LocalAddr().(*net.UDPAddr).Port}
	toA := &net.UDPAddr{IP: publicOf[x], Port: a.LocalAddr().(*net.UDPAddr).Port}
	got := func(c net.PacketConn) bool {
		c.SetReadDeadline(time.Now().Add(dropWait / 3))
		_, _, err := c.ReadFrom(make([]byte, 16))
		return err == nil
	}
	var aGot, bGot bool
	for range 3 {
		a.WriteTo([]byte("a"), toB)
		b.WriteTo([]byte("b"), toA)
		bc := make(chan bool, 1)
		go func() { bc <- bGot || got(b) }()
		aGot = aGot || got(a)
		bGot = <-bc
		if aGot && bGot {
			return true
		}
	}
	return false
}

package netlab

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"time"
)

// The address ranges of every lab. Each lab lives in its own namespaces, so labs share them freely.
const (
	// PublicNet is the public segment: the relay, the routers' WAN sides. It is neither private nor
	// a documentation range, so go-multiaddr's manet.IsPublicAddr holds for its addresses.
	PublicNet = "11.0.0.0/24"
	// LANANet is LAN A, behind router natA.
	LANANet = "192.168.1.0/24"
	// LANBNet is LAN B, behind router natB.
	LANBNet = "192.168.2.0/24"

	// PublicNet6 is the public segment's IPv6 prefix, with Config.IPv6. It is global unicast
	// (2000::/3, outside every special-purpose range), so manet.IsPublicAddr holds for it.
	PublicNet6 = "2a00:10::/64"
	// LANANet6 is LAN A's global IPv6 prefix, routed to natA: no NAT, a stateful firewall.
	LANANet6 = "2a00:11::/64"
	// LANBNet6 is LAN B's global IPv6 prefix, routed to natB.
	LANBNet6 = "2a00:12::/64"

	// CarrierNet is the carrier's network behind its carrier-grade NAT (Config.CGNAT): the WAN
	// sides of the home routers behind it. It is 100.64.0.0/10's first /24, shared address space
	// that go-multiaddr's manet counts as neither public nor private.
	CarrierNet = "100.64.0.0/24"
)

// netnsDir is where "ip netns" keeps the names of namespaces (iproute2's NETNS_RUN_DIR).
const netnsDir = "/run/netns"

// closeTimeout bounds the commands Close runs.
const closeTimeout = 30 * time.Second

// NATMode selects how a router maps inside endpoints to its public address.
type NATMode int

const (
	// PortPreserving keeps the source port where it can (nft "masquerade"): the mapping depends
	// only on the inside endpoint, and hole punching works through it.
	PortPreserving NATMode = iota
	// FullyRandom picks a random public port for every connection (nft "masquerade fully-random"),
	// a symmetric-like NAT that defeats hole punching.
	FullyRandom
)

// String returns the mode's name.
func (m NATMode) String() string {
	switch m {
	case PortPreserving:
		return "port-preserving"
	case FullyRandom:
		return "fully-random"
	default:
		return "NATMode(" + strconv.Itoa(int(m)) + ")"
	}
}

func (m NATMode) valid() bool { return m == PortPreserving || m == FullyRandom }

// Config chooses the NAT mode of each router and whether the lab is dual-stack. The zero Config
// makes both routers port-preserving, IPv4 only.
type Config struct {
	NATA NATMode // the mode of natA, in front of LAN A
	NATB NATMode // the mode of natB, in front of LAN B
	// IPv6 gives every host and router a global IPv6 address as well (PublicNet6, LANANet6,
	// LANBNet6). The routers route IPv6 without NAT and filter it statefully, as home routers do:
	// LAN hosts reach anything, unsolicited packets from outside are dropped.
	IPv6 bool
	// CGNAT puts home routers behind a carrier-grade NAT (Lab.Carrier): natA only, or both
	// (one carrier for both LANs: double NAT, and their public address is the same). IPv4 only:
	// it cannot be combined with IPv6.
	CGNAT CGNAT
	// Carrier is the mode of the carrier-grade NAT.
	Carrier NATMode
}

// CGNAT says which home routers sit behind the carrier-grade NAT.
type CGNAT int

const (
	NoCGNAT     CGNAT = iota // both home routers on the public segment
	CGNATForA                // natA behind the carrier's NAT, natB on the public segment
	CGNATShared              // natA and natB behind the same carrier's NAT
)

func (c CGNAT) valid() bool { return c >= NoCGNAT && c <= CGNATShared }

// String returns the setting's name.
func (c CGNAT) String() string {
	switch c {
	case NoCGNAT:
		return "no-cgnat"
	case CGNATForA:
		return "cgnat-for-A"
	case CGNATShared:
		return "cgnat-shared"
	default:
		return "CGNAT(" + strconv.Itoa(int(c)) + ")"
	}
}

// Host is one machine of a lab: a network namespace and its address.
type Host struct {
	Name string // logical name: relay, relay2, public, a1, a2, b1, b2, natA, natB or cgn
	NS   string // the network namespace's name, as "ip netns list" shows it
	IP   net.IP // the host's address: public for the relay and the routers, private for a1 … b2
	IP6  net.IP // the host's global IPv6 address, with Config.IPv6 (nil without)
}

// String describes the host for logs and test failures, e.g. "a1 (192.168.1.11 in nl42-1f2e-a1)".
func (h *Host) String() string {
	if h.IP6 != nil {
		return fmt.Sprintf("%s (%s, %s in %s)", h.Name, h.IP, h.IP6, h.NS)
	}
	return fmt.Sprintf("%s (%s in %s)", h.Name, h.IP, h.NS)
}

// Command returns a command that runs name with args inside the host's namespace, as
// "ip netns exec NS name args…". ip execs the program, so the command's process is the program's.
func (h *Host) Command(ctx context.Context, name string, args ...string) *exec.Cmd {
	return exec.CommandContext(ctx, "ip", append([]string{"netns", "exec", h.NS, name}, args...)...)
}

// Listen announces on the local network address inside the host's namespace, like net.Listen. The
// address must be an IP literal or have an empty host, as with all of Host's socket methods.
func (h *Host) Listen(network, address string) (net.Listener, error) {
	if err := checkLiteral(address); err != nil {
		return nil, err
	}
	var l net.Listener
	err := h.Do(func() (err error) {
		l, err = net.Listen(network, address)
		return err
	})
	return l, err
}

// ListenPacket announces on the local network address inside the host's namespace, like
// net.ListenPacket.
func (h *Host) ListenPacket(network, address string) (net.PacketConn, error) {
	if err := checkLiteral(address); err != nil {
		return nil, err
	}
	var c net.PacketConn
	err := h.Do(func() (err error) {
		c, err = net.ListenPacket(network, address)
		return err
	})
	return c, err
}

// Dial connects to the address from inside the host's namespace, like net.Dialer.DialContext. For
// more control (a fixed local port, say) use a net.Dialer inside Do.
func (h *Host) Dial(ctx context.Context, network, address string) (net.Conn, error) {
	if err := checkLiteral(address); err != nil {
		return nil, err
	}
	var c net.Conn
	err := h.Do(func() (err error) {
		var d net.Dialer
		c, err = d.DialContext(ctx, network, address)
		return err
	})
	return c, err
}

// checkLiteral rejects addresses with a host name: resolving one would make sockets on other
// threads, outside the namespace.
func checkLiteral(address string) error {
	host, _, err := net.SplitHostPort(address)
	if err != nil {
		return fmt.Errorf("netlab: %w", err)
	}
	if host != "" && net.ParseIP(host) == nil {
		return fmt.Errorf("netlab: address %q: want an IP literal, not a host name", address)
	}
	return nil
}

// Router is a NAT router of a lab. Its Host is the WAN side: IP is the public address that its LAN's
// traffic appears to come from.
type Router struct {
	*Host
	LANIP  net.IP // the router's address on its LAN, the LAN hosts' default gateway
	LANIP6 net.IP // its IPv6 address on the LAN, with Config.IPv6

	run      runner
	mu       sync.Mutex
	mode     NATMode
	blockUDP bool
}

// NAT returns the router's current NAT mode.
func (r *Router) NAT() NATMode {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.mode
}

// SetNAT replaces the router's rules with those of mode, atomically. Existing connections keep the
// mappings they have in connection tracking; FlushConntrack forgets them.
func (r *Router) SetNAT(ctx context.Context, mode NATMode) error {
	if !mode.valid() {
		return fmt.Errorf("netlab: %s: invalid NAT mode %d", r.Name, int(mode))
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, err := r.run(ctx, ruleset(mode, r.blockUDP), "ip", "netns", "exec", r.NS, "nft", "-f", "-"); err != nil {
		return err
	}
	r.mode = mode
	return nil
}

// UDPBlocked reports whether the router drops all UDP it would forward.
func (r *Router) UDPBlocked() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.blockUDP
}

// SetUDPBlocked makes the router drop every UDP packet it would forward, both ways (as networks
// that allow only TCP do), or forward UDP again. It replaces the rules atomically; UDP flows in
// connection tracking are dropped too while blocked.
func (r *Router) SetUDPBlocked(ctx context.Context, blocked bool) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, err := r.run(ctx, ruleset(r.mode, blocked), "ip", "netns", "exec", r.NS, "nft", "-f", "-"); err != nil {
		return err
	}
	r.blockUDP = blocked
	return nil
}

// FlushConntrack empties the router's connection tracking table ("conntrack -F"), dropping every
// NAT mapping and every flow that its filter lets back in.
func (r *Router) FlushConntrack(ctx context.Context) error {
	if _, err := exec.LookPath("conntrack"); err != nil {
		return fmt.Errorf("netlab: %s: flushing conntrack needs the conntrack tool (apt-get install conntrack): %w", r.Name, err)
	}
	_, err := r.run(ctx, "", "ip", "netns", "exec", r.NS, "conntrack", "-F")
	return err
}

// ruleset returns the nft rules of a router in the given mode (see the package documentation).
func ruleset(mode NATMode, blockUDP bool) string {
	masquerade := "masquerade"
	if mode == FullyRandom {
		masquerade = "masquerade fully-random"
	}
	udp := ""
	if blockUDP {
		udp = "\n    meta l4proto udp drop"
	}
	return `flush ruleset
table ip nat {
  chain postrouting {
    type nat hook postrouting priority srcnat; policy accept;
    oifname "wan0" ` + masquerade + `
  }
}
table inet fw {
  chain forward {
    type filter hook forward priority filter; policy drop;` + udp + `
    ct state established,related accept
    iifname "lan0" oifname "wan0" accept
  }
  chain input {
    type filter hook input priority filter; policy accept;
    iifname "wan0" ct state established,related accept
    iifname "wan0" meta l4proto ipv6-icmp accept
    iifname "wan0" drop
  }
}
`
}

// Lab is a running test bed. Its hosts and routers are fixed when New returns; Close removes it.
type Lab struct {
	Relay            *Host   // the public host, 11.0.0.10: the namespace of the public segment itself
	Carrier          *Router // the carrier-grade NAT (11.0.0.30, 100.64.0.1) with Config.CGNAT, else nil
	Relay2           *Host   // a second public host for a second relay, 11.0.0.11
	Public           *Host   // a host on the public segment without NAT or firewall, 11.0.0.12
	RouterA, RouterB *Router // the NAT routers in front of LAN A and LAN B
	A1, A2           *Host   // the hosts of LAN A, 192.168.1.11 and .12
	B1, B2           *Host   // the hosts of LAN B, 192.168.2.11 and .12

	prefix string
	run    runner

	mu   sync.Mutex
	made []string // namespaces created and not yet deleted, in order of creation
}

// Available reports whether labs can be built here: nil on Linux with CAP_SYS_ADMIN and
// CAP_NET_ADMIN and the ip and nft tools, otherwise an error naming everything that is missing.
func Available() error {
	if runtime.GOOS != "linux" {
		return fmt.Errorf("netlab: needs Linux network namespaces, this is %s", runtime.GOOS)
	}
	var missing []string
	if err := checkCaps(); err != nil {
		missing = append(missing, err.Error())
	}
	for _, tool := range []struct{ name, pkg string }{{"ip", "iproute2"}, {"nft", "nftables"}} {
		if _, err := exec.LookPath(tool.name); err != nil {
			missing = append(missing, fmt.Sprintf("%s not found in PATH (apt-get install %s)", tool.name, tool.pkg))
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("netlab: unavailable: %s", strings.Join(missing, "; "))
	}
	return nil
}

// New builds a lab: namespaces, links, addresses, routes and router rules. On failure it removes
// whatever it had made and returns the error. The context bounds the setup only; the lab lives until
// Close.
func New(ctx context.Context, cfg Config) (*Lab, error) {
	return build(ctx, cfg, runCommand)
}

// build is New with the command runner as a seam, so tests can make a step fail.
func build(ctx context.Context, cfg Config, run runner) (_ *Lab, err error) {
	if !cfg.NATA.valid() || !cfg.NATB.valid() || !cfg.Carrier.valid() {
		return nil, fmt.Errorf("netlab: invalid NAT modes %d, %d, %d", int(cfg.NATA), int(cfg.NATB), int(cfg.Carrier))
	}
	if !cfg.CGNAT.valid() {
		return nil, fmt.Errorf("netlab: invalid CGNAT %d", int(cfg.CGNAT))
	}
	if cfg.CGNAT != NoCGNAT && cfg.IPv6 {
		return nil, errors.New("netlab: a lab with a carrier-grade NAT is IPv4 only")
	}
	p := fmt.Sprintf("nl%d-%04x-", os.Getpid(), rand.N(0x10000))
	// v6 returns the address at the given host number in prefix, or nil for an IPv4-only lab.
	v6 := func(prefix string, n int) net.IP {
		if !cfg.IPv6 {
			return nil
		}
		ip := net.ParseIP(strings.TrimSuffix(prefix, "/64"))
		ip[15] = byte(n)
		return ip
	}
	host := func(name string, ip net.IP, ip6 net.IP) *Host {
		return &Host{Name: name, NS: p + name, IP: ip, IP6: ip6}
	}
	router := func(name string, wan, lan net.IP, wan6, lan6 net.IP, mode NATMode) *Router {
		return &Router{Host: host(name, wan, wan6), LANIP: lan, LANIP6: lan6, run: run, mode: mode}
	}
	l := &Lab{
		Relay:   &Host{Name: "relay", NS: p + "pub", IP: net.IPv4(11, 0, 0, 10), IP6: v6(PublicNet6, 0x10)},
		Relay2:  host("relay2", net.IPv4(11, 0, 0, 11), v6(PublicNet6, 0x11)),
		Public:  host("public", net.IPv4(11, 0, 0, 12), v6(PublicNet6, 0x12)),
		RouterA: router("natA", net.IPv4(11, 0, 0, 21), net.IPv4(192, 168, 1, 1), v6(PublicNet6, 0x21), v6(LANANet6, 1), cfg.NATA),
		RouterB: router("natB", net.IPv4(11, 0, 0, 22), net.IPv4(192, 168, 2, 1), v6(PublicNet6, 0x22), v6(LANBNet6, 1), cfg.NATB),
		A1:      host("a1", net.IPv4(192, 168, 1, 11), v6(LANANet6, 0x11)),
		A2:      host("a2", net.IPv4(192, 168, 1, 12), v6(LANANet6, 0x12)),
		B1:      host("b1", net.IPv4(192, 168, 2, 11), v6(LANBNet6, 0x11)),
		B2:      host("b2", net.IPv4(192, 168, 2, 12), v6(LANBNet6, 0x12)),
		prefix:  p,
		run:     run,
	}
	behindCarrier := map[*Router]bool{l.RouterA: cfg.CGNAT != NoCGNAT, l.RouterB: cfg.CGNAT == CGNATShared}
	if cfg.CGNAT != NoCGNAT {
		l.Carrier = router("cgn", net.IPv4(11, 0, 0, 30), net.IPv4(100, 64, 0, 1), nil, nil, cfg.Carrier)
		l.RouterA.IP = net.IPv4(100, 64, 0, 21)
		if behindCarrier[l.RouterB] {
			l.RouterB.IP = net.IPv4(100, 64, 0, 22)
		}
	}
	defer func() {
		if err != nil {
			if cerr := l.Close(); cerr != nil {
				err = errors.Join(err, fmt.Errorf("netlab: cleaning up after the failed setup: %w", cerr))
			}
		}
	}()

	b := &builder{ctx: ctx, run: run, index: 100}
	swA, swB, swC := p+"swA", p+"swB", p+"swC"
	namespaces := []string{l.Relay.NS, l.Relay2.NS, l.Public.NS, l.RouterA.NS, l.RouterB.NS, swA, swB, l.A1.NS, l.A2.NS, l.B1.NS, l.B2.NS}
	if l.Carrier != nil {
		namespaces = append(namespaces, l.Carrier.NS, swC)
	}
	for _, ns := range namespaces {
		if _, err := run(ctx, "", "ip", "netns", "add", ns); err != nil {
			return nil, err
		}
		l.mu.Lock()
		l.made = append(l.made, ns)
		l.mu.Unlock()
		b.ip(ns, "link", "set", "lo", "up")
		if cfg.IPv6 {
			// No duplicate address detection on the interfaces made from now on: link-local
			// addresses would stay tentative for a second or more, and neighbour discovery with
			// them, so that the first packets between LANs went nowhere.
			b.sysctl(&Host{Name: ns, NS: ns}, "ipv6/conf/default/accept_dad", "0")
		}
	}
	b.bridge(l.Relay.NS, l.Relay.IP.String()+"/24")
	b.addr6(l.Relay.NS, "br0", l.Relay.IP6)
	b.publicHost(l.Relay.NS, l.Relay2)
	b.publicHost(l.Relay.NS, l.Public)
	upstream := func(r *Router) (string, net.IP) {
		if behindCarrier[r] {
			return swC, l.Carrier.LANIP
		}
		return l.Relay.NS, nil
	}
	if l.Carrier != nil {
		b.lan(l.Relay.NS, nil, l.Carrier, swC)
	}
	up, gw := upstream(l.RouterA)
	b.lan(up, gw, l.RouterA, swA, l.A1, l.A2)
	up, gw = upstream(l.RouterB)
	b.lan(up, gw, l.RouterB, swB, l.B1, l.B2)
	if cfg.IPv6 {
		// Every machine on the public segment routes each LAN's prefix to its router.
		for _, ns := range []string{l.Relay.NS, l.Relay2.NS, l.Public.NS, l.RouterB.NS} {
			b.ip(ns, "-6", "route", "add", LANANet6, "via", l.RouterA.IP6.String())
		}
		for _, ns := range []string{l.Relay.NS, l.Relay2.NS, l.Public.NS, l.RouterA.NS} {
			b.ip(ns, "-6", "route", "add", LANBNet6, "via", l.RouterB.IP6.String())
		}
	}
	if b.err != nil {
		return nil, b.err
	}
	return l, nil
}

// builder runs the steps of a setup until the first error, which it keeps.
type builder struct {
	ctx   context.Context
	run   runner
	err   error
	index int // the last interface index given to a veth
}

// veth makes a veth pair from inside ns: name in ns, peer in peerNS. Veths are created from inside
// the lab's namespaces, straight into their peers' namespaces, so no interface ever appears in the
// root namespace.
//
// Every veth of a lab gets its own interface index. The kernel treats a carrier change of a device
// whose index equals its peer's (its "iflink") as not urgent and reports it up to a second late, and
// ends of a pair made in fresh namespaces often get the same small index: the device then counts as
// without carrier for that second, and IPv6, which waits for the carrier before it answers neighbour
// solicitations, lost the first packets of every lab.
func (b *builder) veth(ns, name, peerNS, peer string) {
	b.index += 2
	b.ip(ns, "link", "add", name, "index", strconv.Itoa(b.index), "type", "veth",
		"peer", "name", peer, "netns", peerNS, "index", strconv.Itoa(b.index+1))
}

// ip runs "ip -n NS args…".
func (b *builder) ip(ns string, args ...string) {
	if b.err == nil {
		_, b.err = b.run(b.ctx, "", "ip", append([]string{"-n", ns}, args...)...)
	}
}

// bridge makes bridge br0 in ns, with the address cidr if not empty.
func (b *builder) bridge(ns, cidr string) {
	b.ip(ns, "link", "add", "br0", "type", "bridge")
	b.ip(ns, "link", "set", "br0", "up")
	if cidr != "" {
		b.ip(ns, "addr", "add", cidr, "dev", "br0")
	}
}

// addr6 gives dev in ns the IPv6 address ip (a /64) if ip is not nil, without duplicate address
// detection, which would keep it unusable for a second or more.
func (b *builder) addr6(ns, dev string, ip net.IP) {
	if ip != nil {
		b.ip(ns, "-6", "addr", "add", ip.String()+"/64", "dev", dev, "nodad")
	}
}

// sysctl sets a sysctl of the namespace of h (a path under /proc/sys/net) to value.
func (b *builder) sysctl(h *Host, path, value string) {
	if b.err == nil {
		b.err = h.Do(func() error {
			// /proc/sys/net belongs to the network namespace of the thread that opens it.
			return os.WriteFile("/proc/sys/net/"+path, []byte(value+"\n"), 0)
		})
		if b.err != nil {
			b.err = fmt.Errorf("netlab: %s: setting %s: %w", h.Name, path, b.err)
		}
	}
}

// publicHost wires h to the public bridge in pub.
func (b *builder) publicHost(pub string, h *Host) {
	b.veth(pub, h.Name, h.NS, "eth0")
	b.ip(pub, "link", "set", h.Name, "master", "br0", "up")
	b.ip(h.NS, "addr", "add", h.IP.String()+"/24", "dev", "eth0")
	b.addr6(h.NS, "eth0", h.IP6)
	b.ip(h.NS, "link", "set", "eth0", "up")
}

// lan wires a router's WAN side to the bridge in up (the public segment, or the carrier's network,
// then with a default route to gateway), its LAN side to the switch sw, and the hosts to sw.
func (b *builder) lan(up string, gateway net.IP, r *Router, sw string, hosts ...*Host) {
	b.veth(up, r.Name, r.NS, "wan0")
	b.ip(up, "link", "set", r.Name, "master", "br0", "up")
	b.ip(r.NS, "addr", "add", r.IP.String()+"/24", "dev", "wan0")
	b.addr6(r.NS, "wan0", r.IP6)
	b.ip(r.NS, "link", "set", "wan0", "up")
	if gateway != nil {
		b.ip(r.NS, "route", "add", "default", "via", gateway.String())
	}

	b.bridge(sw, "")
	b.veth(sw, "up0", r.NS, "lan0")
	b.ip(sw, "link", "set", "up0", "master", "br0", "up")
	b.ip(r.NS, "addr", "add", r.LANIP.String()+"/24", "dev", "lan0")
	b.addr6(r.NS, "lan0", r.LANIP6)
	b.ip(r.NS, "link", "set", "lan0", "up")
	b.sysctl(r.Host, "ipv4/ip_forward", "1")
	if r.IP6 != nil {
		b.sysctl(r.Host, "ipv6/conf/all/forwarding", "1")
	}
	if b.err == nil {
		_, b.err = b.run(b.ctx, ruleset(r.mode, false), "ip", "netns", "exec", r.NS, "nft", "-f", "-")
	}

	for _, h := range hosts {
		b.veth(sw, h.Name, h.NS, "eth0")
		b.ip(sw, "link", "set", h.Name, "master", "br0", "up")
		b.ip(h.NS, "addr", "add", h.IP.String()+"/24", "dev", "eth0")
		b.addr6(h.NS, "eth0", h.IP6)
		b.ip(h.NS, "link", "set", "eth0", "up")
		b.ip(h.NS, "route", "add", "default", "via", r.LANIP.String())
		if h.IP6 != nil {
			b.ip(h.NS, "-6", "route", "add", "default", "via", r.LANIP6.String())
		}
	}
}

// Namespaces returns the names of the lab's namespaces that exist, in order of creation.
func (l *Lab) Namespaces() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]string(nil), l.made...)
}

// FlushConntrack empties the connection tracking tables of all routers (the carrier's too); see
// Router.FlushConntrack.
func (l *Lab) FlushConntrack(ctx context.Context) error {
	err := errors.Join(l.RouterA.FlushConntrack(ctx), l.RouterB.FlushConntrack(ctx))
	if l.Carrier != nil {
		err = errors.Join(err, l.Carrier.FlushConntrack(ctx))
	}
	return err
}

// Close kills every process still running in one of the lab's namespaces and deletes the namespaces,
// with everything in them. It is idempotent: once it has returned nil, further calls do nothing and
// return nil; after an error, a further call retries what is left.
func (l *Lab) Close() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), closeTimeout)
	defer cancel()

	var errs []error
	var left []string
	for i := len(l.made) - 1; i >= 0; i-- {
		ns := l.made[i]
		if _, err := os.Stat(filepath.Join(netnsDir, ns)); errors.Is(err, os.ErrNotExist) {
			continue // deleted behind our back: nothing left to do
		}
		if err := l.killAll(ctx, ns); err != nil {
			errs = append(errs, err)
		}
		if _, err := l.run(ctx, "", "ip", "netns", "del", ns); err != nil {
			errs = append(errs, err)
			left = append([]string{ns}, left...)
		}
	}
	l.made = left
	return errors.Join(errs...)
}

// killAll sends SIGKILL to every process in ns but this one.
func (l *Lab) killAll(ctx context.Context, ns string) error {
	out, err := l.run(ctx, "", "ip", "netns", "pids", ns)
	if err != nil {
		return err
	}
	var errs []error
	for _, f := range strings.Fields(string(out)) {
		pid, err := strconv.Atoi(f)
		if err != nil || pid == os.Getpid() {
			continue
		}
		if err := kill(pid); err != nil {
			errs = append(errs, fmt.Errorf("netlab: killing process %d in %s: %w", pid, ns, err))
		}
	}
	return errors.Join(errs...)
}

// runner runs a command with stdin (if not empty) and returns its combined output.
type runner func(ctx context.Context, stdin string, name string, args ...string) ([]byte, error)

// runCommand is the real runner. Its errors carry the command line and the command's output.
func runCommand(ctx context.Context, stdin string, name string, args ...string) ([]byte, error) {
	cmd := exec.CommandContext(ctx, name, args...)
	if stdin != "" {
		cmd.Stdin = strings.NewReader(stdin)
	}
	out, err := cmd.CombinedOutput()
	if err != nil {
		return out, commandError(name, args, err, out)
	}
	return out, nil
}

// commandError wraps err with the command line and its trimmed output.
func commandError(name string, args []string, err error, out []byte) error {
	line := quote(name)
	for _, a := range args {
		line += " " + quote(a)
	}
	if o := strings.TrimSpace(string(out)); o != "" {
		return fmt.Errorf("netlab: %s: %w: %s", line, err, o)
	}
	return fmt.Errorf("netlab: %s: %w", line, err)
}

// quote quotes an argument for a readable command line when it needs it.
func quote(s string) string {
	if s == "" || strings.ContainsAny(s, " \t\n'\"\\$") {
		return strconv.Quote(s)
	}
	return s
}

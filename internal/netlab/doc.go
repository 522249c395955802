// Package netlab builds a throw-away test bed of Linux network namespaces: a public segment with a
// relay, and two LANs behind NAT routers, so that NAT traversal (relays, hole punching) can be tested
// end to end with real sockets and real binaries. A lab is created by New (or Setup, in tests) and
// removed by Close; nothing is linked to the host's own (root) namespace, so no packet leaves the lab.
//
// # Topology
//
//	            pub  (bridge br0; the relay is pub itself: 11.0.0.10)
//	           /      relay2 11.0.0.11, public 11.0.0.12      \
//	natA  wan0 11.0.0.21                            natB  wan0 11.0.0.22
//	      lan0 192.168.1.1/24                             lan0 192.168.2.1/24
//	        |  swA (a bridge)                               |  swB (a bridge)
//	a1 192.168.1.11   a2 192.168.1.12               b1 192.168.2.11   b2 192.168.2.12
//	(default route via 192.168.1.1)                 (default route via 192.168.2.1)
//
// The addresses are the same in every lab (see [PublicNet], [LANANet], [LANBNet]); each lab lives in
// its own namespaces, whose names carry a per-lab prefix ("nl<pid>-<random>-", then pub, relay2,
// public, natA, natB, swA, swB, a1, a2, b1, b2), so parallel labs and leftovers of killed runs never
// collide. relay2 (a second relay) and public (a host with a public address and nothing in front of
// it) hang off the public bridge. Interfaces inside the namespaces have fixed short names (br0, wan0,
// lan0, up0, eth0, and the bridge ports relay2, public, natA, natB, a1 … b2). [PublicNet] (11.0.0.0/24) is a range that go-multiaddr's manet classifies as public,
// so libp2p treats the relay and the routers' WAN addresses as public addresses.
//
// There is no Internet: the public segment has no default route, so a dial to any address outside
// the lab fails at once with "network is unreachable".
//
// # Carrier-grade NAT
//
// With [Config].CGNAT a carrier's NAT router [Lab.Carrier] ("cgn", wan0 11.0.0.30 on the public
// segment, lan0 100.64.0.1 on its own switch swC, mode [Config].Carrier) sits between the public
// segment and natA ([CGNATForA]) or both home routers ([CGNATShared]), whose WAN addresses are then
// 100.64.0.21 and .22 in [CarrierNet], with a default route to the carrier. Hosts behind it are
// behind two NATs, and with CGNATShared both LANs share the carrier's public address. Its rules are
// a home router's: it does not hairpin, so a packet from inside to its own public address reaches
// the router itself, never the host that owns the mapping. CGNAT labs are IPv4 only.
//
// # IPv6 (dual stack)
//
// By default IPv6 is left as the kernel sets it up (link-local addresses only) and the routers drop
// forwarded IPv6. With [Config].IPv6 every machine also gets a global address ([Host].IP6), as in
// a dual-stack home: the public segment is [PublicNet6] (2a00:10::/64; relay ::10, relay2 ::11,
// public ::12, natA ::21, natB ::22), LAN A [LANANet6] (2a00:11::/64, natA ::1, a1 ::11, a2 ::12)
// and LAN B [LANBNet6] (2a00:12::/64). The routers forward IPv6 without NAT, so a LAN host's own
// address is what others see, and filter it with the same stateful rules as IPv4 (below):
// unsolicited packets from outside are dropped, and hole punching works by simultaneous open.
// Every machine on the public segment routes each LAN prefix to its router's WAN address.
// Addresses are added without duplicate address detection, and every veth gets an interface index
// of its own, so that IPv6 works from the first packet.
//
// # Routers
//
// Each router masquerades what leaves wan0, in one of two modes chosen per router ([Config],
// [Router.SetNAT]):
//
//   - [PortPreserving] (nft "masquerade"): the source port is kept unless it clashes; the mapping
//     depends only on the inside endpoint, so hole punching works.
//   - [FullyRandom] (nft "masquerade fully-random"): every connection gets a random public port, a
//     symmetric-like NAT through which hole punching fails.
//
// Filtering is strict and silent: forwarding is allowed from lan0 to wan0 and for established or
// related flows only (policy drop), and packets arriving on wan0 for the router itself are dropped
// unless they belong to an established flow (ICMPv6 to the router is accepted: neighbour discovery
// needs it). Unsolicited inbound packets are dropped, never answered with a TCP RST or an ICMP
// error. The rules of one router, as loaded by nft:
//
//	flush ruleset
//	table ip nat {
//	  chain postrouting {
//	    type nat hook postrouting priority srcnat; policy accept;
//	    oifname "wan0" masquerade                     # or: masquerade fully-random
//	  }
//	}
//	table inet fw {
//	  chain forward {
//	    type filter hook forward priority filter; policy drop;
//	    ct state established,related accept
//	    iifname "lan0" oifname "wan0" accept
//	  }
//	  chain input {
//	    type filter hook input priority filter; policy accept;
//	    iifname "wan0" ct state established,related accept
//	    iifname "wan0" meta l4proto ipv6-icmp accept
//	    iifname "wan0" drop
//	  }
//	}
//
// [Router.SetUDPBlocked] adds "meta l4proto udp drop" at the head of the forward chain: the LAN then
// has TCP only, as some corporate and public networks do.
//
// NAT mappings live in the routers' connection tracking tables and outlive the processes that made
// them; [Lab.FlushConntrack] forgets them between runs (it needs the conntrack tool).
//
// # Running things inside
//
// [Host.Command] runs a program in a host's namespace ("ip netns exec NS …"), for end-to-end tests of
// real binaries. [Host.Do], [Host.Listen], [Host.ListenPacket] and [Host.Dial] make sockets in a
// host's namespace from inside the test process itself (a socket stays in the namespace it was created
// in), which is enough to check reachability without ping or netcat.
//
// # Requirements
//
// Linux, CAP_SYS_ADMIN and CAP_NET_ADMIN (root), and the ip (iproute2) and nft (nftables) tools; the
// conntrack tool for FlushConntrack. On Debian:
//
//	apt-get install -y --no-install-recommends iproute2 nftables conntrack
//
// [Available] reports what is missing. [Setup] skips a test when the lab is unavailable, or fails it
// when the environment variable NETLAB_REQUIRE is set (for CI, where a skip would hide a broken
// runner). Setting up a lab takes a few hundred milliseconds, closing it a few tens.
//
// Close deletes the lab's namespaces (their interfaces, bridges and rules go with them) and kills
// any process still running in one of them, so that nothing keeps a deleted namespace alive. A run
// killed before Close (go test -timeout, SIGKILL) leaves its namespaces behind; they do not disturb
// later runs and can be removed with "ip netns del NAME" (they are the names starting with "nl").
package netlab

// Package node runs the libp2p host under every Parley process.
//
// What a Node enables:
//   - identity: an Ed25519 key in <data>/identity.key (0600), created once,
//     never replaced when unreadable (LoadOrCreateIdentity);
//   - transports TCP and QUIC v1 on IPv4 and IPv6, security Noise and TLS,
//     muxer yamux; a resource manager with explicit connection and stream
//     caps and a connection manager (96/192 by default). Relayed
//     connections are exempt from its per-IP limits, which would otherwise
//     count them against the relay's address (rcmgr.go). An eighth of
//     the inbound slots is kept free for newcomers: inbound connections
//     that carry no stream after 2 s and that the connection manager
//     neither values nor protects are closed, oldest first, when fewer
//     are free (admission.go), so peers that connect and sit idle cannot
//     keep honest ones out until the connection manager's grace is over;
//   - discovery: mDNS on the LAN (WithMDNS), bootstrap peers kept connected
//     with backoff and protected from the connection manager, and a dual
//     Kademlia DHT under the protocol prefix "/parley" (never the public
//     IPFS DHT). Its LAN side runs as a server and keeps loopback and
//     private addresses; its WAN side runs in auto mode (server on relays).
//     Discover advertises a rendezvous namespace and keeps looking it up
//     (every 1 s at first, slowing to 30 s), dialing whoever it finds.
//     Bootstrap peers are not given to kad-dht: it would dial them before
//     the host listens, from a port that is useless for hole punching;
//   - NAT traversal: relay client and hole punching (DCUtR) always on;
//     bootstrap peers are static relays. Reachability from evidence: a
//     node with bootstrap peers starts private whatever its interfaces
//     carry, so it reserves a slot on each relay at once, and gives the
//     reservations up only once AutoNAT v2 (served and used by every
//     node) confirms it is reachable directly (reach.go). WithRelayHook
//     reports every change of the reservations. With several bootstrap
//     relays it holds a slot on each, and never dials a peer through a
//     relay it has lost (gater.go), so DMs fail over at once. UPnP only
//     WithUPnP.
//   - hole punching that does not give up: discovery waits (bounded) until
//     DCUtR is ready and a relay address exists; peers still reached only
//     through a relay are redialed through it with backoff so that the
//     other side punches (upgradeRelayed), never while a punch is under
//     way; the side that dialed through a relay also dials the peer's
//     public addresses (IPv6 behind a firewall) at once, so that both dial
//     together (dialDirectAlongside, from the one identify watcher); WithHolePunchHook reports how each
//     round of punching ended.
//     RouteOf says how each peer is reached: the path (lan, direct,
//     hole-punched, relayed) and the address family (ip4, ip6) and
//     transport (tcp, quic) of that connection. See docs/architecture.md.
//   - relay role (WithRelayService, used by package bridge): circuit relay
//     v2 service, AutoNAT v1 and v2 service, reachability forced public,
//     DHT server;
//   - metrics: go-libp2p's Prometheus collectors on the registry given
//     WithMetrics (else Prometheus' global one), hole punching's included.
//
// No public bootstrap list is ever dialed: only peers the user names.
package node

// Package bridge runs Parley's public relay/bridge node (`parley relay`).
//
// A bridge is a node in relay role (see node.WithRelayService): circuit
// relay v2 service with limits set in one place (DefaultResources), the
// DHT in server mode, the AutoNAT service, a persistent identity. It is the
// bootstrap peer and static relay that NATed nodes pass to --bootstrap.
//
// It also carries rooms. GossipSub ignores relayed ("limited") circuit
// connections, so two peers behind NATs that reach each other only through
// a circuit cannot exchange room messages that way. But each one's own
// outbound connection to the bridge is a full connection. The bridge runs
// pubsub with the FloodSub router and, for every room topic that a
// connected peer subscribes to (learned from pubsub's RPC inspector),
// relays the topic: it joins it with the same sequence as a member
// (chat/protocol/room), validates each envelope's header like every Parley
// node (plus an operator's size cap, a per-author and a per-address rate
// limit), and
// forwards it to every subscribed peer. It does not open the body. The
// operator can restrict the rooms (WithRooms) and their number
// (WithMaxRooms, and WithMaxRoomsPerPeer per peer that made it carry one);
// a subscription filter keeps only valid room topics, a bounded number per
// peer. Messages stay signed by their authors; the bridge cannot forge
// them.
//
// It keeps what it carries (WithStore, WithRetention) as the authors
// signed it and serves it over the history protocol to members catching
// up. A public room's body is plain protobuf, so its operator can read the
// stored history; only a room whose body is encrypted would be private
// from the relay.
//
// One goroutine owns the table of carried rooms and is the only one that
// joins, sweeps and closes them; pubsub's RPC inspector only notes room
// names for it, and readers see an immutable snapshot. No lock is ever
// held while calling into pubsub, whose event loop runs the inspector.
//
// DMs between NATed peers go over the relayed circuit until DCUtR hole
// punching makes a direct connection; they never pass through pubsub.
package bridge

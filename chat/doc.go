// Package chat is Parley's messaging layer on a libp2p host: rooms over
// GossipSub, direct messages over their own stream protocol, history
// catch-up, nicks and presence, and an event bus that any number of front
// ends subscribe to.
//
// chat composes one small package per wire protocol, each with its own
// documentation of the wire:
//
//	chat/protocol/room     topic names, the signed envelope (header + body), its validator
//	chat/protocol/dm       /parley/dm/1.0.0: frames, a thin handler, the outbound stream
//	chat/protocol/history  /parley/history/1.0.0: server, fetch, verification of history
//	chat/protocol/roster   /parley/roster/1.0.0: who is in a room, as members' signed presences
//	chat/content           what a nick, a text, an ID and a send time may be
//	chat/storage           what is kept between runs, as an interface (internal/store is SQLite)
//
// # Events
//
// Subscribe returns a Subscription with its own bounded queue. Publishing
// never blocks: a subscriber that falls behind is closed with
// ErrFellBehind, and may resubscribe After its last Stamped.Seq to get
// what it missed from a replay buffer of recent events (or ErrGap when
// those are gone too). So a frozen browser tab or a paused pipe never
// slows the node, its acks or the other front ends.
//
// # Rooms
//
// Joining a room joins its topic with the room validator, announces this
// node's nick to the room (a presence envelope, once; again on SetNick,
// and on first meeting a member if the first reached no one) so /dm NICK
// works before a peer said anything. Members who join later learn who is
// here from the members they meet (the roster protocol: each member keeps
// every member's newest presence as signed and serves what reached it
// since the asker last asked, less what the asker gave it; after news,
// rounds ask the neighbours that have not fetched it all, then slow down
// and rest), never from room-wide replies. It
// replays the
// newest stored messages as backfill and catches up over the history
// protocol: in the first 30 s from the first few members it meets and
// every relay, later from members that come back after losing touch, and
// from an author whose line was lost on the way (a gap the sequencer saw).
// Send publishes to every known member (flood
// publishing) and returns once the message is back and stored, which paces
// a burst to what the node can carry; Post returns at once and publishes
// in the background, in order, up to 64 messages ahead of the last one
// stored (ErrBusy past its queue). Own messages come back as Message
// events like everyone else's. Live messages are stored in batches, one
// transaction for what arrived meanwhile, before they are shown. The store
// is the one place duplicates are recognised: live, backfilled and
// replayed copies are shown once.
//
// # Direct messages
//
// SendDM writes the DM to the outbox on disk and returns its ID. The
// outbox delivers each peer's DMs in order over one reused stream, up to
// dm.Window of them before their acks, when sent (SendDM writes straight
// to an open stream), when the peer connects, and on a backoff schedule (5 s, 15 s, 45 s
// … up to an hour, for OutboxExpiry), also after a restart: Delivered
// follows the receiver's ack, Queued says it waits. It keeps state only for
// peers with pending DMs or an open DM stream.
//
// # Limits
//
// What other peers can make a node do is bounded per peer or per author
// (Limits, WithLimits, DefaultLimits): room messages per author (the room
// validator ignores the excess; own messages are paced under it), history
// a peer may bring in catch-ups and requests it may make, DMs accepted per
// peer and stored per peer (a refused DM is not acked, so it stays queued
// at its sender), the outbox per recipient. GossipSub peer scoring
// (PeerScoreParams) graylists a peer that floods or sends malformed
// messages. The state behind every limit is bounded (internal/ratelimit).
//
// # State
//
// Each concern has one owner with a small lock of its own, never held
// while calling into pubsub or the network: the room table, the nick book,
// the outbox, the event bus; the connection-path map belongs to its
// goroutine.
//
// # Observing
//
// WithHooks installs optional observers (internal/metrics uses them): a
// pubsub raw tracer beside chat's own, a HistoryRequested call per
// history request sent and a CaughtUp call after each catch-up. EventLag reports the event stream's readers' backlog. Hooks
// are called from the goroutine doing the work and must not block.
package chat

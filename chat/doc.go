// Package chat is Parley's messaging layer on a libp2p host: rooms over
// GossipSub, direct messages over their own stream protocol, and one typed
// event stream (Events) that every front end renders.
//
// # Rooms
//
// Room NAME is the GossipSub topic "parley/room/NAME"; members find each
// other under the DHT rendezvous namespace "parley/rendezvous/room/NAME".
// Messages are signed by their author (strict signing), so Message.From is
// authenticated; the nick inside is display only. Each message carries a
// protobuf Envelope (package pb): kind (message or presence), 32-hex-digit
// id, room, nick, text, sent-at (Unix ms) and a per-room Lamport counter.
// A validator rejects (not ignores) anything that is not a valid envelope
// for the topic's room: more than MaxEnvelopeBytes, text over MaxTextBytes
// (4096) or with control characters other than tab and newline, a nick
// over 32 bytes, a sent-at more than 5 minutes ahead or 24 hours behind.
// Own messages are published to every known member (flood publishing), so
// a member that joined a moment ago gets them before the mesh includes it,
// and come back as Message events like everyone else's.
//
// Presence envelopes announce a member's nick when it joins a room, when
// another member joins, and on SetNick, so /dm NICK works before a peer has
// said anything.
//
// # Direct messages
//
// Protocol /parley/dm/1.0.0. Frames are unsigned-varint length-prefixed
// protobuf DMFrame messages of at most MaxDMFrameBytes:
//
//	opener → DMFrame{message: DirectMessage{id, nick, text, sent_at_ms}}
//	other  → DMFrame{ack: DMAck{id}}
//	... repeated on the same stream while both keep it open
//
// The opener sends one message at a time and waits for its ack; the stream
// is reused for the next message to the same peer. The receiver resets the
// stream on anything else: a bad length prefix, an oversized frame,
// invalid protobuf, an ack where a message belongs, an invalid message, or
// silence longer than the idle timeout. Duplicates (a resend after a lost
// ack) are acked and shown once. DMs may use a relayed connection.
package chat

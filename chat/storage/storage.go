// Package storage declares what Parley keeps between runs — room history
// with each author's signed message, the DM inbox and the DM outbox — as
// record types and the Store interface that chat and bridge need.
// Parley's own implementation is SQLite (internal/store); a program that
// embeds chat may bring another.
package storage

import (
	"errors"
	"time"
)

// ErrNotFound means a message asked for is not stored.
var ErrNotFound = errors.New("not stored")

// RoomMessage is one stored room message.
type RoomMessage struct {
	ID      string
	Room    string
	Author  string // peer ID
	Nick    string
	Text    string
	SentAt  int64 // Unix ms, from the author
	Lamport uint64
	Raw     []byte // the signed GossipSub message, as served to others
}

// Cursor is a position in a room's history order (sent-at, Lamport, ID):
// the one order of a room's history on every node.
type Cursor struct {
	SentAt  int64
	Lamport uint64
	ID      string
}

// Cursor returns the position of m.
func (m RoomMessage) Cursor() Cursor { return Cursor{m.SentAt, m.Lamport, m.ID} }

// Retention bounds a room's history.
type Retention struct {
	MaxMessages int           // newest kept; 0 keeps all
	MaxAge      time.Duration // by sent-at; 0 keeps all
}

// DM is a direct message in the inbox or the outbox.
type DM struct {
	ID       string
	Peer     string // sender (inbox) or recipient (outbox)
	Nick     string // the sender's nick
	Text     string
	SentAt   int64 // Unix ms
	Attempts int
	Next     time.Time // outbox: next delivery attempt
}

// ConversationDM is one DM of a conversation, received or sent.
type ConversationDM struct {
	DM
	Own   bool   // sent by this node
	State string // received, sending, queued, delivered or failed
}

// Conversation is the DMs with one peer.
type Conversation struct {
	Peer   string
	Last   ConversationDM
	Unread int // received after the read marker
}

// KnownPeer is a peer known by nick: what it last announced (in a room
// message, a presence or a DM) and when it was last seen.
type KnownPeer struct {
	ID       string // peer ID
	Nick     string // "" when it announced none (or one that breaks the rules)
	LastSeen time.Time
}

// PrivateRoom is a private room's current key: its display name, secret
// (key material: never log it), key epoch and creator's peer ID.
type PrivateRoom struct {
	Name    string
	Secret  []byte
	Epoch   uint64
	Creator string
	// Previous are the wire names of the room's earlier epochs, newest
	// first: its history before a rekey is stored under them.
	Previous []string
}

// History is what serving and storing room history needs; a bridge needs
// only this.
type History interface {
	// AddRoomMessages stores msgs in one transaction and reports which
	// were new (the one place duplicates are recognised).
	AddRoomMessages(msgs []RoomMessage) (added []bool, err error)
	// RoomMessagesAfter returns up to limit messages of room after cursor.
	RoomMessagesAfter(room string, after Cursor, limit int) ([]RoomMessage, error)
	// Prune applies a retention bound to room.
	Prune(room string, r Retention) (int64, error)
	// CountRoomMessages counts room's stored messages.
	CountRoomMessages(room string) (int, error)
}

// Store is everything chat keeps.
type Store interface {
	History
	// RecentRoomMessages returns room's newest limit messages, oldest first.
	RecentRoomMessages(room string, limit int) ([]RoomMessage, error)
	// RoomMessagesBefore pages back from the message with ID before.
	RoomMessagesBefore(room, before string, limit int) ([]RoomMessage, error)
	// StoredRoomMessages returns the positions of those of ids stored in
	// room.
	StoredRoomMessages(room string, ids []string) (map[string]Cursor, error)
	// LatestRoomMessage returns the position of room's newest message.
	LatestRoomMessage(room string) (Cursor, bool, error)

	// AddReceivedDM stores a received DM, reporting whether it was new.
	AddReceivedDM(m DM) (bool, error)
	// AddReceivedDMs stores DMs that arrived together in one transaction
	// (all or none), reporting which were new.
	AddReceivedDMs(ms []DM) ([]bool, error)
	// InboxBytes is the size of the DMs stored from sender (text and nick).
	InboxBytes(sender string) (int64, error)
	// CountPendingDMs counts the undelivered DMs to recipient.
	CountPendingDMs(recipient string) (int, error)
	// QueueDM puts a DM in the outbox, due at once; it must be durable
	// when QueueDM returns.
	QueueDM(m DM) error
	// PendingDMs lists undelivered DMs to recipient ("" for all), oldest first.
	PendingDMs(recipient string) ([]DM, error)
	MarkDelivered(id string) error
	// MarkDMsDelivered marks several DMs delivered in one transaction.
	MarkDMsDelivered(ids []string) error
	Reschedule(id string, attempts int, next time.Time) error
	GiveUp(id, reason string) error

	// Conversations lists DM conversations, newest first.
	Conversations() ([]Conversation, error)
	// DMsWith returns the newest limit DMs with peer older than the DM
	// before ("" for the newest), oldest first; ErrNotFound when before
	// is not one of them.
	DMsWith(peer, before string, limit int) ([]ConversationDM, error)
	// MarkRead moves a conversation's read marker ("room:NAME", "dm:PEER").
	MarkRead(conversation string, at time.Time) error
	// UnreadRoom counts room's messages by others after its read marker.
	UnreadRoom(room, self string) (int, error)

	// AuthorLamport returns the highest Lamport of author's messages in
	// room that is below below, and false when there is none.
	AuthorLamport(room, author string, below uint64) (uint64, bool, error)

	// SavePeers records peers' nicks and when they were seen, in one
	// transaction; an older sighting than the stored one changes nothing.
	SavePeers(ps ...KnownPeer) error
	// KnownPeers lists the peers seen at or after since, newest first.
	KnownPeers(since time.Time) ([]KnownPeer, error)

	// SavePrivateRoom records a private room's current key.
	SavePrivateRoom(r PrivateRoom) error
	// PrivateRoom returns the private room named name, false if none.
	PrivateRoom(name string) (PrivateRoom, bool, error)
	// PrivateRooms lists the private rooms' names.
	PrivateRooms() ([]string, error)
	// DeletePrivateRoom forgets a private room's key.
	DeletePrivateRoom(name string) error
}

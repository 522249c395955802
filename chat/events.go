package chat

import (
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/parley-chat/parley/node"
)

// Event is one thing a front end shows. The concrete types are Message,
// DirectMessage, Queued, Delivered, PeerJoined, PeerLeft, NickChanged,
// HistoryShown, Received, Connection, RelayReservation, HolePunch, Notice
// and Error.
type Event interface{ isEvent() }

// Message is a chat line in a room, including this node's own lines.
type Message struct {
	Room    string
	ID      string
	From    peer.ID // authenticated by the message signature
	Nick    string  // chosen by the sender; display only
	Text    string
	SentAt  time.Time
	Lamport uint64
	// Backfill marks history: replayed from the store at join, or missed
	// while offline and fetched from another member. Such messages sort by
	// (SentAt, Lamport, ID), not by arrival.
	Backfill bool
	// Unreceived marks this node's own message sent while no one (no
	// member, no relay) was in the room: a Received event follows when it
	// reaches someone.
	Unreceived bool
}

// DirectMessage is a message received over the DM protocol.
type DirectMessage struct {
	ID     string
	From   peer.ID // authenticated by the secure channel
	Nick   string
	Text   string
	SentAt time.Time
}

// Delivered reports that the receiver acknowledged DM ID.
type Delivered struct {
	ID   string
	To   peer.ID
	Nick string // the receiver's nick, when known
}

// PeerJoined reports a peer subscribing to a room this node is in. A
// relay (Role RoleRelay) joins the rooms it carries: it is not a person
// in the room, and front ends say it carries the room.
type PeerJoined struct {
	Room string
	Peer peer.ID
	Nick string // empty when not yet known
	Role string // RoleRelay or RolePerson
}

// PeerLeft reports a peer leaving a room (or disconnecting); a relay that
// leaves stopped carrying the room.
type PeerLeft struct {
	Room string
	Peer peer.ID
	Nick string
	Role string
}

// HistoryShown follows the history shown for a room: the stored messages
// replayed at join (then what follows is new since this node left), or
// what a catch-up brought (CaughtUp). Shown is how many were shown,
// Hidden how many more are stored but were not shown (WithHistory bounds
// both), readable with Service.History.
type HistoryShown struct {
	Room     string
	Shown    int
	Hidden   int
	CaughtUp bool
}

// NickChanged reports that a member of Room now uses another nick: one
// event per room this node shares with it, so each room can show it.
// Self marks this node's own change (SetNick).
type NickChanged struct {
	Room string
	Peer peer.ID
	Old  string // "" when it had none (or one that broke the rules)
	New  string
	Self bool
}

// Path values of a Connection event: node's names, so that a classifier
// such as node.Node.PathOf and the front ends agree.
const (
	PathLAN         = node.PathLAN
	PathDirect      = node.PathDirect
	PathHolePunched = node.PathHolePunched
	PathRelayed     = node.PathRelayed
)

// Address families and transports of a Connection or PeerInfo.
const (
	FamilyIP4     = node.FamilyIP4
	FamilyIP6     = node.FamilyIP6
	TransportTCP  = node.TransportTCP
	TransportQUIC = node.TransportQUIC
)

// Connection reports how a peer is reached, whenever that is first known
// or changes.
type Connection struct {
	Peer  peer.ID
	Path  string  // one of the Path constants
	Relay peer.ID // the relay, when Path is PathRelayed and it is known
	// Family (FamilyIP4 or FamilyIP6) and Transport (TransportTCP,
	// TransportQUIC, …) of that connection; for a relayed one, of the hop
	// to the relay. A change of either is a new event too.
	Family    string
	Transport string
	Role      string // RoleRelay for a relay, RolePerson ("") for anyone else
}

// RelayReservation reports that this node can be reached through a relay
// at Addrs (circuit addresses). The program embedding chat sends it with
// Notify, since chat does not manage relays.
type RelayReservation struct {
	Addrs []string
}

// HolePunch reports how a round of hole punching (DCUtR: both sides dial
// each other at once through their NATs or firewalls, coordinated over a
// relayed connection) with Peer ended: a direct connection (OK, with its
// Family and Transport), or none after Attempts tries (Err says why the
// last one failed), in which case traffic stays on the relay and the node
// tries again later. The program embedding chat sends it with Notify.
type HolePunch struct {
	Peer      peer.ID
	OK        bool
	Attempts  int
	Elapsed   time.Duration // the last try's dial
	Family    string        // of the direct connection, when OK
	Transport string        // of the direct connection, when OK
	Err       string        // when not OK
}

// Error is a failure the user should see, e.g. a DM that could not be
// delivered. ID names the message it concerns, if any.
type Error struct {
	ID  string
	Err error
}

// Notice is a plain message for the user from the node or the program
// embedding it (e.g. what stays queued at exit).
type Notice struct {
	Text string
}

func (Notice) isEvent()           {}
func (NickChanged) isEvent()      {}
func (HistoryShown) isEvent()     {}
func (Message) isEvent()          {}
func (DirectMessage) isEvent()    {}
func (Delivered) isEvent()        {}
func (PeerJoined) isEvent()       {}
func (PeerLeft) isEvent()         {}
func (Connection) isEvent()       {}
func (Error) isEvent()            {}
func (RelayReservation) isEvent() {}
func (HolePunch) isEvent()        {}

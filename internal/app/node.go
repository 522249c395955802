package app

import (
	"errors"
	"fmt"
	"io"
	"slices"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/parley-chat/parley/chat"
)

// Option configures an App.
type Option func(*App)

// WithAddrs tells the App how to list the node's addresses (full
// multiaddrs with /p2p/ID) for Info.
func WithAddrs(f func() []string) Option { return func(a *App) { a.addrs = f } }

// WithExport tells the App how to write this node's identity and history
// as one file a person can take to another machine (see Export).
func WithExport(f func(w io.Writer) error) Option { return func(a *App) { a.export = f } }

// ErrNoExport means this node cannot export its data.
var ErrNoExport = errors.New("this node cannot export its data")

// Export writes the node's identity and history (a .tar.gz) to w.
func (a *App) Export(w io.Writer) error {
	if a.export == nil {
		return ErrNoExport
	}
	return a.export(w)
}

// NodeInfo describes this node for a front end's "you" panel.
type NodeInfo struct {
	Peer       peer.ID
	Nick       string
	Addrs      []string
	Rooms      []string
	RelayAddrs []string // a relay reservation's circuit addresses; empty when none
	Connected  int      // peers connected now
	Seq        uint64   // newest event: subscribe After it to miss nothing
}

// Info describes this node now.
func (a *App) Info() NodeInfo {
	a.mu.Lock()
	relay := slices.Clone(a.relay)
	a.mu.Unlock()
	var addrs []string
	if a.addrs != nil {
		addrs = a.addrs()
	}
	return NodeInfo{
		Peer: a.svc.ID(), Nick: a.svc.Nick(), Addrs: addrs, Rooms: a.svc.Rooms(),
		RelayAddrs: relay, Connected: a.svc.Connected(), Seq: a.svc.LastSeq(),
	}
}

// watch keeps what front ends ask for and only events tell: the relay
// reservation. It ends when the service closes.
func (a *App) watch(sub *chat.Subscription) {
	defer close(a.watched)
	var last uint64
	for {
		for st := range sub.C() {
			last = st.Seq
			if r, ok := st.Event.(chat.RelayReservation); ok {
				a.mu.Lock()
				a.relay = slices.Clone(r.Addrs)
				a.mu.Unlock()
			}
		}
		if !errors.Is(sub.Err(), chat.ErrFellBehind) {
			return
		}
		next, err := a.svc.Subscribe(chat.After(last))
		if err != nil {
			next, err = a.svc.Subscribe()
		}
		if err != nil {
			return
		}
		sub = next
	}
}

// RoomState is a joined room with its unread count.
type RoomState struct {
	Room   string
	Unread int
}

// RoomStates lists the joined rooms with unread counts.
func (a *App) RoomStates() ([]RoomState, error) {
	rooms := a.svc.Rooms()
	out := make([]RoomState, 0, len(rooms))
	for _, r := range rooms {
		n, err := a.svc.Unread(r)
		if err != nil {
			return nil, err
		}
		out = append(out, RoomState{Room: r, Unread: n})
	}
	return out, nil
}

// Post sends text to room without waiting (see chat.Service.Post).
func (a *App) Post(room, text string) (string, error) { return a.svc.Post(room, text) }

// SendDM queues text for who (peer ID or nick).
func (a *App) SendDM(who, text string) (string, peer.ID, error) {
	p, err := a.svc.ResolvePeer(who)
	if err != nil {
		return "", "", fmt.Errorf("dm: %w", err)
	}
	id, err := a.svc.SendDM(p.String(), text)
	return id, p, err
}

// Resolve turns a peer ID or a nick into a peer ID.
func (a *App) Resolve(who string) (peer.ID, error) { return a.svc.ResolvePeer(who) }

// Join joins room.
func (a *App) Join(room string) error { return a.svc.Join(room) }

// CreatePrivate creates private room room and joins it (see chat.Service.CreatePrivate).
func (a *App) CreatePrivate(room string) (chat.PrivateRoom, error) { return a.svc.CreatePrivate(room) }

// Leave leaves room.
func (a *App) Leave(room string) error { return a.svc.Leave(room) }

// SetNick changes the nick.
func (a *App) SetNick(nick string) error { return a.svc.SetNick(nick) }

// Peers lists peers (see chat.Service.Peers).
func (a *App) Peers() []chat.PeerInfo { return a.svc.Peers() }

// Outbox lists the DMs not delivered yet.
func (a *App) Outbox() ([]chat.PendingDM, error) { return a.svc.Outbox() }

// Conversations lists DM conversations, newest first.
func (a *App) Conversations() ([]chat.Conversation, error) { return a.svc.Conversations() }

// DMsWith returns the newest limit DMs with p, oldest first.
func (a *App) DMsWith(p peer.ID, before string, limit int) ([]chat.DMEntry, error) {
	return a.svc.DMsWith(p, before, limit)
}

// MarkRoomRead marks room read up to now.
func (a *App) MarkRoomRead(room string) error { return a.svc.MarkRoomRead(room) }

// MarkDMsRead marks the conversation with p read up to now.
func (a *App) MarkDMsRead(p peer.ID) error { return a.svc.MarkDMsRead(p) }

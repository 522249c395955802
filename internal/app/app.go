// Package app is the layer every Parley front end (line mode, JSON, the
// web API, a full-screen terminal) is a thin adapter over: typed commands
// with typed results, queries over what the node keeps, and the session's
// lifetime. Front ends parse input into a Command, call Session.Execute,
// and render the Result and the events of their own Subscribe; none of
// them touches libp2p or the store.
//
// The program owns the chat service and the App: it lends them to front
// ends, waits for Quitting (a front end's /quit, end of input, a signal),
// then calls Shutdown, which lets pending DMs go out, says what is still
// queued, and closes the service; every front end's subscription then
// ends after the last event.
package app

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/parley-chat/parley/chat"
	"github.com/parley-chat/parley/chat/invite"
)

// DrainTimeout bounds how long Shutdown waits for DMs being delivered.
const DrainTimeout = 15 * time.Second

// App is one running node's chat, shared by its front ends.
type App struct {
	svc     *chat.Service
	addrs   func() []string
	export  func(io.Writer) error
	routes  func(context.Context, peer.ID) Route
	relays  func() []string
	connect func(context.Context, []string) error

	quitOnce sync.Once
	quit     chan struct{}
	watched  chan struct{} // closed when watch ends

	mu    sync.Mutex
	relay []string
}

// New wraps a running chat service.
func New(svc *chat.Service, opts ...Option) *App {
	a := &App{svc: svc, quit: make(chan struct{}), watched: make(chan struct{})}
	for _, o := range opts {
		o(a)
	}
	sub, err := svc.Subscribe(chat.After(0))
	if err != nil {
		sub, err = svc.Subscribe()
	}
	if err == nil {
		go a.watch(sub)
	} else {
		close(a.watched)
	}
	return a
}

// ID is this node's peer ID.
func (a *App) ID() peer.ID { return a.svc.ID() }

// Nick is this node's nick.
func (a *App) Nick() string { return a.svc.Nick() }

// Rooms lists the joined rooms, sorted.
func (a *App) Rooms() []string { return a.svc.Rooms() }

// Subscribe starts a new reader of the node's events (see chat.Subscribe).
func (a *App) Subscribe(opts ...chat.SubscribeOption) (*chat.Subscription, error) {
	return a.svc.Subscribe(opts...)
}

// Quit asks the program to end; any front end may call it.
func (a *App) Quit() { a.quitOnce.Do(func() { close(a.quit) }) }

// Quitting is closed once a front end asked to end.
func (a *App) Quitting() <-chan struct{} { return a.quit }

// Shutdown waits (at most DrainTimeout, or until ctx ends) for DMs being
// delivered, tells the front ends what stays queued, and closes the chat
// service, which ends every subscription once its last event is read.
func (a *App) Shutdown(ctx context.Context) error {
	a.Quit()
	ctx, cancel := context.WithTimeout(ctx, DrainTimeout)
	err := a.svc.Drain(ctx)
	cancel()
	if err != nil {
		a.svc.Notify(chat.Error{Err: errors.New("some DMs were still being delivered when Parley stopped; they stay queued")})
	}
	if pending, err := a.svc.Outbox(); err == nil && len(pending) > 0 {
		text := fmt.Sprintf("%d DMs not delivered yet stay queued; they go out when you run parley again and their peers are reachable", len(pending))
		if len(pending) == 1 {
			text = "1 DM not delivered yet stays queued; it goes out when you run parley again and the peer is reachable"
		}
		a.svc.Notify(chat.Notice{Text: text})
	}
	err = a.svc.Close()
	<-a.watched
	return err
}

// History returns up to limit stored messages of room that come before
// the message with ID before ("" for the newest), oldest first.
func (a *App) History(room, before string, limit int) ([]chat.Message, error) {
	return a.svc.History(room, before, limit)
}

// Session is one front end's view: which room is current. A web page, a
// terminal and a script each have their own.
type Session struct {
	a *App

	mu      sync.Mutex
	current string
}

// NewSession starts a front end's session with current as its room.
func (a *App) NewSession(current string) *Session {
	return &Session{a: a, current: current}
}

// Current is the room plain text goes to.
func (s *Session) Current() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.current
}

func (s *Session) setCurrent(room string) {
	s.mu.Lock()
	s.current = room
	s.mu.Unlock()
}

// Result is what a command returns to the front end that ran it; the
// concrete types are Sent, RoomList, PeerList, OutboxList, Info, Route
// and Quitting.
type Result interface{ isResult() }

// Sent reports a message accepted: a room message stored (it also comes
// back as an event), or a DM queued for delivery.
type Sent struct {
	ID   string
	Room string  // for a room message
	To   peer.ID // for a DM
	// IDs are the messages sent when the text was longer than one message
	// holds and was split (ID is the first); nil for one message.
	IDs []string
}

// RoomList is the joined rooms and the current one; it answers join,
// leave and room.
type RoomList struct {
	Current string
	Rooms   []string
}

// PeerList answers peers.
type PeerList struct {
	Self  peer.ID
	Peers []chat.PeerInfo
}

// OutboxList answers outbox.
type OutboxList struct{ Pending []chat.PendingDM }

// Info is a plain message for the user (help, a nick change).
type Info struct{ Text string }

// Quitting answers quit: the program is ending.
type Quitting struct{}

func (Sent) isResult()       {}
func (RoomList) isResult()   {}
func (PeerList) isResult()   {}
func (OutboxList) isResult() {}
func (Info) isResult()       {}
func (Quitting) isResult()   {}

// ErrNoRoom means a command needs a room and the session has none.
var ErrNoRoom = errors.New("not in a room: /join ROOM first")

// Execute runs cmd for this session.
func (s *Session) Execute(ctx context.Context, cmd Command) (Result, error) {
	svc := s.a.svc
	switch cmd.Kind {
	case Say:
		room := cmd.Room
		if room == "" {
			room = s.Current()
		}
		if room == "" {
			return nil, ErrNoRoom
		}
		parts, err := splitForSending(cmd.Text)
		if err != nil {
			return nil, err
		}
		var ids []string
		for _, text := range parts {
			id, err := svc.Send(ctx, room, text)
			if err != nil {
				return nil, sentSome(ids, len(parts), err)
			}
			ids = append(ids, id)
		}
		return sent(ids, room, ""), nil
	case DM:
		to, err := svc.ResolvePeer(cmd.To)
		if err != nil {
			return nil, fmt.Errorf("dm: %w", err)
		}
		parts, err := splitForSending(cmd.Text)
		if err != nil {
			return nil, fmt.Errorf("dm: %w", err)
		}
		var ids []string
		for _, text := range parts {
			id, err := svc.SendDM(to.String(), text)
			if err != nil {
				return nil, sentSome(ids, len(parts), err)
			}
			ids = append(ids, id)
		}
		return sent(ids, "", to), nil
	case Join:
		if invite.IsLink(cmd.Room) {
			room, err := s.a.JoinLink(ctx, cmd.Room)
			if err != nil {
				return nil, err
			}
			s.setCurrent(room)
			return s.roomList(), nil
		}
		if err := svc.Join(cmd.Room); err != nil {
			return nil, err
		}
		s.setCurrent(cmd.Room)
		return s.roomList(), nil
	case Private:
		if _, err := svc.CreatePrivate(cmd.Room); err != nil {
			return nil, err
		}
		s.setCurrent(cmd.Room)
		return s.a.Invite(cmd.Room)
	case InviteLink:
		room := cmd.Room
		if room == "" {
			room = s.Current()
		}
		if room == "" {
			return nil, ErrNoRoom
		}
		return s.a.Invite(room)
	case Kick:
		room := cmd.Room
		if room == "" {
			room = s.Current()
		}
		if room == "" {
			return nil, ErrNoRoom
		}
		if err := svc.CanKick(room); err != nil {
			return nil, err
		}
		who, err := svc.ResolvePeer(cmd.To)
		if err != nil {
			return nil, fmt.Errorf("kick: %w", err)
		}
		n, err := svc.Kick(ctx, room, who)
		if err != nil {
			return nil, err
		}
		return Info{Text: fmt.Sprintf("removed %s from #%s: the room has a new key, sent to %d other members; what %s had stays with them", cmd.To, room, n, cmd.To)}, nil
	case Leave:
		room := cmd.Room
		if room == "" {
			room = s.Current()
		}
		if room == "" {
			return nil, errors.New("not in a room")
		}
		if err := svc.Leave(room); err != nil {
			return nil, err
		}
		if s.Current() == room {
			next := ""
			if rooms := svc.Rooms(); len(rooms) > 0 {
				next = rooms[0]
			}
			s.setCurrent(next)
		}
		return s.roomList(), nil
	case Switch:
		if cmd.Room != "" {
			if !slices.Contains(svc.Rooms(), cmd.Room) {
				return nil, fmt.Errorf("not in room %q: /join %s first", cmd.Room, cmd.Room)
			}
			s.setCurrent(cmd.Room)
		}
		return s.roomList(), nil
	case Peers:
		return PeerList{Self: svc.ID(), Peers: svc.Peers()}, nil
	case Outbox:
		pending, err := svc.Outbox()
		if err != nil {
			return nil, err
		}
		return OutboxList{Pending: pending}, nil
	case Nick:
		if err := svc.SetNick(cmd.Text); err != nil {
			return nil, err
		}
		return Info{Text: "you are now " + cmd.Text}, nil
	case Why:
		return s.a.why(ctx, cmd.To)
	case Help:
		return Info{Text: HelpText}, nil
	case Quit:
		s.a.Quit()
		return Quitting{}, nil
	default:
		return nil, fmt.Errorf("unknown command %q", cmd.Kind)
	}
}

// sent is the result of sending ids (one text, maybe split).
func sent(ids []string, room string, to peer.ID) Sent {
	res := Sent{ID: ids[0], Room: room, To: to}
	if len(ids) > 1 {
		res.IDs = ids
	}
	return res
}

// sentSome says how far a split text got before err.
func sentSome(ids []string, parts int, err error) error {
	if len(ids) == 0 {
		return err
	}
	return fmt.Errorf("only %d of the %d messages the text was split into were sent: %w", len(ids), parts, err)
}

func (s *Session) roomList() RoomList {
	return RoomList{Current: s.Current(), Rooms: s.a.svc.Rooms()}
}

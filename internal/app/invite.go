package app

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/parley-chat/parley/chat"
	"github.com/parley-chat/parley/chat/invite"
)

// Invite answers invite and private: a link that brings a friend into
// Room, from any network (it carries this node's relays).
type Invite struct {
	Room    string
	Link    string
	Private bool // the link carries the room's key: whoever has it can read the room
}

func (Invite) isResult() {}

// WithRelays tells the App which relays this node uses (multiaddrs with
// /p2p/ID, e.g. its --bootstrap peers), for invite links.
func WithRelays(f func() []string) Option { return func(a *App) { a.relays = f } }

// WithConnect tells the App how to connect to the relays of an invite
// link being joined.
func WithConnect(f func(ctx context.Context, addrs []string) error) Option {
	return func(a *App) { a.connect = f }
}

// relayAddrs lists the relays an invite link names: the configured ones,
// then those of this node's relay reservations (a circuit address minus
// its /p2p-circuit tail is the relay's own address).
func (a *App) relayAddrs() []string {
	var out []string
	if a.relays != nil {
		out = append(out, a.relays()...)
	}
	a.mu.Lock()
	for _, c := range a.relay {
		if r, _, ok := strings.Cut(c, "/p2p-circuit"); ok && !slices.Contains(out, r) {
			out = append(out, r)
		}
	}
	a.mu.Unlock()
	return out[:min(len(out), invite.MaxRelays)]
}

// Invite returns an invite link to the joined room: with its key for a
// private room, and this node's relays either way.
func (a *App) Invite(room string) (Invite, error) {
	if !slices.Contains(a.svc.Rooms(), room) {
		return Invite{}, fmt.Errorf("invite to %q: %w", room, chat.ErrNotInRoom)
	}
	l := invite.Link{Room: room, Relays: a.relayAddrs()}
	if pr, ok := a.svc.Private(room); ok {
		l.Secret, l.Epoch, l.Creator = pr.Secret, pr.Epoch, pr.Creator
	}
	s, err := invite.Encode(l)
	if err != nil {
		return Invite{}, err
	}
	return Invite{Room: room, Link: s, Private: l.Private()}, nil
}

// JoinLink joins the room of an invite link: it connects to the link's
// relays first (so a node on another network gets in with nothing else),
// then joins, privately when the link carries a key. It returns the
// room's name.
func (a *App) JoinLink(ctx context.Context, link string) (string, error) {
	l, err := invite.Decode(link)
	if err != nil {
		return "", err
	}
	if len(l.Relays) > 0 && a.connect != nil {
		if err := a.connect(ctx, l.Relays); err != nil {
			a.svc.Notify(chat.Notice{Text: fmt.Sprintf("none of the invite's relays answered (%v); joining #%s anyway", err, l.Room)})
		}
	}
	if l.Private() {
		err = a.svc.JoinPrivate(chat.PrivateRoom{Name: l.Room, Secret: l.Secret, Epoch: l.Epoch, Creator: l.Creator})
	} else {
		err = a.svc.Join(l.Room)
	}
	return l.Room, err
}

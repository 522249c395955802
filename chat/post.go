package chat

import (
	"errors"
	"fmt"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/parley-chat/parley/chat/content"
	"github.com/parley-chat/parley/chat/storage"
)

// maxPosts bounds the room messages Post has accepted and not yet sent.
const maxPosts = 1024

// ErrBusy means too many posted messages wait to be sent.
var ErrBusy = errors.New("too many messages waiting to be sent; try again in a moment")

type post struct{ room, text, id string }

// Post sends text to a joined room in the background and returns the
// message's ID at once, for front ends that must not wait (an HTTP
// request): the Message event with that ID, or an Error event with it,
// tells the outcome. Posts are sent one at a time, in order.
func (s *Service) Post(room, text string) (string, error) {
	if err := ValidateText(text); err != nil {
		return "", fmt.Errorf("send to room %q: %w", room, err)
	}
	if s.isClosed() {
		return "", ErrClosed
	}
	if !s.rooms.has(room) {
		return "", fmt.Errorf("send to room %q: %w", room, ErrNotInRoom)
	}
	p := post{room: room, text: text, id: content.NewID()}
	s.postOnce.Do(func() {
		if s.track() {
			go s.sendPosts()
		}
	})
	select {
	case s.posts <- p:
		return p.id, nil
	default:
		return "", ErrBusy
	}
}

func (s *Service) sendPosts() {
	defer s.wg.Done()
	for {
		select {
		case <-s.ctx.Done():
			return
		case p := <-s.posts:
			if _, err := s.send(s.ctx, p.room, p.text, p.id); err != nil && s.ctx.Err() == nil {
				s.emit(Error{ID: p.id, Err: err})
			}
		}
	}
}

// NickOf returns the nick p announced last ("" when unknown).
func (s *Service) NickOf(p peer.ID) string { return s.nicks.get(p) }

// Connected counts the peers with an open connection now.
func (s *Service) Connected() int { return len(s.h.Network().Peers()) }

// Conversation is the DMs with one peer, for a conversation list.
type Conversation struct {
	Peer   peer.ID
	Nick   string
	Last   DMEntry
	Unread int
}

// DMEntry is one DM of a conversation.
type DMEntry struct {
	ID     string
	Peer   peer.ID
	Nick   string
	Text   string
	SentAt time.Time
	Own    bool   // sent by this node
	State  string // received, sending, queued, delivered or failed
}

func dmEntry(m storage.ConversationDM) DMEntry {
	p, _ := peer.Decode(m.Peer)
	return DMEntry{ID: m.ID, Peer: p, Nick: content.PeerNick(m.Nick), Text: m.Text, SentAt: time.UnixMilli(m.SentAt).UTC(), Own: m.Own, State: m.State}
}

// Conversations lists the DM conversations, the newest first.
func (s *Service) Conversations() ([]Conversation, error) {
	cs, err := s.store.Conversations()
	if err != nil {
		return nil, err
	}
	out := make([]Conversation, 0, len(cs))
	for _, c := range cs {
		p, err := peer.Decode(c.Peer)
		if err != nil {
			continue
		}
		out = append(out, Conversation{Peer: p, Nick: s.nicks.get(p), Last: dmEntry(c.Last), Unread: c.Unread})
	}
	return out, nil
}

// MaxDMPage bounds DMsWith.
const MaxDMPage = 1000

// DMsWith returns the newest limit DMs with p, oldest first.
func (s *Service) DMsWith(p peer.ID, before string, limit int) ([]DMEntry, error) {
	if limit <= 0 || limit > MaxDMPage {
		return nil, fmt.Errorf("dms with %s: limit %d: want 1 to %d", p, limit, MaxDMPage)
	}
	ms, err := s.store.DMsWith(p.String(), before, limit)
	if err != nil {
		return nil, fmt.Errorf("dms with %s: %w", p, err)
	}
	out := make([]DMEntry, len(ms))
	for i, m := range ms {
		out[i] = dmEntry(m)
	}
	return out, nil
}

// MarkRoomRead marks room read up to now.
func (s *Service) MarkRoomRead(room string) error {
	return s.store.MarkRead("room:"+s.wireOf(room), time.Now())
}

// MarkDMsRead marks the conversation with p read up to now.
func (s *Service) MarkDMsRead(p peer.ID) error { return s.store.MarkRead("dm:"+p.String(), time.Now()) }

// Unread counts the messages of room by others that came after its read
// marker.
func (s *Service) Unread(room string) (int, error) {
	return s.store.UnreadRoom(s.wireOf(room), s.h.ID().String())
}

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

// maxInFlight bounds the posted messages published and not yet back and
// stored. Waiting for each one's round trip before publishing the next
// paced a burst by that round trip (10,000 messages: ~11 s); the next
// posts go out while earlier ones travel, and the bound keeps the work
// accepted finite (with maxPosts, Post's ErrBusy is the backpressure).
const maxInFlight = 64

type post struct{ room, text, id string }

// Post sends text to a joined room in the background and returns the
// message's ID at once, for front ends that must not wait (an HTTP
// request, a burst): the Message event with that ID, or an Error event
// with it, tells the outcome. Posts are published in order, up to
// maxInFlight of them before the first is back and stored.
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

// sendPosts publishes posts in order and waits, oldest first, until each
// is back and stored, with at most maxInFlight outstanding.
func (s *Service) sendPosts() {
	defer s.wg.Done()
	var pending []ownMessage // published, oldest first
	var since []time.Time    // when each was published
	defer func() {
		for _, o := range pending {
			o.done()
		}
	}()
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		var next chan post
		if len(pending) < maxInFlight {
			next = s.posts
		}
		var stored, left <-chan struct{}
		var expired <-chan time.Time
		if len(pending) > 0 {
			stored, left = pending[0].stored, pending[0].r.ctx.Done()
			timer.Reset(time.Until(since[0].Add(sendTimeout)))
			expired = timer.C
		}
		var failed error
		select {
		case <-s.ctx.Done():
			return
		case p := <-next:
			o, err := s.publishOwn(s.ctx, p.room, p.text, p.id)
			if err != nil {
				if s.ctx.Err() == nil {
					s.emit(Error{ID: p.id, Err: err})
				}
				continue
			}
			pending, since = append(pending, o), append(since, time.Now())
			continue
		case <-stored:
		case <-left:
			failed = pending[0].errLeft()
		case <-expired:
			failed = pending[0].errNotStored()
		}
		o := pending[0]
		o.done()
		pending, since = pending[1:], since[1:]
		if failed != nil && s.ctx.Err() == nil {
			s.emit(Error{ID: o.id, Err: failed})
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

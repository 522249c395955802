// Package roster is the protocol by which a member learns who else is in a
// room from a member it meets, without anyone announcing to the whole
// room: /parley/roster/1.0.0.
//
// # Why
//
// A member announces its nick to the room (a signed PRESENCE) when it
// joins and when it changes its nick. A member that joins later has missed
// those announcements. Answering each newcomer with a room-wide presence
// costs every member a copy per newcomer: O(members²) while a room forms.
// Instead the newcomer asks the members it meets for the presences they
// hold (a Book: the newest presence of each member they heard), and each
// member keeps asking its neighbours for what reached them since it last
// asked, while there is news: one short exchange per link.
//
// # Wire
//
// One request and one response per stream, both unsigned-varint
// length-prefixed protobuf:
//
//	requester → RosterRequest{room, book, after, own_book, own_seq}
//	server    → RosterResponse{presences: signed GossipSub messages, book, next, more}
//
// A Book numbers presences in the order they reached it; after is the
// position the requester got to last time from this server's book (0 the
// first time), book the server's book it got it from (a server that
// restarted has another book and answers from the start). own_book and
// own_seq are the requester's own book and how far it has got: a server
// that has fetched less from it asks it back (Server.Ahead), so news
// travels both ways along a link. Each presence is
// the author's signed GossipSub message, verified by the requester (Verify),
// so a server cannot put a nick on anyone. The server answers only a
// requester that is in the room, as it is itself.
package roster

import (
	"cmp"
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/fnv"
	"slices"
	"sync"
	"time"

	pubsubpb "github.com/libp2p/go-libp2p-pubsub/pb"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"
	"google.golang.org/protobuf/proto"

	"github.com/parley-chat/parley/chat/pb"
	"github.com/parley-chat/parley/chat/protocol/internal/exchange"
	"github.com/parley-chat/parley/chat/protocol/room"
)

// ID is the roster protocol.
const ID protocol.ID = "/parley/roster/1.0.0"

// ServiceName names the protocol's resource-manager scope.
const ServiceName = "parley.roster"

// spec is the protocol as one request/response exchange.
var spec = exchange.Protocol{ID: ID, Service: ServiceName, Timeout: Timeout,
	MaxRequest: maxRequestBytes, MaxResponse: MaxResponseBytes, ResponseName: "roster reply"}

// Bounds of the protocol.
const (
	PageSize         = 512     // presences per response at most
	MaxResponseBytes = 1 << 20 // one response frame
	maxRequestBytes  = 512
	Timeout          = 10 * time.Second
	// MaxPresenceBytes bounds one presence a Book keeps: a nick and a
	// header, signed, are a few hundred bytes.
	MaxPresenceBytes = 2 << 10
)

// Key names a presence (its author and sequence number: GossipSub's
// message ID) in 8 bytes, so that a member skips, before any signature
// check, a presence it already holds.
func Key(m *pubsubpb.Message) uint64 {
	h := fnv.New64a()
	h.Write(m.GetFrom())
	h.Write(m.GetSeqno())
	return h.Sum64()
}

// Book holds the newest presence of each member heard in a room, in the
// order they arrived, up to a bound. It is safe for concurrent use.
type Book struct {
	mu       sync.Mutex
	id       uint64
	seq      uint64
	max      int
	byAuthor map[peer.ID]*entry
	keys     map[uint64]struct{}
	given    map[peer.ID]uint64 // how far each asker got in this book
}

type entry struct {
	seq    uint64
	sentAt int64
	key    uint64
	raw    []byte
	from   peer.ID // the neighbour it came from (or this node, or its author)
}

// NewBook returns an empty book of at most max members.
func NewBook(max int) *Book {
	var b [8]byte
	rand.Read(b[:])
	return &Book{id: binary.LittleEndian.Uint64(b[:]) | 1, max: max,
		byAuthor: make(map[peer.ID]*entry), keys: make(map[uint64]struct{}), given: make(map[peer.ID]uint64)}
}

// Has reports whether the book holds the presence named key.
func (b *Book) Has(key uint64) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	_, ok := b.keys[key]
	return ok
}

// Add keeps raw, author's presence sent at sentAt (Unix ms) and named
// key, that came from neighbour from, unless the book holds a newer one of
// author's; it reports whether it did. A full book forgets its oldest
// presence for a new author.
func (b *Book) Add(author peer.ID, sentAt int64, key uint64, raw []byte, from peer.ID) bool {
	if len(raw) > MaxPresenceBytes {
		return false
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	old, ok := b.byAuthor[author]
	if ok && (old.sentAt > sentAt || old.key == key) {
		return false
	}
	if ok {
		delete(b.keys, old.key)
	} else if len(b.byAuthor) >= b.max {
		var oldest peer.ID
		for p, e := range b.byAuthor {
			if oldest == "" || e.sentAt < b.byAuthor[oldest].sentAt {
				oldest = p
			}
		}
		delete(b.keys, b.byAuthor[oldest].key)
		delete(b.byAuthor, oldest)
	}
	b.seq++
	b.byAuthor[author] = &entry{seq: b.seq, sentAt: sentAt, key: key, raw: raw, from: from}
	b.keys[key] = struct{}{}
	return true
}

// AddSigned is Add for a presence as GossipSub delivered it (validated)
// from neighbour from, kept as its author signed it.
func (b *Book) AddSigned(m *pubsubpb.Message, sentAt int64, from peer.ID) bool {
	author, err := peer.IDFromBytes(m.GetFrom())
	if err != nil {
		return false
	}
	raw, err := proto.Marshal(m)
	if err != nil {
		return false
	}
	return b.Add(author, sentAt, Key(m), raw, from)
}

// Position names the book and how far it has got.
func (b *Book) Position() (book, seq uint64) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.id, b.seq
}

// Behind reports whether p has not fetched all of this book (or never
// asked): what this node learned last has not reached p through it.
func (b *Book) Behind(p peer.ID) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	got, ok := b.given[p]
	return !ok || got < b.seq
}

// Len is how many members' presences the book holds.
func (b *Book) Len() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.byAuthor)
}

// Page answers asker's request: the presences that arrived after position
// after of book (all of them if book is another book), oldest arrival
// first, at most PageSize and MaxResponseBytes. What the asker holds for
// sure is left out (its own presence, and those it gave this book): while
// a room forms, sending them back was most of the bytes.
func (b *Book) Page(book, after uint64, asker peer.ID) *pb.RosterResponse {
	b.mu.Lock()
	defer b.mu.Unlock()
	if book != b.id {
		after = 0
	}
	var fresh []*entry
	skipped := after // the newest left out: the cursor passes it
	for author, e := range b.byAuthor {
		switch {
		case e.seq <= after:
		case author == asker || e.from == asker:
			skipped = max(skipped, e.seq)
		default:
			fresh = append(fresh, e)
		}
	}
	slices.SortFunc(fresh, func(x, y *entry) int { return cmp.Compare(x.seq, y.seq) })
	resp := &pb.RosterResponse{Book: b.id, Next: after}
	size := 0
	for i, e := range fresh {
		if i == PageSize || size+len(e.raw)+16 > MaxResponseBytes {
			resp.More = true
			break
		}
		resp.Presences = append(resp.Presences, e.raw)
		resp.Next = e.seq
		size += len(e.raw) + 16
	}
	if !resp.More {
		resp.Next = max(resp.Next, skipped)
	}
	if len(b.given) >= b.max {
		clear(b.given) // forgetting only has a neighbour told again
	}
	b.given[asker] = resp.Next
	return resp
}

// Presence is a verified presence: who, under which nick, since when.
type Presence struct {
	Author peer.ID
	Nick   string
	SentAt int64 // Unix ms
	Key    uint64
}

// Decode reads a presence as served, without checking it: enough to look
// its Key up before paying for Verify.
func Decode(raw []byte) (*pubsubpb.Message, error) {
	var m pubsubpb.Message
	if err := proto.Unmarshal(raw, &m); err != nil {
		return nil, fmt.Errorf("decode signed presence: %w", err)
	}
	return &m, nil
}

// Verify checks m, served as a presence of room rm: on the room's topic,
// signed by its author (checked as libp2p-pubsub checks it), a PRESENCE
// whose body opens with open. A presence may be older than
// room.MaxMessageAge (a member silent for long), not from the future.
func Verify(m *pubsubpb.Message, rm string, now time.Time, open room.Opener) (Presence, error) {
	if m.GetTopic() != room.Topic(rm) {
		return Presence{}, fmt.Errorf("presence of topic %q in the roster of room %q", m.GetTopic(), rm)
	}
	env, err := room.DecodeStored(m.GetData(), rm, now)
	if err != nil {
		return Presence{}, err
	}
	if env.GetKind() != pb.Envelope_PRESENCE {
		return Presence{}, errors.New("a roster holds only presences")
	}
	author, err := room.VerifySignature(m)
	if err != nil {
		return Presence{}, err
	}
	body, err := open(env, author)
	if err != nil {
		return Presence{}, err
	}
	return Presence{Author: author, Nick: body.GetNick(), SentAt: env.GetSentAtMs(), Key: Key(m)}, nil
}

// Server answers roster requests from the books of the rooms this node is
// in. Book returns a room's book (false: not in the room); Allowed says
// whether the requester is in the room too; Admit, if not nil, is a rate
// limit per requester: a refused stream is reset before it is read.
// Ahead, if not nil, is told how far the requester's own book has got
// (after the reply is written).
type Server struct {
	Book    func(room string) (*Book, bool)
	Allowed func(ctx context.Context, room string, requester peer.ID) bool
	Admit   func(requester peer.ID) bool
	Ahead   func(room string, requester peer.ID, book, seq uint64)
}

// Handle serves one roster stream: a thin handler that resets the stream
// on any error and closes it on success.
func (srv Server) Handle(st network.Stream) {
	spec.Handle(st, srv.Admit, srv.serve)
}

func (srv Server) serve(st network.Stream) error {
	var req pb.RosterRequest
	if err := spec.ReadRequest(st, &req); err != nil {
		return err
	}
	if room.ValidateName(req.GetRoom()) != nil {
		return errors.New("roster request for an invalid room name")
	}
	book, ok := srv.Book(req.GetRoom())
	ctx, cancel := context.WithTimeout(context.Background(), Timeout)
	defer cancel()
	if !ok || !srv.Allowed(ctx, req.GetRoom(), st.Conn().RemotePeer()) {
		return errors.New("roster request for a room the requester or this node is not in")
	}
	resp := book.Page(req.GetBook(), req.GetAfter(), st.Conn().RemotePeer())
	if err := spec.Reply(st, resp, proto.Size(resp)); err != nil {
		return err
	}
	if srv.Ahead != nil {
		srv.Ahead(req.GetRoom(), st.Conn().RemotePeer(), req.GetOwnBook(), req.GetOwnSeq())
	}
	return nil
}

// Fetch asks p for room's presences that reached p's roster book after
// position after; own is the requester's own book, whose position p is
// told.
func Fetch(ctx context.Context, h host.Host, p peer.ID, rm string, book, after uint64, own *Book) (*pb.RosterResponse, error) {
	req := &pb.RosterRequest{Room: rm, Book: book, After: after}
	if own != nil {
		req.OwnBook, req.OwnSeq = own.Position()
	}
	var resp pb.RosterResponse
	if err := spec.Call(ctx, h, p, req, &resp); err != nil {
		return nil, err
	}
	if len(resp.GetPresences()) > PageSize {
		return nil, fmt.Errorf("roster page of %d presences, max %d", len(resp.GetPresences()), PageSize)
	}
	return &resp, nil
}

package roster_test

import (
	"crypto/rand"
	"fmt"
	"strings"
	"testing"
	"time"

	pubsubpb "github.com/libp2p/go-libp2p-pubsub/pb"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"
	"google.golang.org/protobuf/proto"

	"github.com/parley-chat/parley/chat/pb"
	"github.com/parley-chat/parley/chat/protocol/room"
	"github.com/parley-chat/parley/chat/protocol/roster"
)

func sign(t testing.TB, key crypto.PrivKey, topic string, data []byte, seq byte) *pubsubpb.Message {
	t.Helper()
	id, _ := peer.IDFromPrivateKey(key)
	m := &pubsubpb.Message{From: []byte(id), Data: data, Seqno: []byte{0, 0, 0, 0, 0, 0, 0, seq}, Topic: &topic}
	b, _ := proto.Marshal(m)
	sig, err := key.Sign(append([]byte("libp2p-pubsub:"), b...))
	if err != nil {
		t.Fatal(err)
	}
	m.Signature = sig
	return m
}

func presence(kind pb.Envelope_Kind, rm, nick string, sentAt time.Time) []byte {
	env := &pb.Envelope{Kind: kind, Id: "0123456789abcdef0123456789abcdef", Room: rm, SentAtMs: sentAt.UnixMilli(), Lamport: 1}
	body := &pb.Body{Nick: nick}
	if kind == pb.Envelope_MESSAGE {
		body.Text = "hello"
	}
	room.SealBody(env, body)
	b, _ := proto.Marshal(env)
	return b
}

func TestVerifyTakesOnlyTheAuthorsOwnPresence(t *testing.T) {
	key, _, _ := crypto.GenerateEd25519Key(rand.Reader)
	author, _ := peer.IDFromPrivateKey(key)
	now := time.Now()
	tests := []struct {
		name    string
		msg     func() *pubsubpb.Message
		wantErr string
	}{
		{"valid, a month old", func() *pubsubpb.Message {
			return sign(t, key, room.Topic("lobby"), presence(pb.Envelope_PRESENCE, "lobby", "alice", now.Add(-30*24*time.Hour)), 1)
		}, ""},
		{"nick changed after signing", func() *pubsubpb.Message {
			m := sign(t, key, room.Topic("lobby"), presence(pb.Envelope_PRESENCE, "lobby", "alice", now), 1)
			m.Data = presence(pb.Envelope_PRESENCE, "lobby", "admin", now)
			return m
		}, "signature"},
		{"put on another peer", func() *pubsubpb.Message {
			other, _, _ := crypto.GenerateEd25519Key(rand.Reader)
			m := sign(t, key, room.Topic("lobby"), presence(pb.Envelope_PRESENCE, "lobby", "alice", now), 1)
			id, _ := peer.IDFromPrivateKey(other)
			m.From = []byte(id)
			return m
		}, "signature"},
		{"another room's", func() *pubsubpb.Message {
			return sign(t, key, room.Topic("other"), presence(pb.Envelope_PRESENCE, "other", "alice", now), 1)
		}, "topic"},
		{"a chat message", func() *pubsubpb.Message {
			return sign(t, key, room.Topic("lobby"), presence(pb.Envelope_MESSAGE, "lobby", "alice", now), 1)
		}, "only presences"},
		{"from the future", func() *pubsubpb.Message {
			return sign(t, key, room.Topic("lobby"), presence(pb.Envelope_PRESENCE, "lobby", "alice", now.Add(time.Hour)), 1)
		}, "future"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := tt.msg()
			raw, _ := proto.Marshal(m)
			decoded, err := roster.Decode(raw)
			if err != nil {
				t.Fatal(err)
			}
			p, err := roster.Verify(decoded, "lobby", now, room.OpenPublic)
			if tt.wantErr == "" {
				if err != nil || p.Author != author || p.Nick != "alice" || p.Key != roster.Key(m) {
					t.Fatalf("valid presence: %+v, %v", p, err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("err = %v, want one saying %q", err, tt.wantErr)
			}
		})
	}
}

// A book keeps each member's newest presence and hands out, page by page,
// what arrived after where a requester got to: nothing twice, nothing
// missed, and everything again for a requester that names another book.
func TestBookPagesWhatArrivedSince(t *testing.T) {
	b := roster.NewBook(3)
	peers := make([]peer.ID, 4)
	for i := range peers {
		key, _, _ := crypto.GenerateEd25519Key(rand.Reader)
		peers[i], _ = peer.IDFromPrivateKey(key)
	}
	raw := func(s string) []byte { return []byte(s) }
	steps := []struct {
		author peer.ID
		sentAt int64
		key    uint64
		added  bool
	}{
		{peers[0], 100, 1, true},
		{peers[1], 100, 2, true},
		{peers[0], 50, 3, false},  // older than the one held
		{peers[0], 200, 1, false}, // the same presence again
		{peers[0], 200, 4, true},  // newer: replaces key 1
		{peers[2], 300, 5, true},
		{peers[3], 400, 6, true}, // the book is full: peers[1]'s (oldest) goes
	}
	for i, s := range steps {
		if got := b.Add(s.author, s.sentAt, s.key, raw(fmt.Sprint(s.key)), s.author); got != s.added {
			t.Fatalf("step %d: Add = %t, want %t", i, got, s.added)
		}
	}
	if b.Len() != 3 || b.Has(1) || b.Has(2) || !b.Has(4) || !b.Has(6) {
		t.Fatalf("book holds %d; has 1:%t 2:%t 4:%t 6:%t", b.Len(), b.Has(1), b.Has(2), b.Has(4), b.Has(6))
	}
	asker := peer.ID("asker") // holds nothing of the book's
	first := b.Page(0, 0, asker)
	if got := strings.Join(texts(first), ","); got != "4,5,6" || first.GetMore() {
		t.Fatalf("first page %s (more %t), want 4,5,6 in arrival order", got, first.GetMore())
	}
	if again := b.Page(first.GetBook(), first.GetNext(), asker); len(again.GetPresences()) != 0 || again.GetNext() != first.GetNext() {
		t.Fatalf("asked again: %v, next %d", texts(again), again.GetNext())
	}
	b.Add(peers[2], 500, 7, raw("7"), peers[2])
	if got := texts(b.Page(first.GetBook(), first.GetNext(), asker)); strings.Join(got, ",") != "7" {
		t.Fatalf("after a new nick: %v, want only 7", got)
	}
	if got := texts(b.Page(first.GetBook()+1, first.GetNext(), asker)); len(got) != 3 {
		t.Fatalf("another book's position: %v, want all 3 from the start", got)
	}
}

// A page leaves out what the asker holds for sure: its own presence and
// those it gave the book. Its cursor passes them all the same, so they
// are not asked for again.
func TestPageLeavesOutWhatTheAskerGave(t *testing.T) {
	b := roster.NewBook(10)
	alice, bob, carol, dave := peer.ID("alice"), peer.ID("bob"), peer.ID("carol"), peer.ID("dave")
	b.Add(alice, 100, 1, []byte("alice"), alice) // from alice herself
	b.Add(bob, 100, 2, []byte("bob"), alice)     // alice passed bob's on
	b.Add(carol, 100, 3, []byte("carol"), dave)  // dave passed carol's on
	b.Add(dave, 100, 4, []byte("dave"), dave)
	tests := []struct {
		asker peer.ID
		want  string
	}{
		{alice, "carol,dave"},
		{dave, "alice,bob"},
		{bob, "alice,carol,dave"},
		{peer.ID("erin"), "alice,bob,carol,dave"},
	}
	for _, tt := range tests {
		page := b.Page(0, 0, tt.asker)
		if got := strings.Join(texts(page), ","); got != tt.want {
			t.Errorf("%s asks: %s, want %s", tt.asker, got, tt.want)
		}
		if _, seq := b.Position(); page.GetNext() != seq || page.GetMore() {
			t.Errorf("%s asks: next %d (more %t), want the end of the book, %d", tt.asker, page.GetNext(), page.GetMore(), seq)
		}
	}
}

func texts(r *pb.RosterResponse) []string {
	var out []string
	for _, p := range r.GetPresences() {
		out = append(out, string(p))
	}
	return out
}

// FuzzVerify feeds presence verification what a peer may serve in a
// roster: it must never panic, and what it accepts is a presence of the
// room.
func FuzzVerify(f *testing.F) {
	key, _, _ := crypto.GenerateEd25519Key(rand.Reader)
	now := time.Now()
	good, _ := proto.Marshal(sign(f, key, room.Topic("lobby"), presence(pb.Envelope_PRESENCE, "lobby", "alice", now), 1))
	f.Add(good)
	f.Add([]byte{})
	f.Add([]byte("\x0a\x20not a peer id at all"))
	f.Fuzz(func(t *testing.T, raw []byte) {
		m, err := roster.Decode(raw)
		if err != nil {
			return
		}
		p, err := roster.Verify(m, "lobby", now, room.OpenPublic)
		if err != nil {
			return
		}
		if p.Author == "" || p.SentAt > now.UnixMilli()+int64(time.Minute/time.Millisecond) {
			t.Fatalf("accepted %+v", p)
		}
	})
}

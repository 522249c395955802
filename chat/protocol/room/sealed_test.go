package room_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	pubsub "github.com/libp2p/go-libp2p-pubsub"
	pubsubpb "github.com/libp2p/go-libp2p-pubsub/pb"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"
	"google.golang.org/protobuf/proto"

	"github.com/parley-chat/parley/chat/content"
	"github.com/parley-chat/parley/chat/pb"
	"github.com/parley-chat/parley/chat/protocol/room"
)

func peerID(t *testing.T) peer.ID {
	t.Helper()
	_, pub, err := crypto.GenerateEd25519Key(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	id, err := peer.IDFromPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	return id
}

func TestSealerOpensOnlyItsOwn(t *testing.T) {
	secret := room.NewSecret()
	s0, err := room.NewSealer(secret, 0)
	if err != nil {
		t.Fatal(err)
	}
	s1, _ := room.NewSealer(secret, 1)
	other, _ := room.NewSealer(room.NewSecret(), 0)
	if s0.Name() == s1.Name() || s0.Name() == other.Name() || room.ValidateName(s0.Name()) != nil {
		t.Fatalf("wire names %q %q %q: want distinct valid names per secret and epoch", s0.Name(), s1.Name(), other.Name())
	}
	alice, bob := peerID(t), peerID(t)
	env := &pb.Envelope{Kind: pb.Envelope_MESSAGE, Id: "0123456789abcdef0123456789abcdef", Room: s0.Name()}
	if err := s0.Seal(env, &pb.Body{Nick: "alice", Text: "meet at noon"}, alice); err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(env.Body, []byte("noon")) || bytes.Contains(env.Body, []byte("alice")) {
		t.Fatal("sealed body holds plain text")
	}
	body, err := s0.Open(env, alice)
	if err != nil || body.GetText() != "meet at noon" || body.GetNick() != "alice" {
		t.Fatalf("Open: %+v, %v", body, err)
	}
	tampered := &pb.Envelope{Kind: env.Kind, Id: env.Id, Room: env.Room, Body: bytes.Clone(env.Body)}
	tampered.Body[len(tampered.Body)-1] ^= 1
	otherID := &pb.Envelope{Kind: env.Kind, Id: "ffffffffffffffffffffffffffffffff", Room: env.Room, Body: env.Body}
	for _, tc := range []struct {
		name string
		s    *room.Sealer
		env  *pb.Envelope
		from peer.ID
	}{
		{"another author", s0, env, bob},
		{"another epoch", s1, env, alice},
		{"another room", other, env, alice},
		{"tampered", s0, tampered, alice},
		{"another message id", s0, otherID, alice},
		{"public body", s0, func() *pb.Envelope {
			e := &pb.Envelope{Kind: pb.Envelope_MESSAGE, Id: env.Id}
			room.SealBody(e, &pb.Body{Text: "hi"})
			return e
		}(), alice},
	} {
		if _, err := tc.s.Open(tc.env, tc.from); !errors.Is(err, room.ErrUnsealed) {
			t.Errorf("%s: Open = %v, want ErrUnsealed", tc.name, err)
		}
	}
	if _, err := room.NewSealer(make([]byte, 16), 0); err == nil {
		t.Error("a 16-byte secret was accepted")
	}
}

// The derivation and the seal, byte for byte, against a vector kept in
// testdata: existing private rooms depend on both.
func TestSealedGoldenVector(t *testing.T) {
	raw, err := os.ReadFile(filepath.Join("testdata", "sealed-v1.txt"))
	if err != nil {
		t.Fatal(err)
	}
	v := map[string]string{}
	for _, line := range strings.Split(string(raw), "\n") {
		if k, val, ok := strings.Cut(line, " "); ok && !strings.HasPrefix(line, "#") {
			v[k] = val
		}
	}
	secret, _ := hex.DecodeString(v["secret"])
	epoch, _ := strconv.ParseUint(v["epoch"], 10, 64)
	s, err := room.NewSealer(secret, epoch)
	if err != nil {
		t.Fatal(err)
	}
	if s.Name() != v["name"] {
		t.Errorf("wire name %s, want %s", s.Name(), v["name"])
	}
	author, err := peer.Decode(v["author"])
	if err != nil {
		t.Fatal(err)
	}
	sealed, _ := hex.DecodeString(v["sealed"])
	env := &pb.Envelope{Kind: pb.Envelope_Kind(pb.Envelope_Kind_value[v["kind"]]), Id: v["id"], Room: s.Name(), Body: sealed}
	body, err := s.Open(env, author)
	if err != nil {
		t.Fatalf("the golden sealed body does not open: %v", err)
	}
	if body.GetNick() != v["nick"] || body.GetText() != v["text"] {
		t.Errorf("opened %q/%q, want %q/%q", body.GetNick(), body.GetText(), v["nick"], v["text"])
	}
}

// A member's validator rejects what does not open with the room's key (a
// non-member's message on the topic, one sealed under another epoch or
// rewritten to another author), while a bridge's, with no opener, accepts
// any well-formed header: it carries the room unread.
func TestValidatorRejectsWhatDoesNotOpen(t *testing.T) {
	secret := room.NewSecret()
	s0, _ := room.NewSealer(secret, 0)
	s1, _ := room.NewSealer(secret, 1)
	alice, mallory := peerID(t), peerID(t)
	msg := func(s *room.Sealer, from, claimed peer.ID) *pubsub.Message {
		env := &pb.Envelope{Kind: pb.Envelope_MESSAGE, Id: content.NewID(), Room: s0.Name(), SentAtMs: time.Now().UnixMilli(), Lamport: 1}
		if err := s.Seal(env, &pb.Body{Nick: "x", Text: "hi"}, from); err != nil {
			t.Fatal(err)
		}
		data, _ := proto.Marshal(env)
		return &pubsub.Message{Message: &pubsubpb.Message{Data: data, From: []byte(claimed)}}
	}
	member := room.Validator(s0.Name(), s0.Open, nil)
	bridge := room.Validator(s0.Name(), nil, nil)
	for _, tc := range []struct {
		name           string
		m              *pubsub.Message
		member, bridge pubsub.ValidationResult
	}{
		{"a member's", msg(s0, alice, alice), pubsub.ValidationAccept, pubsub.ValidationAccept},
		{"another epoch's", msg(s1, alice, alice), pubsub.ValidationReject, pubsub.ValidationAccept},
		{"re-signed by another author", msg(s0, alice, mallory), pubsub.ValidationReject, pubsub.ValidationAccept},
	} {
		if got := member(context.Background(), alice, tc.m); got != tc.member {
			t.Errorf("%s: member's validator %v, want %v", tc.name, got, tc.member)
		}
		if got := bridge(context.Background(), alice, tc.m); got != tc.bridge {
			t.Errorf("%s: bridge's validator %v, want %v", tc.name, got, tc.bridge)
		}
	}
}

package room_test

import (
	"crypto/rand"
	"testing"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"
	"google.golang.org/protobuf/proto"

	"github.com/parley-chat/parley/chat/pb"
	"github.com/parley-chat/parley/chat/protocol/room"
)

// BenchmarkRoomMessage is the CPU a room message costs its author and one
// receiver, public and sealed: body, envelope, the author's signature
// (as GossipSub's strict signing makes it), its check, decoding and
// opening. The target: sealing adds at most 10 %.
func BenchmarkRoomMessage(b *testing.B) {
	key, _, err := crypto.GenerateEd25519Key(rand.Reader)
	if err != nil {
		b.Fatal(err)
	}
	from, _ := peer.IDFromPrivateKey(key)
	sealer, err := room.NewSealer(room.NewSecret(), 0)
	if err != nil {
		b.Fatal(err)
	}
	body := &pb.Body{Nick: "alice", Text: "a line of chat about as long as most of them are, give or take"}
	for _, tc := range []struct {
		name string
		seal func(*pb.Envelope) error
		open room.Opener
	}{
		{"plain", func(env *pb.Envelope) error { return room.SealBody(env, body) }, room.OpenPublic},
		{"sealed", func(env *pb.Envelope) error { return sealer.Seal(env, body, from) }, sealer.Open},
	} {
		b.Run(tc.name, func(b *testing.B) {
			for b.Loop() {
				env := &pb.Envelope{Kind: pb.Envelope_MESSAGE, Id: "0123456789abcdef0123456789abcdef", Room: sealer.Name(), SentAtMs: 1, Lamport: 2}
				if err := tc.seal(env); err != nil {
					b.Fatal(err)
				}
				data, _ := proto.Marshal(env)
				sig, err := key.Sign(data)
				if err != nil {
					b.Fatal(err)
				}
				if ok, err := key.GetPublic().Verify(data, sig); !ok || err != nil {
					b.Fatal("bad signature")
				}
				var got pb.Envelope
				if err := proto.Unmarshal(data, &got); err != nil {
					b.Fatal(err)
				}
				if _, err := tc.open(&got, from); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkBody is the part that differs: a body sealed and opened, or
// encoded and decoded.
func BenchmarkBody(b *testing.B) {
	_, pub, _ := crypto.GenerateEd25519Key(rand.Reader)
	from, _ := peer.IDFromPublicKey(pub)
	sealer, _ := room.NewSealer(room.NewSecret(), 0)
	body := &pb.Body{Nick: "alice", Text: "a line of chat about as long as most of them are, give or take"}
	env := &pb.Envelope{Kind: pb.Envelope_MESSAGE, Id: "0123456789abcdef0123456789abcdef"}
	b.Run("plain", func(b *testing.B) {
		for b.Loop() {
			room.SealBody(env, body)
			if _, err := room.OpenBody(env); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("sealed", func(b *testing.B) {
		for b.Loop() {
			sealer.Seal(env, body, from)
			if _, err := sealer.Open(env, from); err != nil {
				b.Fatal(err)
			}
		}
	})
}

package history_test

import (
	"crypto/rand"
	"strings"
	"testing"
	"time"

	pubsubpb "github.com/libp2p/go-libp2p-pubsub/pb"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"
	"google.golang.org/protobuf/proto"

	"github.com/parley-chat/parley/chat/pb"
	"github.com/parley-chat/parley/chat/protocol/history"
	"github.com/parley-chat/parley/chat/protocol/room"
)

func sign(t testing.TB, key crypto.PrivKey, topic string, data []byte) *pubsubpb.Message {
	t.Helper()
	id, _ := peer.IDFromPrivateKey(key)
	m := &pubsubpb.Message{From: []byte(id), Data: data, Seqno: []byte{1, 2, 3, 4, 5, 6, 7, 8}, Topic: &topic}
	b, _ := proto.Marshal(m)
	sig, err := key.Sign(append([]byte("libp2p-pubsub:"), b...))
	if err != nil {
		t.Fatal(err)
	}
	m.Signature = sig
	return m
}

func envelope(rm, text string, sentAt time.Time) []byte {
	env := &pb.Envelope{Kind: pb.Envelope_MESSAGE, Id: "0123456789abcdef0123456789abcdef", Room: rm, SentAtMs: sentAt.UnixMilli(), Lamport: 1}
	room.SealBody(env, &pb.Body{Nick: "mallory", Text: text})
	b, _ := proto.Marshal(env)
	return b
}

func TestVerifyRejectsForgedHistory(t *testing.T) {
	key, _, _ := crypto.GenerateEd25519Key(rand.Reader)
	now := time.Now()
	enc := func(m *pubsubpb.Message) []byte { b, _ := proto.Marshal(m); return b }
	tests := []struct {
		name    string
		raw     func() []byte
		wantErr string
	}{
		{"valid, a week old", func() []byte {
			return enc(sign(t, key, room.Topic("lobby"), envelope("lobby", "old but fine", now.Add(-7*24*time.Hour))))
		}, ""},
		{"text changed after signing", func() []byte {
			m := sign(t, key, room.Topic("lobby"), envelope("lobby", "original", now))
			m.Data = envelope("lobby", "forged", now)
			return enc(m)
		}, "signature"},
		{"author changed", func() []byte {
			other, _, _ := crypto.GenerateEd25519Key(rand.Reader)
			m := sign(t, key, room.Topic("lobby"), envelope("lobby", "hi", now))
			id, _ := peer.IDFromPrivateKey(other)
			m.From = []byte(id)
			return enc(m)
		}, "signature"},
		{"another room's topic", func() []byte {
			return enc(sign(t, key, room.Topic("other"), envelope("other", "hi", now)))
		}, "topic"},
		{"envelope of another room", func() []byte {
			return enc(sign(t, key, room.Topic("lobby"), envelope("other", "hi", now)))
		}, "room"},
		{"oversized text", func() []byte {
			return enc(sign(t, key, room.Topic("lobby"), envelope("lobby", strings.Repeat("x", 5000), now)))
		}, "too long"},
		{"from the future", func() []byte {
			return enc(sign(t, key, room.Topic("lobby"), envelope("lobby", "hi", now.Add(time.Hour))))
		}, "future"},
		{"not a message", func() []byte { return []byte{0xff, 0xff, 0xff} }, "decode"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := history.Verify(tt.raw(), "lobby", now)
			switch {
			case tt.wantErr == "" && err != nil:
				t.Errorf("got %v, want no error", err)
			case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
				t.Errorf("got %v, want an error about %q", err, tt.wantErr)
			}
		})
	}
}

package store_test

import (
	"testing"

	pubsubpb "github.com/libp2p/go-libp2p-pubsub/pb"
	"google.golang.org/protobuf/proto"

	"github.com/parley-chat/parley/chat/pb"
	"github.com/parley-chat/parley/internal/store"
)

// signedRaw is a GossipSub message carrying an envelope whose body is
// body (an encoded pb.Body, or a private room's sealed bytes).
func signedRaw(t *testing.T, body []byte) []byte {
	t.Helper()
	env, err := proto.Marshal(&pb.Envelope{Kind: pb.Envelope_MESSAGE, Id: "x", Room: "lobby", Body: body, Lamport: 3})
	if err != nil {
		t.Fatal(err)
	}
	raw, err := proto.Marshal(&pubsubpb.Message{From: []byte("author"), Data: env, Seqno: []byte{1}, Topic: proto.String("parley/room/lobby"), Signature: make([]byte, 64)})
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

func encodedBody(t *testing.T, nick, text string) []byte {
	t.Helper()
	b, err := proto.Marshal(&pb.Body{Nick: nick, Text: text})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// A public room's text is read back from the signed message it is stored
// with (stored once); a text that is not found there (a private room's
// sealed body, a record without a signed message) is stored as it is.
func TestRoomTextStoredOnce(t *testing.T) {
	for _, tc := range []struct {
		name      string
		raw       []byte
		text      string
		emptyBody bool
	}{
		{"public", signedRaw(t, encodedBody(t, "alice", "hello there")), "hello there", true},
		{"sealed body", signedRaw(t, []byte{0x9f, 0x01, 0x02, 0x03, 0xff}), "hello there", false},
		{"other text in raw", signedRaw(t, encodedBody(t, "alice", "something else")), "hello there", false},
		{"no signed message", []byte("id"), "hello there", false},
		// A relay stores a private room's messages without their text.
		{"text unknown", signedRaw(t, []byte{0x9f, 0x01, 0x02}), "", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := open(t, t.TempDir())
			m := store.RoomMessage{ID: "m1", Room: "lobby", Author: "peer", Nick: "alice", Text: tc.text, SentAt: 1, Lamport: 3, Raw: tc.raw}
			if _, err := s.AddRoomMessage(m); err != nil {
				t.Fatal(err)
			}
			var body string
			if err := s.DB().QueryRow(`SELECT body FROM room_messages WHERE id = 'm1'`).Scan(&body); err != nil {
				t.Fatal(err)
			}
			if (body == "") != tc.emptyBody {
				t.Errorf("stored body %q, want empty: %v", body, tc.emptyBody)
			}
			got, err := s.RecentRoomMessages("lobby", 10)
			if err != nil || len(got) != 1 {
				t.Fatalf("read back %v, %v", got, err)
			}
			if got[0].Text != tc.text || got[0].Nick != m.Nick || string(got[0].Raw) != string(tc.raw) {
				t.Errorf("read back %+v, want text %q", got[0], tc.text)
			}
		})
	}
}

package room_test

import (
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/parley-chat/parley/chat/content"
	"github.com/parley-chat/parley/chat/pb"
	"github.com/parley-chat/parley/chat/protocol/room"
)

// FuzzDecodeEnvelope feeds the room validator's decoder what any peer
// may publish: it must never panic, and whatever it accepts must be a
// well-formed chat envelope of the room.
func FuzzDecodeEnvelope(f *testing.F) {
	now := time.UnixMilli(1_750_000_000_000)
	for _, kind := range []pb.Envelope_Kind{pb.Envelope_MESSAGE, pb.Envelope_PRESENCE} {
		env := &pb.Envelope{Kind: kind, Id: "0123456789abcdef0123456789abcdef", Room: "lobby", SentAtMs: now.UnixMilli(), Lamport: 7, PrevLamport: 6}
		room.SealBody(env, &pb.Body{Nick: "alice", Text: "hello\nthere"})
		b, _ := proto.Marshal(env)
		f.Add(b)
	}
	f.Add([]byte{})
	f.Add([]byte{0x0a, 0xff, 0xff, 0xff, 0xff, 0x0f})
	f.Fuzz(func(t *testing.T, data []byte) {
		env, err := room.DecodeEnvelope(data, "lobby", now)
		if err != nil {
			return
		}
		if env.GetRoom() != "lobby" {
			t.Fatalf("accepted an envelope of room %q", env.GetRoom())
		}
		body, err := room.OpenBody(env)
		if err != nil {
			return
		}
		if env.GetKind() == pb.Envelope_MESSAGE && content.ValidateText(body.GetText()) != nil {
			t.Fatalf("opened a message whose text is invalid: %q", body.GetText())
		}
	})
}

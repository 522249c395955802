package dm_test

import (
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/parley-chat/parley/chat/content"
	"github.com/parley-chat/parley/chat/pb"
	"github.com/parley-chat/parley/chat/protocol/dm"
)

// FuzzFrame feeds the DM handler's checks a frame as any peer may send
// it: never a panic, and an accepted message has valid text.
func FuzzFrame(f *testing.F) {
	now := time.UnixMilli(1_750_000_000_000)
	for _, fr := range []*pb.DMFrame{
		{Body: &pb.DMFrame_Message{Message: &pb.DirectMessage{Id: "0123456789abcdef0123456789abcdef", Nick: "bob", Text: "psst", SentAtMs: now.UnixMilli()}}},
		{Body: &pb.DMFrame_Ack{Ack: &pb.DMAck{Id: "0123456789abcdef0123456789abcdef"}}},
	} {
		b, _ := proto.Marshal(fr)
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		fr, err := dm.DecodeFrame(data)
		if err != nil {
			return
		}
		m := fr.GetMessage()
		if m == nil || dm.Validate(m, now) != nil {
			return
		}
		if content.ValidateText(m.GetText()) != nil {
			t.Fatalf("accepted invalid text %q", m.GetText())
		}
		content.PeerNick(m.GetNick())
	})
}

package history_test

import (
	"crypto/rand"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/crypto"
	"google.golang.org/protobuf/proto"

	"github.com/parley-chat/parley/chat/pb"
	"github.com/parley-chat/parley/chat/protocol/history"
	"github.com/parley-chat/parley/chat/protocol/room"
)

// FuzzVerify feeds history verification what a peer may serve as history:
// it must never panic, and what it accepts is a message of the room.
func FuzzVerify(f *testing.F) {
	key, _, _ := crypto.GenerateEd25519Key(rand.Reader)
	now := time.Now()
	good, _ := proto.Marshal(sign(f, key, room.Topic("lobby"), envelope("lobby", "hi", now)))
	f.Add(good)
	f.Add([]byte{})
	f.Add([]byte("\x0a\x20not a peer id at all"))
	f.Fuzz(func(t *testing.T, raw []byte) {
		m, err := history.Verify(raw, "lobby", now)
		if err != nil {
			return
		}
		if m.Room != "lobby" || m.Author == "" {
			t.Fatalf("accepted %+v", m)
		}
	})
}

// FuzzDecodeResponse: a history response frame as a server may send it.
func FuzzDecodeResponse(f *testing.F) {
	b, _ := proto.Marshal(&pb.HistoryResponse{Messages: [][]byte{[]byte("x")}, More: true})
	f.Add(b)
	f.Fuzz(func(t *testing.T, data []byte) {
		var resp pb.HistoryResponse
		if proto.Unmarshal(data, &resp) != nil {
			return
		}
		for _, raw := range resp.GetMessages() {
			history.Verify(raw, "lobby", time.Now())
		}
	})
}

package chat_test

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"slices"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/network"
	"google.golang.org/protobuf/proto"

	"github.com/parley-chat/parley/chat"
	"github.com/parley-chat/parley/chat/pb"
	"github.com/parley-chat/parley/internal/testutil"
)

func frame(t *testing.T, m proto.Message) []byte {
	t.Helper()
	b, err := proto.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return append(binary.AppendUvarint(nil, uint64(len(b))), b...)
}

// A peer that misbehaves on the DM protocol gets its stream reset; the node
// keeps running and keeps serving well-behaved peers.
func TestDMGarbageResetsStream(t *testing.T) {
	idle := 300 * time.Millisecond
	victim := testutil.NewChat(t, testutil.NewNode(t), chat.WithNick("victim"), chat.WithDMIdleTimeout(idle))
	attacker := testutil.NewNode(t)
	if err := attacker.Host().Connect(context.Background(), testutil.Info(victim.Node)); err != nil {
		t.Fatal(err)
	}
	valid := &pb.DirectMessage{Id: "0123456789abcdef0123456789abcdef", Nick: "x", Text: "hi", SentAtMs: time.Now().UnixMilli()}
	tests := []struct {
		name string
		send []byte
	}{
		{"varint overflow", []byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01}},
		{"oversized frame", append(binary.AppendUvarint(nil, 1<<20), make([]byte, 1024)...)},
		{"invalid protobuf", []byte{5, 0xff, 0xff, 0xff, 0xff, 0xff}},
		{"ack instead of message", frame(t, &pb.DMFrame{Body: &pb.DMFrame_Ack{Ack: &pb.DMAck{Id: valid.Id}}})},
		{"bad message id", frame(t, &pb.DMFrame{Body: &pb.DMFrame_Message{Message: &pb.DirectMessage{Id: "x", Nick: "x", Text: "hi", SentAtMs: valid.SentAtMs}}})},
		{"terminal escape in text", frame(t, &pb.DMFrame{Body: &pb.DMFrame_Message{Message: &pb.DirectMessage{Id: valid.Id, Nick: "x", Text: "\x1b[2J", SentAtMs: valid.SentAtMs}}})},
		{"truncated frame then silence", []byte{10, 1, 2}},
		{"silence", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st, err := attacker.Host().NewStream(context.Background(), victim.ID(), chat.DMProtocol)
			if err != nil {
				t.Fatal(err)
			}
			defer st.Reset()
			if len(tt.send) > 0 {
				if _, err := st.Write(tt.send); err != nil {
					t.Fatal(err)
				}
			}
			st.SetReadDeadline(time.Now().Add(10 * idle))
			_, err = io.ReadAll(st)
			if !errors.Is(err, network.ErrReset) {
				t.Fatalf("read after %s: got %v, want the stream reset", tt.name, err)
			}
		})
	}

	// The node still works: a well-formed DM is delivered and acked.
	sender := testutil.NewChat(t, attacker, chat.WithNick("sender"))
	id, err := sender.SendDM(victim.ID().String(), "still alive?")
	if err != nil {
		t.Fatal(err)
	}
	sender.WaitFor(t, "delivered", func(ev chat.Event) bool { d, ok := ev.(chat.Delivered); return ok && d.ID == id })
	for _, ev := range victim.Events() {
		if d, ok := ev.(chat.DirectMessage); ok && d.ID != id {
			t.Errorf("garbage produced a DM event: %+v", d)
		}
	}
}

// A DM that arrives twice (a retry after a lost ack) is shown once and
// acked both times.
func TestDMDuplicateShownOnce(t *testing.T) {
	victim := testutil.NewChat(t, testutil.NewNode(t))
	other := testutil.NewNode(t)
	if err := other.Host().Connect(context.Background(), testutil.Info(victim.Node)); err != nil {
		t.Fatal(err)
	}
	msg := &pb.DMFrame{Body: &pb.DMFrame_Message{Message: &pb.DirectMessage{
		Id: "00000000000000000000000000000001", Nick: "o", Text: "once", SentAtMs: time.Now().UnixMilli()}}}
	barrier := &pb.DMFrame{Body: &pb.DMFrame_Message{Message: &pb.DirectMessage{
		Id: "00000000000000000000000000000002", Nick: "o", Text: "after", SentAtMs: time.Now().UnixMilli()}}}
	// The same DM twice, then another: a DM is shown after its ack, so
	// the test waits for the last one's event before counting.
	for i, m := range []*pb.DMFrame{msg, msg, barrier} {
		st, err := other.Host().NewStream(context.Background(), victim.ID(), chat.DMProtocol)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := st.Write(frame(t, m)); err != nil {
			t.Fatal(err)
		}
		st.CloseWrite()
		st.SetReadDeadline(time.Now().Add(testutil.Timeout))
		ack, err := io.ReadAll(st)
		if err != nil || len(ack) == 0 {
			t.Fatalf("attempt %d: no ack: %v", i, err)
		}
	}
	victim.WaitFor(t, "the DM after", func(ev chat.Event) bool { d, ok := ev.(chat.DirectMessage); return ok && d.Text == "after" })
	n := 0
	for _, ev := range victim.Events() {
		if d, ok := ev.(chat.DirectMessage); ok && d.Text == "once" {
			n++
		}
	}
	if n != 1 {
		t.Errorf("DM shown %d times, want 1", n)
	}
}

// A DM whose sender's nick breaks the nick rules is delivered and shown
// under the sender's ID tag alone (no nick), never refused.
func TestDMWithBadNickShownWithoutNick(t *testing.T) {
	victim := testutil.NewChat(t, testutil.NewNode(t))
	other := testutil.NewNode(t)
	if err := other.Host().Connect(context.Background(), testutil.Info(victim.Node)); err != nil {
		t.Fatal(err)
	}
	msg := &pb.DMFrame{Body: &pb.DMFrame_Message{Message: &pb.DirectMessage{
		Id: "00000000000000000000000000000002", Nick: "bob[A1LeKv]>", Text: "it is me", SentAtMs: time.Now().UnixMilli()}}}
	st, err := other.Host().NewStream(context.Background(), victim.ID(), chat.DMProtocol)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.Write(frame(t, msg)); err != nil {
		t.Fatal(err)
	}
	st.CloseWrite()
	st.SetReadDeadline(time.Now().Add(testutil.Timeout))
	if ack, err := io.ReadAll(st); err != nil || len(ack) == 0 {
		t.Fatalf("no ack: %v", err)
	}
	dm := victim.WaitFor(t, "the DM", func(ev chat.Event) bool { _, ok := ev.(chat.DirectMessage); return ok }).(chat.DirectMessage)
	if dm.Nick != "" || dm.From != other.ID() {
		t.Errorf("DM shown as from %q (%s), want no nick from %s", dm.Nick, dm.From, other.ID())
	}
}

// DMs sent back to back go out several at a time on one stream, without
// waiting for each ack: each is still shown once, in the order sent, and
// acknowledged once.
func TestDMBurstArrivesOnceInOrder(t *testing.T) {
	alice := testutil.NewChat(t, testutil.NewNode(t), chat.WithNick("alice"), chat.WithLimits(chat.Unlimited()))
	bob := testutil.NewChat(t, testutil.NewNode(t), chat.WithNick("bob"), chat.WithLimits(chat.Unlimited()))
	if err := alice.Node.Host().Connect(context.Background(), testutil.Info(bob.Node)); err != nil {
		t.Fatal(err)
	}
	const n = 300 // several windows
	var ids []string
	for i := range n {
		id, err := alice.SendDM(bob.ID().String(), fmt.Sprint("dm ", i))
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, id)
	}
	if err := alice.Drain(context.Background()); err != nil {
		t.Fatal(err)
	}
	bob.WaitFor(t, "the last DM", func(ev chat.Event) bool { d, ok := ev.(chat.DirectMessage); return ok && d.ID == ids[n-1] })
	alice.WaitFor(t, "the last delivered", func(ev chat.Event) bool { d, ok := ev.(chat.Delivered); return ok && d.ID == ids[n-1] })
	var got []string
	for _, ev := range bob.Events() {
		if d, ok := ev.(chat.DirectMessage); ok {
			got = append(got, d.ID)
		}
	}
	if !slices.Equal(got, ids) {
		t.Errorf("bob shows %d DMs, want the %d sent, each once and in order", len(got), n)
	}
	delivered := map[string]int{}
	for _, ev := range alice.Events() {
		if d, ok := ev.(chat.Delivered); ok {
			delivered[d.ID]++
		}
	}
	for _, id := range ids {
		if delivered[id] != 1 {
			t.Errorf("DM %s: %d delivered events, want 1", id, delivered[id])
		}
	}
	if pending, err := alice.Outbox(); err != nil || len(pending) != 0 {
		t.Errorf("outbox holds %d DMs (%v), want none", len(pending), err)
	}
}

package chat_test

import (
	"context"
	"strings"
	"testing"
	"time"

	pubsub "github.com/libp2p/go-libp2p-pubsub"
	"google.golang.org/protobuf/proto"

	"github.com/parley-chat/parley/chat"
	"github.com/parley-chat/parley/chat/pb"
	"github.com/parley-chat/parley/internal/testutil"
)

func TestValidateEnvelope(t *testing.T) {
	now := time.Date(2026, 11, 21, 12, 0, 0, 0, time.UTC)
	good := func() *pb.Envelope {
		return &pb.Envelope{Kind: pb.Envelope_MESSAGE, Id: "0123456789abcdef0123456789abcdef", Room: "lobby",
			Nick: "alice", Text: "hello", SentAtMs: now.UnixMilli(), Lamport: 1}
	}
	tests := []struct {
		name    string
		mutate  func(*pb.Envelope)
		wantErr string
	}{
		{"valid message", func(*pb.Envelope) {}, ""},
		{"valid presence", func(e *pb.Envelope) { e.Kind, e.Text = pb.Envelope_PRESENCE, "" }, ""},
		{"multi-line text", func(e *pb.Envelope) { e.Text = "a\nb\tc" }, ""},
		{"text at the limit", func(e *pb.Envelope) { e.Text = strings.Repeat("x", chat.MaxTextBytes) }, ""},
		{"wrong room", func(e *pb.Envelope) { e.Room = "other" }, "room"},
		{"short id", func(e *pb.Envelope) { e.Id = "abc" }, "id"},
		{"uppercase id", func(e *pb.Envelope) { e.Id = strings.ToUpper(e.Id) }, "id"},
		{"empty nick", func(e *pb.Envelope) { e.Nick = "" }, "nick"},
		{"long nick", func(e *pb.Envelope) { e.Nick = strings.Repeat("n", 33) }, "nick"},
		{"empty text", func(e *pb.Envelope) { e.Text = "" }, "text"},
		{"oversized text", func(e *pb.Envelope) { e.Text = strings.Repeat("x", chat.MaxTextBytes+1) }, "too long"},
		{"escape sequence", func(e *pb.Envelope) { e.Text = "\x1b]0;pwned\a" }, "control"},
		{"invalid utf-8", func(e *pb.Envelope) { e.Text = "\xff\xfe" }, "UTF-8"},
		{"from the future", func(e *pb.Envelope) { e.SentAtMs = now.Add(time.Hour).UnixMilli() }, "future"},
		{"ancient", func(e *pb.Envelope) { e.SentAtMs = 0 }, "too old"},
		{"unknown kind", func(e *pb.Envelope) { e.Kind = 99 }, "kind"},
		{"presence with text", func(e *pb.Envelope) { e.Kind = pb.Envelope_PRESENCE }, "presence"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env := good()
			tt.mutate(env)
			err := chat.ValidateEnvelope(env, "lobby", now)
			switch {
			case tt.wantErr == "" && err != nil:
				t.Errorf("got %v, want no error", err)
			case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
				t.Errorf("got %v, want an error about %q", err, tt.wantErr)
			}
		})
	}
}

// Malformed envelopes published by a raw GossipSub peer are rejected (the
// validator says reject, not ignore) and never reach the front end.
func TestRoomRejectsMalformedEnvelopes(t *testing.T) {
	victim := testutil.NewChat(t, testutil.NewNode(t), chat.WithNick("victim"))
	if err := victim.Join("lobby"); err != nil {
		t.Fatal(err)
	}
	rogue := testutil.NewNode(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ps, err := pubsub.NewGossipSub(ctx, rogue.Host(), pubsub.WithFloodPublish(true))
	if err != nil {
		t.Fatal(err)
	}
	topic, err := ps.Join(chat.TopicPrefix + "lobby")
	if err != nil {
		t.Fatal(err)
	}
	defer topic.Close()
	if err := rogue.Host().Connect(ctx, testutil.Info(victim.Node)); err != nil {
		t.Fatal(err)
	}
	testutil.Eventually(t, "rogue sees victim in topic", func() bool { return len(topic.ListPeers()) > 0 })

	marshal := func(e *pb.Envelope) []byte { b, _ := proto.Marshal(e); return b }
	now := time.Now().UnixMilli()
	bad := [][]byte{
		[]byte("not protobuf at all \xff\xff"),
		marshal(&pb.Envelope{Kind: pb.Envelope_MESSAGE, Id: "0123456789abcdef0123456789abcdef", Room: "elsewhere", Nick: "r", Text: "wrong room", SentAtMs: now}),
		marshal(&pb.Envelope{Kind: pb.Envelope_MESSAGE, Id: "0123456789abcdef0123456789abcdee", Room: "lobby", Nick: "r", Text: strings.Repeat("x", 5000), SentAtMs: now}),
		marshal(&pb.Envelope{Kind: pb.Envelope_MESSAGE, Id: "0123456789abcdef0123456789abcded", Room: "lobby", Nick: "r", Text: "future", SentAtMs: now + int64(time.Hour/time.Millisecond)}),
	}
	for _, b := range bad {
		if err := topic.Publish(ctx, b); err != nil {
			t.Fatal(err)
		}
	}
	testutil.Eventually(t, "all bad envelopes rejected", func() bool { return victim.Rejected() == len(bad) })
	good := marshal(&pb.Envelope{Kind: pb.Envelope_MESSAGE, Id: "0123456789abcdef0123456789abcdec", Room: "lobby", Nick: "rogue", Text: "a fine message", SentAtMs: now})
	if err := topic.Publish(ctx, good); err != nil {
		t.Fatal(err)
	}
	m := victim.WaitMessage(t, "lobby", "a fine message")
	if m.From != rogue.ID() {
		t.Errorf("from = %s, want %s", m.From, rogue.ID())
	}
	for _, ev := range victim.Events() {
		if m, ok := ev.(chat.Message); ok && m.Text != "a fine message" {
			t.Errorf("malformed envelope reached the front end: %+v", m)
		}
	}
}

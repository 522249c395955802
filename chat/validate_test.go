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
	roomproto "github.com/parley-chat/parley/chat/protocol/room"
	"github.com/parley-chat/parley/internal/testutil"
)

// sealed encodes a room envelope with a public body.
func sealed(kind pb.Envelope_Kind, id, room, nick, text string, sentAtMs int64) []byte {
	env := &pb.Envelope{Kind: kind, Id: id, Room: room, SentAtMs: sentAtMs, Lamport: 1}
	roomproto.SealBody(env, &pb.Body{Nick: nick, Text: text})
	b, _ := proto.Marshal(env)
	return b
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
	topic, err := ps.Join(roomproto.Topic("lobby"))
	if err != nil {
		t.Fatal(err)
	}
	defer topic.Close()
	if err := rogue.Host().Connect(ctx, testutil.Info(victim.Node)); err != nil {
		t.Fatal(err)
	}
	testutil.Eventually(t, "rogue sees victim in topic", func() bool { return len(topic.ListPeers()) > 0 })

	now := time.Now().UnixMilli()
	bad := [][]byte{
		[]byte("not protobuf at all \xff\xff"),
		sealed(pb.Envelope_MESSAGE, "0123456789abcdef0123456789abcdef", "elsewhere", "r", "wrong room", now),
		sealed(pb.Envelope_MESSAGE, "0123456789abcdef0123456789abcdee", "lobby", "r", strings.Repeat("x", 5000), now),
		sealed(pb.Envelope_MESSAGE, "0123456789abcdef0123456789abcded", "lobby", "r", "future", now+int64(time.Hour/time.Millisecond)),
		sealed(pb.Envelope_MESSAGE, "0123456789abcdef0123456789abcdeb", "lobby", "r", "\x1b[2Jescape in the body", now),
	}
	for _, b := range bad {
		if err := topic.Publish(ctx, b); err != nil {
			t.Fatal(err)
		}
	}
	testutil.Eventually(t, "all bad envelopes rejected", func() bool { return victim.Rejected() == len(bad) })
	// A nick that imitates someone's ID tag is dropped, the message kept.
	imitation := sealed(pb.Envelope_MESSAGE, "0123456789abcdef0123456789abcdea", "lobby", "alice[FTbHkd]>", "trust me", now)
	if err := topic.Publish(ctx, imitation); err != nil {
		t.Fatal(err)
	}
	if m := victim.WaitMessage(t, "lobby", "trust me"); m.Nick != "" || m.From != rogue.ID() {
		t.Errorf("message with a bad nick shown as %q from %s, want no nick from %s", m.Nick, m.From, rogue.ID())
	}
	good := sealed(pb.Envelope_MESSAGE, "0123456789abcdef0123456789abcdec", "lobby", "rogue", "a fine message", now)
	if err := topic.Publish(ctx, good); err != nil {
		t.Fatal(err)
	}
	m := victim.WaitMessage(t, "lobby", "a fine message")
	if m.From != rogue.ID() {
		t.Errorf("from = %s, want %s", m.From, rogue.ID())
	}
	for _, ev := range victim.Events() {
		if m, ok := ev.(chat.Message); ok && m.Text != "a fine message" && m.Text != "trust me" {
			t.Errorf("malformed envelope reached the front end: %+v", m)
		}
	}
}

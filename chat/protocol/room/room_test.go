package room_test

import (
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	"github.com/parley-chat/parley/chat/content"
	"github.com/parley-chat/parley/chat/pb"
	"github.com/parley-chat/parley/chat/protocol/room"
)

// An envelope's header is what every node (a bridge too) checks; its
// body is what members open. Both are tested through the bytes a peer
// would send.
func TestValidate(t *testing.T) {
	now := time.Date(2026, 11, 21, 12, 0, 0, 0, time.UTC)
	// fields is an envelope before its body is sealed.
	type fields struct {
		Kind       pb.Envelope_Kind
		Id, Room   string
		Nick, Text string
		SentAtMs   int64
	}
	good := func() *fields {
		return &fields{Kind: pb.Envelope_MESSAGE, Id: "0123456789abcdef0123456789abcdef", Room: "lobby",
			Nick: "alice", Text: "hello", SentAtMs: now.UnixMilli()}
	}
	tests := []struct {
		name    string
		mutate  func(*fields)
		wantErr string
	}{
		{"valid message", func(*fields) {}, ""},
		{"valid presence", func(e *fields) { e.Kind, e.Text = pb.Envelope_PRESENCE, "" }, ""},
		{"multi-line text", func(e *fields) { e.Text = "a\nb\tc" }, ""},
		{"text at the limit", func(e *fields) { e.Text = strings.Repeat("x", content.MaxTextBytes) }, ""},
		{"wrong room", func(e *fields) { e.Room = "other" }, "room"},
		{"short id", func(e *fields) { e.Id = "abc" }, "id"},
		{"uppercase id", func(e *fields) { e.Id = strings.ToUpper(e.Id) }, "id"},
		// A bad nick is dropped, not rejected (TestBadNickIsDropped).
		{"empty nick", func(e *fields) { e.Nick = "" }, ""},
		{"long nick", func(e *fields) { e.Nick = strings.Repeat("n", 33) }, ""},
		{"empty text", func(e *fields) { e.Text = "" }, "text"},
		{"oversized text", func(e *fields) { e.Text = strings.Repeat("x", content.MaxTextBytes+1) }, "too long"},
		{"escape sequence", func(e *fields) { e.Text = "\x1b]0;pwned\a" }, "control"},
		{"invalid utf-8", func(e *fields) { e.Text = "\xff\xfe" }, "UTF-8"},
		{"from the future", func(e *fields) { e.SentAtMs = now.Add(time.Hour).UnixMilli() }, "future"},
		{"ancient", func(e *fields) { e.SentAtMs = 0 }, "too old"},
		{"unknown kind", func(e *fields) { e.Kind = 99 }, "kind"},
		{"oversized envelope", func(e *fields) { e.Nick = strings.Repeat("n", room.MaxEnvelopeBytes) }, "envelope"},
		{"presence with text", func(e *fields) { e.Kind = pb.Envelope_PRESENCE }, "presence"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := good()
			tt.mutate(f)
			env := &pb.Envelope{Kind: f.Kind, Id: f.Id, Room: f.Room, SentAtMs: f.SentAtMs, Lamport: 1}
			if err := room.SealBody(env, &pb.Body{Nick: f.Nick, Text: f.Text}); err != nil {
				// Go's encoder refuses invalid UTF-8; a peer's need not.
				env.Body = protowire.AppendString(protowire.AppendTag(nil, 2, protowire.BytesType), f.Text)
			}
			data, _ := proto.Marshal(env)
			got, err := room.DecodeEnvelope(data, "lobby", now)
			if err == nil {
				_, err = room.OpenBody(got)
			}
			switch {
			case tt.wantErr == "" && err != nil:
				t.Errorf("got %v, want no error", err)
			case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
				t.Errorf("got %v, want an error about %q", err, tt.wantErr)
			}
		})
	}
}

// A nick that breaks the nick rules is dropped from the body (the message
// is shown under its author's ID tag), not a reason to reject the message.
func TestBadNickIsDropped(t *testing.T) {
	now := time.Now()
	for _, nick := range []string{"alice[FTbHkd]>", "has space", "evil\u202egnp", "", strings.Repeat("n", 33)} {
		env := &pb.Envelope{Kind: pb.Envelope_MESSAGE, Id: "0123456789abcdef0123456789abcdef", Room: "lobby", SentAtMs: now.UnixMilli(), Lamport: 1}
		if err := room.SealBody(env, &pb.Body{Nick: nick, Text: "hi"}); err != nil {
			t.Fatal(err)
		}
		body, err := room.OpenBody(env)
		if err != nil {
			t.Errorf("nick %q: message rejected: %v", nick, err)
			continue
		}
		if body.GetNick() != "" || body.GetText() != "hi" {
			t.Errorf("nick %q: opened as nick %q text %q, want no nick and the text", nick, body.GetNick(), body.GetText())
		}
	}
}

func TestNames(t *testing.T) {
	if got := room.Topic("lobby"); got != "parley/room/1/lobby" {
		t.Errorf("topic %q, want parley/room/1/lobby", got)
	}
	if got := room.Rendezvous("lobby"); got != "parley/rendezvous/room/1/lobby" {
		t.Errorf("rendezvous %q", got)
	}
	for topic, want := range map[string]bool{"parley/room/1/lobby": true, "parley/room/lobby": false, "parley/room/1/": false, "other": false} {
		if _, ok := room.NameOf(topic); ok != want {
			t.Errorf("NameOf(%q) ok = %v, want %v", topic, ok, want)
		}
	}
}

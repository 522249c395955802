package chat_test

import (
	"context"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/parley-chat/parley/chat"
	"github.com/parley-chat/parley/chat/pb"
	"github.com/parley-chat/parley/internal/testutil"
)

// A message sent while no one is in the room says so, reaches the first
// member who turns up, and the sender learns that it did.
func TestMessageNoOneReceivedReachesTheFirstMember(t *testing.T) {
	alice := testutil.NewChat(t, testutil.NewNode(t), chat.WithNick("alice"))
	if err := alice.Join("lobby"); err != nil {
		t.Fatal(err)
	}
	id, err := alice.Send(context.Background(), "lobby", "anyone here?")
	if err != nil {
		t.Fatal(err)
	}
	if m := alice.WaitMessage(t, "lobby", "anyone here?"); !m.Unreceived {
		t.Errorf("a message no one could receive is shown as %+v, want Unreceived", m)
	}
	bob := testutil.NewChat(t, testutil.NewNode(t), chat.WithNick("bob"))
	if err := bob.Node.Host().Connect(context.Background(), testutil.Info(alice.Node)); err != nil {
		t.Fatal(err)
	}
	if err := bob.Join("lobby"); err != nil {
		t.Fatal(err)
	}
	if m := bob.WaitMessage(t, "lobby", "anyone here?"); m.ID != id || m.From != alice.ID() {
		t.Errorf("bob got %+v, want alice's message %s", m, id)
	}
	got := alice.WaitFor(t, "received", func(ev chat.Event) bool { _, ok := ev.(chat.Received); return ok }).(chat.Received)
	if got.By != bob.ID() || len(got.IDs) != 1 || got.IDs[0] != id || got.Room != "lobby" {
		t.Errorf("received %+v, want message %s reached bob", got, id)
	}
	// Once someone is there, a message is an ordinary one.
	if _, err := alice.Send(context.Background(), "lobby", "hi bob"); err != nil {
		t.Fatal(err)
	}
	if m := alice.WaitMessage(t, "lobby", "hi bob"); m.Unreceived {
		t.Error("a message sent with a member in the room is shown as not received")
	}
}

// A member that does not catch up from this node (it was in the room
// before, or it is a relay) gets the message sent again.
func TestMessageNoOneReceivedIsSentAgain(t *testing.T) {
	defer chat.SetResendAfter(50 * time.Millisecond)()
	alice := testutil.NewChat(t, testutil.NewNode(t), chat.WithNick("alice"))
	if err := alice.Join("lobby"); err != nil {
		t.Fatal(err)
	}
	id, err := alice.Send(context.Background(), "lobby", "anyone here?")
	if err != nil {
		t.Fatal(err)
	}
	raw := newRawMember(t, alice, "lobby") // reads the room, never asks for history
	ctx, cancel := context.WithTimeout(context.Background(), testutil.Timeout)
	defer cancel()
	for {
		msg, err := raw.sub.Next(ctx)
		if err != nil {
			t.Fatalf("the message no one received was not sent again: %v", err)
		}
		var env pb.Envelope
		if proto.Unmarshal(msg.Data, &env) == nil && env.GetId() == id {
			break
		}
	}
	got := alice.WaitFor(t, "received", func(ev chat.Event) bool { _, ok := ev.(chat.Received); return ok }).(chat.Received)
	if got.By != raw.ID() || len(got.IDs) != 1 || got.IDs[0] != id {
		t.Errorf("received %+v, want %s reached the raw member", got, id)
	}
}

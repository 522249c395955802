package app_test

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/parley-chat/parley/chat"
	"github.com/parley-chat/parley/internal/app"
	"github.com/parley-chat/parley/internal/testutil"
)

// session starts a chat node in room lobby and a session over it.
func session(t *testing.T, nick string) (*testutil.Chat, *app.Session) {
	t.Helper()
	c := testutil.NewChat(t, testutil.NewNode(t), chat.WithNick(nick))
	if err := c.Join("lobby"); err != nil {
		t.Fatal(err)
	}
	return c, app.New(c.Service).NewSession("lobby")
}

// run parses line as typed and executes it.
func run(t *testing.T, s *app.Session, line string) (app.Result, error) {
	t.Helper()
	cmd, err := app.ParseLine(line)
	if err != nil {
		return nil, err
	}
	return s.Execute(context.Background(), cmd)
}

// A refused nick says why, whichever way it is typed.
func TestNickRefusalSaysWhy(t *testing.T) {
	c, s := session(t, "alice")
	for line, why := range map[string]string{
		"/nick has space":      "spaces are not allowed",
		"/nick alice[FTbHkd]>": "imitate someone else's tag",
	} {
		_, err := run(t, s, line)
		if err == nil || !strings.Contains(err.Error(), why) {
			t.Errorf("%s: %v, want a refusal saying %q", line, err, why)
		}
	}
	cmd, err := app.ParseJSON(`{"cmd":"nick","nick":"a b"}`)
	if err == nil {
		_, err = s.Execute(context.Background(), cmd)
	}
	if err == nil || !strings.Contains(err.Error(), "spaces are not allowed") {
		t.Errorf("JSON nick with a space: %v", err)
	}
	if c.Nick() != "alice" {
		t.Errorf("nick changed to %q", c.Nick())
	}
}

// A room name may be typed with the '#' front ends show before it.
func TestRoomNamesTakeAHash(t *testing.T) {
	c, s := session(t, "alice")
	res, err := run(t, s, "/join #dev")
	if err != nil {
		t.Fatalf("/join #dev: %v", err)
	}
	if rl := res.(app.RoomList); rl.Current != "dev" {
		t.Errorf("after /join #dev the current room is %q", rl.Current)
	}
	if _, err := run(t, s, "/room #lobby"); err != nil || s.Current() != "lobby" {
		t.Errorf("/room #lobby: %v, current %q", err, s.Current())
	}
	cmd, err := app.ParseJSON(`{"cmd":"leave","room":"#dev"}`)
	if err == nil {
		_, err = s.Execute(context.Background(), cmd)
	}
	if err != nil || slices.Contains(c.Rooms(), "dev") {
		t.Errorf("leave #dev: %v, rooms %v", err, c.Rooms())
	}
}

// /dm takes a peer as it is shown (nick[ID tag]), the ID tag alone, and
// says "that is you" for your own nick.
func TestDMTargetsAsShown(t *testing.T) {
	alice, s := session(t, "alice")
	bob := testutil.NewChat(t, testutil.NewNode(t), chat.WithNick("bob"))
	if err := bob.Node.Host().Connect(context.Background(), testutil.Info(alice.Node)); err != nil {
		t.Fatal(err)
	}
	if err := bob.Join("lobby"); err != nil {
		t.Fatal(err)
	}
	alice.WaitPeerJoined(t, "lobby", bob.ID())
	testutil.Eventually(t, "alice knows bob's nick", func() bool { return alice.NickOf(bob.ID()) == "bob" })
	id := bob.ID().String()
	tag := id[len(id)-6:]
	for _, target := range []string{"bob", "bob[" + tag + "]", "[" + tag + "]", tag, "whoever[" + tag + "]"} {
		res, err := run(t, s, "/dm "+target+" hi")
		if err != nil {
			t.Errorf("/dm %s: %v", target, err)
			continue
		}
		if sent := res.(app.Sent); sent.To != bob.ID() {
			t.Errorf("/dm %s went to %s, want bob", target, sent.To)
		}
	}
	if _, err := run(t, s, "/msg bob hi"); err != nil {
		t.Errorf("/msg: %v", err)
	}
	for _, self := range []string{"alice", "alice[" + alice.ID().String()[len(alice.ID().String())-6:] + "]"} {
		_, err := run(t, s, "/dm "+self+" hi")
		if !errors.Is(err, chat.ErrSelf) || !strings.Contains(err.Error(), "that is you") {
			t.Errorf("/dm %s: %v, want \"that is you\"", self, err)
		}
	}
}

func TestSplitText(t *testing.T) {
	long := strings.Repeat("word ", 1000) // 5000 bytes
	parts := app.SplitText(long, 4096)
	if len(parts) != 2 || len(parts[0]) > 4096 || strings.HasSuffix(parts[0], " ") {
		t.Fatalf("split into %d parts of %d bytes, want 2 cut at a space", len(parts), len(parts[0]))
	}
	if strings.Join(parts, " ") != strings.TrimSuffix(long, " ") && strings.Join(parts, " ") != long {
		t.Error("the parts are not the text")
	}
	// No space or line break: cut at a character boundary, never inside one.
	runes := strings.Repeat("é", 3000) // 6000 bytes
	parts = app.SplitText(runes, 4096)
	if len(parts) != 2 || strings.Join(parts, "") != runes {
		t.Errorf("split of multibyte text lost or broke characters")
	}
}

// A text longer than a message holds is never cut silently: it goes out
// as several messages, in order, and the result says so.
func TestLongTextIsSentInParts(t *testing.T) {
	c, s := session(t, "alice")
	res, err := run(t, s, strings.Repeat("x", 5000))
	if err != nil {
		t.Fatal(err)
	}
	sent := res.(app.Sent)
	if len(sent.IDs) != 2 || sent.ID != sent.IDs[0] {
		t.Fatalf("sent %+v, want 2 messages", sent)
	}
	total := 0
	for _, id := range sent.IDs {
		m := c.WaitFor(t, "part "+id, func(ev chat.Event) bool { m, ok := ev.(chat.Message); return ok && m.ID == id }).(chat.Message)
		total += len(m.Text)
	}
	if total != 5000 {
		t.Errorf("%d bytes arrived, want 5000", total)
	}
	if _, err := run(t, s, strings.Repeat("x", 17*4096)); err == nil || !strings.Contains(err.Error(), "too long") {
		t.Errorf("a text of 17 messages: %v, want a refusal saying it is too long", err)
	}
}

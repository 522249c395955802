package app_test

import (
	"context"
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

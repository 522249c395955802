package web_test

import (
	"strings"
	"testing"

	"github.com/parley-chat/parley/chat/invite"
	"github.com/parley-chat/parley/internal/testutil"
	"github.com/parley-chat/parley/internal/web"
)

// The API makes a private room and its link, gives a link to any joined
// room, and joins by link; a bad link is the client's mistake (400).
func TestInviteAPI(t *testing.T) {
	alice := newNode(t, "alice", web.Config{})
	bob := newNode(t, "bob", web.Config{})
	var inv struct {
		Room, Link string
		Private    bool
	}
	if code := alice.call(t, "POST", "/api/v1/private", `{"room":"team"}`, &inv); code != 200 || inv.Room != "team" || !inv.Private {
		t.Fatalf("POST /private: %d %+v", code, inv)
	}
	if l, err := invite.Decode(inv.Link); err != nil || !l.Private() || l.Room != "team" {
		t.Fatalf("private link %q: %+v, %v", inv.Link, l, err)
	}
	var again struct{ Link string }
	if code := alice.call(t, "GET", "/api/v1/rooms/team/invite", "", &again); code != 200 || again.Link != inv.Link {
		t.Errorf("GET invite: %d, link %q; want the same link", code, again.Link)
	}
	if err := bob.Node.Host().Connect(t.Context(), testutil.Info(alice.Node)); err != nil {
		t.Fatal(err)
	}
	var joined struct {
		Room  string
		Rooms []struct{ Room string }
	}
	if code := bob.call(t, "POST", "/api/v1/rooms", `{"room":"`+inv.Link+`"}`, &joined); code != 200 || joined.Room != "team" {
		t.Fatalf("join by link: %d %+v", code, joined)
	}
	bob.WaitPeerJoined(t, "team", alice.ID())
	if code := alice.call(t, "POST", "/api/v1/rooms/team/messages", `{"text":"hi bob"}`, nil); code/100 != 2 {
		t.Fatalf("say: %d", code)
	}
	bob.WaitMessage(t, "team", "hi bob")
	var e apiError
	if code := bob.call(t, "POST", "/api/v1/rooms", `{"room":"parley://join/eyJ2Ijo5LCJyb29tIjoieCJ9"}`, &e); code != 400 || !strings.Contains(e.Error, "newer Parley") {
		t.Errorf("bad link: %d %q, want 400 saying it is from a newer Parley", code, e.Error)
	}
}

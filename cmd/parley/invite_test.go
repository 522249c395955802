package main_test

import (
	"os"
	"strings"
	"testing"
)

// An invite link is the whole setup: bob and carol, given nothing but a
// link (no --bootstrap), reach alice's relay and chat with her, in a
// private room and in a public one.
func TestJoinByInviteLink(t *testing.T) {
	r := start(t, "relay", "relay", "--json", "--data", t.TempDir(), "--listen", "/ip4/127.0.0.1/tcp/0")
	_, rAddr := r.Ready()
	a := start(t, "alice", loopbackArgs(t, "join", "lobby", "--nick", "alice", "--bootstrap", rAddr)...)
	aID, _ := a.Ready()

	a.Send(`{"cmd":"private","room":"team"}`)
	inv := a.Event("invite", "room", "team")
	private, _ := inv["link"].(string)
	a.Send("/invite lobby")
	public, _ := a.Event("invite", "room", "lobby")["link"].(string)
	for _, l := range []string{private, public} {
		if !strings.HasPrefix(l, "parley://join/") {
			t.Fatalf("invite link %q", l)
		}
	}
	if private == public {
		t.Fatal("the private and the public room have the same link")
	}

	b := start(t, "bob", loopbackArgs(t, "join", private, "--nick", "bob")...)
	bID, _ := b.Ready()
	c := start(t, "carol", loopbackArgs(t, "join", public, "--nick", "carol")...)
	cID, _ := c.Ready()
	a.Event("peer-joined", "room", "team", "peer", bID)
	b.Event("peer-joined", "room", "team", "peer", aID)
	a.Event("peer-joined", "room", "lobby", "peer", cID)
	c.Event("peer-joined", "room", "lobby", "peer", aID)

	a.Send(`{"cmd":"send","room":"team","text":"only for the team"}`)
	b.Event("message", "room", "team", "text", "only for the team", "from", aID)
	b.Send("thanks")
	a.Event("message", "room", "team", "text", "thanks", "from", bID)
	c.Send("hi from carol")
	a.Event("message", "room", "lobby", "text", "hi from carol", "from", cID)
	for _, p := range []*proc{a, b, c} {
		p.CloseAndWait()
	}
	r.Signal(os.Interrupt)
	r.WaitExit()
}

package main_test

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/parley-chat/parley/internal/netlab"
	"github.com/parley-chat/parley/internal/proctest"
)

// joinLinkIn starts a chat node on a lab host with nothing but its rooms
// (invite links among them): no --bootstrap.
func joinLinkIn(t *testing.T, h *netlab.Host, nick string, rooms ...string) *proc {
	t.Helper()
	args := append([]string{"join"}, rooms...)
	args = append(args, "--json", "--log-level", "debug", "--nick", nick, "--data", t.TempDir(),
		"--listen", "/ip4/0.0.0.0/tcp/4001", "--listen", "/ip4/0.0.0.0/udp/4001/quic-v1")
	return startIn(t, h, nick, args...)
}

// Across two NATs that allow no hole punching, alice makes a private room
// and invites bob (LAN B) and carol (LAN B) by link alone: bob chats with
// her in the private room through the relay, carol gets into #lobby by
// its public link and, in the public #team, sees nothing of the private
// one; the relay's database never holds the private text.
func TestLabPrivateRoomByInviteLink(t *testing.T) {
	lab := netlab.Setup(t, netlab.Config{NATA: netlab.FullyRandom, NATB: netlab.FullyRandom})
	relayData := t.TempDir()
	relay, relayAddr := startRelay(t, lab, relayData)
	relayID := relay.Event("ready")["peer"].(string)
	alice := joinIn(t, lab.A1, "alice", relayAddr)
	aliceID, _ := alice.Ready()
	alice.Event("relay-reservation")
	alice.Send(`{"cmd":"private","room":"team"}`)
	private := alice.Event("invite", "room", "team")["link"].(string)
	alice.Send(`{"cmd":"invite","room":"lobby"}`)
	public := alice.Event("invite", "room", "lobby")["link"].(string)

	bob := joinLinkIn(t, lab.B1, "bob", private)
	bobID, _ := bob.Ready()
	carol := joinLinkIn(t, lab.B2, "carol", public, "team")
	carolID, _ := carol.Ready()
	for _, p := range []*proc{bob, carol} {
		p.Event("peer-joined", "peer", relayID) // the link's relay carries their rooms
	}
	// The relay carries the private room (under its derived name) for both.
	inPrivate := func(p string) func(proctest.Event) bool {
		return func(ev proctest.Event) bool {
			return ev["event"] == "peer-joined" && ev["peer"] == p && ev["room"] != "lobby" && ev["room"] != "team"
		}
	}
	relay.WaitFor("alice in the private room", inPrivate(aliceID))
	relay.WaitFor("bob in the private room", inPrivate(bobID))
	relay.Event("peer-joined", "room", "lobby", "peer", carolID)

	const secret = "the private plan across two NATs"
	alice.Send(`{"cmd":"send","room":"team","text":"` + secret + `"}`)
	bob.Event("message", "room", "team", "text", secret, "from", aliceID)
	bob.Send("understood")
	alice.Event("message", "room", "team", "text", "understood", "from", bobID)
	carol.Send(`{"cmd":"send","room":"lobby","text":"carol is here"}`)
	alice.Event("message", "room", "lobby", "text", "carol is here", "from", carolID)
	for _, ev := range carol.Snapshot() {
		if ev["event"] == "message" && (ev["text"] == secret || ev["text"] == "understood") {
			t.Errorf("carol, in the public #team, saw the private room: %v", ev)
		}
	}

	// Dave (LAN A) joins by the same link; alice removes bob: dave moves
	// to the new key with her, bob hears nothing more.
	dave := joinLinkIn(t, lab.A2, "dave", private)
	daveID, _ := dave.Ready()
	relay.WaitFor("dave in the private room", inPrivate(daveID))
	alice.Send("hello dave")
	dave.Event("message", "room", "team", "text", "hello dave", "from", aliceID)
	bob.Event("message", "room", "team", "text", "hello dave", "from", aliceID)
	dave.Send("hi all") // so alice has heard dave in the room
	alice.Event("message", "room", "team", "text", "hi all", "from", daveID)
	alice.Send(`{"cmd":"kick","room":"team","to":"` + bobID + `"}`)
	alice.Event("info")
	dave.WaitFor("the new key", func(ev proctest.Event) bool {
		return ev["event"] == "info" && strings.Contains(fmt.Sprint(ev["text"]), "new key (epoch 1)")
	})
	alice.Send("bob is out")
	dave.Event("message", "room", "team", "text", "bob is out", "from", aliceID)
	dave.Send("so he is")
	alice.Event("message", "room", "team", "text", "so he is", "from", daveID)
	for _, ev := range bob.Snapshot() {
		if ev["event"] == "message" && (ev["text"] == "bob is out" || ev["text"] == "so he is") {
			t.Errorf("bob, removed, got %v", ev)
		}
	}
	for _, p := range []*proc{alice, bob, carol, dave} {
		p.CloseAndWait()
	}
	relay.Signal(os.Interrupt)
	relay.WaitExit()
	files, _ := filepath.Glob(filepath.Join(relayData, "*"))
	if len(files) == 0 {
		t.Fatal("the relay kept no data directory files")
	}
	publicSeen := false // the control: a public room's text is there to be found
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			continue // a directory or the lock
		}
		publicSeen = publicSeen || bytes.Contains(data, []byte("carol is here"))
		for _, text := range []string{secret, "understood"} {
			if bytes.Contains(data, []byte(text)) {
				t.Errorf("the relay's %s holds %q in plain text", filepath.Base(f), text)
			}
		}
	}
	if !publicSeen {
		t.Error("the relay's files do not hold the public #lobby's text either: the search proves nothing")
	}
}

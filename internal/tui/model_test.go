package tui

import (
	"errors"
	"fmt"
	"regexp"
	"strings"
	"testing"

	tea "github.com/charmbracelet/bubbletea"
	"github.com/charmbracelet/lipgloss"
	"github.com/charmbracelet/x/ansi"
	"github.com/muesli/termenv"

	"github.com/parley-chat/parley/chat"
	"github.com/parley-chat/parley/internal/app"
)

func TestSwitchingRoomsAndUnreadCounts(t *testing.T) {
	f := newFake(t, "alice", "lobby", "dev")
	h := newHarness(t, f, 100, 30, "lobby", "dev")
	bob := newID(t)

	h.events(msg("lobby", bob, "bob", "hello lobby", 1))
	h.screenHas("hello lobby", "bob["+shortID(bob)+"]")

	// Lines in a room that is not open count as unread; a mention of
	// this node's nick is marked.
	h.events(msg("dev", bob, "bob", "in dev one", 2), msg("dev", bob, "bob", "in dev two", 3))
	h.screenLacks("in dev one")
	if got := h.listRow("#dev"); !strings.HasSuffix(got, " 2") || strings.Contains(got, "@") {
		t.Errorf("list row of #dev %q: want 2 unread, no mention mark", got)
	}
	h.events(msg("dev", bob, "bob", "alice: look", 4))
	if got := h.listRow("#dev"); !strings.HasSuffix(got, "@3") {
		t.Errorf("list row of #dev %q: want @3 (a mention among 3 unread)", got)
	}
	// History and this node's own lines are not unread.
	old := msg("dev", bob, "bob", "old line", -60)
	old.Backfill = true
	h.events(old, msg("dev", f.id, "alice", "my own", 5))
	if got := h.listRow("#dev"); !strings.HasSuffix(got, "@3") {
		t.Errorf("list row of #dev %q after history and an own line: want still @3", got)
	}

	// Alt+number opens the list's conversation: rooms sorted, #dev first.
	h.alt('1')
	h.screenHas("#dev>", "in dev one", "in dev two", "alice: look", "old line")
	h.screenLacks("hello lobby")
	if got := h.listRow("#dev"); strings.HasSuffix(got, "3") {
		t.Errorf("list row of #dev %q after opening it: unread not cleared", got)
	}

	// Ctrl+N and Ctrl+P step through the list, wrapping around.
	h.key(tea.KeyCtrlN)
	h.screenHas("#lobby>", "hello lobby")
	h.key(tea.KeyCtrlN)
	h.screenHas("#dev>")
	h.key(tea.KeyCtrlP)
	h.screenHas("#lobby>")

	// A click on a row of the list opens it.
	row := -1
	for y, c := range h.m.listRows {
		if c != nil && c.name == "dev" {
			row = y
		}
	}
	if row < 0 {
		t.Fatal("#dev is not in the list")
	}
	h.send(tea.MouseMsg{X: 2, Y: row, Button: tea.MouseButtonLeft, Action: tea.MouseActionPress})
	h.screenHas("#dev>")

	// Text goes to the open room. Words that name keys, read at once
	// (fast typing, a slow link), are text.
	h.enter("hi dev: up down left right end home tab esc pgup enter ctrl+c")
	cmds := f.commands()
	if last := cmds[len(cmds)-1]; last.Kind != app.Say || last.Room != "dev" || last.Text != "hi dev: up down left right end home tab esc pgup enter ctrl+c" {
		t.Errorf("typed line ran %+v, want say %q to dev", last, "hi dev: up down left right end home tab esc pgup enter ctrl+c")
	}
}

func TestScrollbackLoadsOlderHistory(t *testing.T) {
	f := newFake(t, "alice", "lobby")
	bob := newID(t)
	const stored = 250
	for i := range stored {
		f.stored["lobby"] = append(f.stored["lobby"], msg("lobby", bob, "bob", fmt.Sprintf("line %03d", i), i-1000))
	}
	h := newHarness(t, f, 80, 24, "lobby")
	// At join the node replays its newest 50 as history.
	var replay []chat.Event
	for _, m := range f.stored["lobby"][stored-50:] {
		m.Backfill = true
		replay = append(replay, m)
	}
	h.events(replay...)
	h.screenHas("line 249", "┊")
	h.screenLacks("line 199")

	// Scrolling up to the top loads the page before the oldest line.
	for range 10 {
		h.key(tea.KeyPgUp)
	}
	if len(f.pages) == 0 || f.pages[0] != "lobby "+f.stored["lobby"][200].ID {
		t.Fatalf("history pages read: %q, want the first before %s", f.pages, f.stored["lobby"][200].ID)
	}
	h.screenLacks("line 249")
	// New lines do not move a view that is scrolled up.
	before := h.screen()
	h.events(msg("lobby", bob, "bob", "a live line", 1))
	after := h.screen()
	if strings.Contains(after, "a live line") {
		t.Errorf("a new line yanked the scrolled-up view:\n%s", after)
	}
	if linesAbove(before) != linesAbove(after) {
		t.Errorf("the view moved when a line arrived\nbefore:\n%s\nafter:\n%s", before, after)
	}
	if !strings.Contains(after, "↓ 1 new") {
		t.Errorf("no sign of the new line below:\n%s", after)
	}

	// The wheel scrolls on until everything is loaded and the first
	// stored line shows.
	for range 200 {
		h.send(tea.MouseMsg{X: 30, Y: 5, Button: tea.MouseButtonWheelUp, Action: tea.MouseActionPress})
	}
	h.screenHas("line 000", "start of history reached")
	if c := h.m.view(); !c.exhausted || len(c.entries) < stored+1 {
		t.Errorf("after scrolling to the top: exhausted %v, %d lines; want the whole history (%d) and the live line", c.exhausted, len(c.entries), stored)
	}
	// Esc goes back to the newest line.
	h.key(tea.KeyEsc)
	h.screenHas("a live line")
	h.screenLacks("line 000")
}

// linesAbove is the screen without its last rows (the "new lines below"
// marker, status and input), to compare what a view shows.
func linesAbove(s string) string {
	l := strings.Split(s, "\n")
	return strings.Join(l[:len(l)-4], "\n")
}

func TestCompletion(t *testing.T) {
	f := newFake(t, "alice", "lobby", "dev")
	bob, bobby, carol := newID(t), newID(t), newID(t)
	f.setPeers(
		chat.PeerInfo{ID: bob, Nick: "bob", Rooms: []string{"lobby"}, Path: "lan"},
		chat.PeerInfo{ID: bobby, Nick: "bobby", Rooms: []string{"lobby", "music"}, Path: "direct"},
		chat.PeerInfo{ID: carol, Nick: "carol", Rooms: []string{"lobby"}, Path: "lan"},
	)
	h := newHarness(t, f, 80, 24, "lobby", "dev")
	value := func() string { return h.m.input.Value() }
	tab := func() { h.key(tea.KeyTab) }
	clear := func() { h.m.input.Reset() }

	h.typeText("/jo")
	tab()
	if value() != "/join " {
		t.Errorf("/jo⇥ = %q, want %q", value(), "/join ")
	}
	h.typeText("mu")
	tab()
	if value() != "/join music" {
		t.Errorf("/join mu⇥ = %q, want %q (a room a peer is in)", value(), "/join music")
	}
	clear()

	h.typeText("/room d")
	tab()
	if value() != "/room dev" {
		t.Errorf("/room d⇥ = %q, want %q", value(), "/room dev")
	}
	clear()

	// A nick at the start of a line is addressed; Tab again cycles.
	h.typeText("bo")
	tab()
	if value() != "bob: " {
		t.Errorf("bo⇥ = %q, want %q", value(), "bob: ")
	}
	tab()
	if value() != "bobby: " {
		t.Errorf("bo⇥⇥ = %q, want %q", value(), "bobby: ")
	}
	tab()
	if value() != "bob: " {
		t.Errorf("bo⇥⇥⇥ = %q, want %q (cycled back)", value(), "bob: ")
	}
	clear()

	h.typeText("hi ca")
	tab()
	if value() != "hi carol " {
		t.Errorf("hi ca⇥ = %q, want %q", value(), "hi carol ")
	}
	clear()

	h.typeText("/dm car")
	tab()
	if value() != "/dm carol " {
		t.Errorf("/dm car⇥ = %q, want %q", value(), "/dm carol ")
	}
	clear()

	h.typeText("see #d")
	tab()
	if value() != "see #dev " {
		t.Errorf("see #d⇥ = %q, want %q", value(), "see #dev ")
	}
	clear()

	h.typeText("zz")
	tab()
	if value() != "zz" {
		t.Errorf("zz⇥ = %q, want it unchanged", value())
	}
}

func TestResize(t *testing.T) {
	f := newFake(t, "alice", "lobby")
	h := newHarness(t, f, 80, 24, "lobby")
	bob := newID(t)
	long := strings.Repeat("word ", 60)
	h.events(msg("lobby", bob, "bob", long+"END", 1))
	for _, size := range [][2]int{{80, 24}, {200, 50}, {50, 12}, {120, 40}} {
		h.send(tea.WindowSizeMsg{Width: size[0], Height: size[1]})
		checkScreenSize(t, h.screen(), size[0], size[1])
		h.screenHas("END")
	}
	h.key(tea.KeyF2)
	h.send(tea.WindowSizeMsg{Width: 200, Height: 50})
	checkScreenSize(t, h.screen(), 200, 50)
	h.screenHas("People in #lobby", "END")

	h.send(tea.WindowSizeMsg{Width: 20, Height: 5})
	h.screenHas("too small")
	h.send(tea.WindowSizeMsg{Width: 80, Height: 24})
	h.screenHas("END")
}

// checkScreenSize fails unless s has h lines of exactly w cells.
func checkScreenSize(t *testing.T, s string, w, h int) {
	t.Helper()
	lines := strings.Split(s, "\n")
	if len(lines) != h {
		t.Fatalf("%d×%d: screen has %d lines:\n%s", w, h, len(lines), s)
	}
	for i, l := range lines {
		if lw := ansi.StringWidth(l); lw != w {
			t.Fatalf("%d×%d: line %d is %d cells wide: %q", w, h, i, lw, l)
		}
	}
}

// Nothing a peer sends reaches the terminal as a control sequence.
func TestEscapeSequenceInMessageIsShownAsText(t *testing.T) {
	f := newFake(t, "alice", "lobby")
	h := newHarness(t, f, 100, 30, "lobby")
	evil := newID(t)
	payload := "\x1b[2J\x1b]0;owned\x07\x1b[31mred\u202etxt.exe\u009b6n\r\x7f bell\a"
	h.events(
		chat.Message{Room: "lobby", ID: "evil1", From: evil, Nick: "\x1b[1mmallory", Text: payload, SentAt: epoch},
		chat.DirectMessage{ID: "evil2", From: evil, Nick: "x\x1bP", Text: payload, SentAt: epoch},
		chat.Notice{Text: "notice " + payload},
		chat.Error{Err: errors.New("error " + payload)},
		chat.PeerJoined{Room: "lobby", Peer: evil, Nick: "\x1b]52;c;AAAA\x07"},
	)
	h.alt('2') // the DM
	dm := h.screen()
	h.alt('1')
	room := h.screen()
	for _, s := range []string{room, dm} {
		if strings.ContainsAny(s, "\x1b\x07\x7f\r\u009b\u202e") {
			t.Fatalf("a control character reached the screen: %q", s)
		}
	}
	h.screenHas("␛[2J", "␛]0;owned␇", "␛[1mmallory", "␡ bell␇")

	// In colour too, the only escape sequences are the UI's own styling.
	lipgloss.SetColorProfile(termenv.ANSI256)
	defer lipgloss.SetColorProfile(termenv.Ascii)
	for _, c := range h.m.convs() {
		for _, e := range c.entries {
			e.invalidate()
		}
	}
	sgr := regexp.MustCompile(`\x1b\[[0-9;]*m`)
	for _, k := range []rune{'1', '2'} {
		h.alt(k)
		s := sgr.ReplaceAllString(h.screen(), "")
		if strings.ContainsAny(s, "\x1b\x07\x7f\r\u009b\u202e") {
			t.Fatalf("a control sequence other than colour reached the screen: %q", s)
		}
	}
}

func TestDMShowsQueuedThenDelivered(t *testing.T) {
	f := newFake(t, "alice", "lobby")
	bob := newID(t)
	f.setPeers(chat.PeerInfo{ID: bob, Nick: "bob", Rooms: []string{"lobby"}, Path: "lan"})
	h := newHarness(t, f, 100, 30, "lobby")

	h.enter("/dm bob are you there")
	h.screenHas("DM to bob[" + shortID(bob) + "] sent")
	h.alt('2')
	h.screenHas("DM with bob[", "sending… are you there", "@bob>")
	id := h.m.view().entries[0].id

	h.events(chat.Queued{ID: id, To: bob, Err: errors.New("peer unreachable: failed to dial: a long libp2p story")})
	h.screenHas("queued are you there", "not delivered yet (peer unreachable): kept, and", "retried when the peer is back")
	h.screenLacks("libp2p story")
	h.events(chat.Delivered{ID: id, To: bob})
	h.screenHas("✓ are you there")
	h.screenLacks("queued", "not delivered yet")

	// Typed in the DM conversation, text is a DM; a receipt that comes
	// before the command's result is kept for it.
	h.typeText("second")
	_, cmd := h.m.Update(tea.KeyMsg{Type: tea.KeyEnter})
	res := cmd()
	sent := res.(resultMsg).res.(app.Sent)
	h.events(chat.Delivered{ID: sent.ID, To: bob})
	h.send(res)
	h.screenHas("✓ second")

	// A DM from bob while another conversation is open is unread and
	// marked.
	h.alt('1')
	h.events(chat.DirectMessage{ID: "in1", From: bob, Nick: "bob", Text: "yes", SentAt: epoch})
	if got := h.listRow("bob"); !strings.HasSuffix(got, "@1") {
		t.Errorf("list row of the DM %q: want @1", got)
	}
}

func TestInputHistoryPasteAndLimit(t *testing.T) {
	f := newFake(t, "alice", "lobby")
	h := newHarness(t, f, 100, 30, "lobby")

	h.enter("first")
	h.enter("second")
	h.typeText("draft")
	h.key(tea.KeyUp)
	if v := h.m.input.Value(); v != "second" {
		t.Errorf("Up: %q, want second", v)
	}
	h.key(tea.KeyUp)
	h.key(tea.KeyUp)
	if v := h.m.input.Value(); v != "first" {
		t.Errorf("Up Up Up: %q, want first", v)
	}
	h.key(tea.KeyDown)
	h.key(tea.KeyDown)
	if v := h.m.input.Value(); v != "draft" {
		t.Errorf("back down: %q, want the draft", v)
	}
	h.m.input.Reset()

	// A multi-line paste is one message, not one per line.
	n := len(f.commands())
	h.send(tea.KeyMsg{Type: tea.KeyRunes, Runes: []rune("one\r\ntwo\rthree"), Paste: true})
	if got := len(f.commands()); got != n {
		t.Fatalf("the paste sent %d commands before Enter", got-n)
	}
	h.screenHas("13/4096")
	h.key(tea.KeyEnter)
	cmds := f.commands()
	if len(cmds) != n+1 || cmds[n].Text != "one\ntwo\nthree" {
		t.Errorf("after the paste and Enter: %+v, want one message %q", cmds[n:], "one\ntwo\nthree")
	}

	// The limit shows while typing; a longer message is not sent.
	h.typeText(strings.Repeat("é", 2100))
	h.screenHas("too long: 4200/4096 bytes")
	h.key(tea.KeyEnter)
	if got := len(f.commands()); got != n+1 {
		t.Errorf("a message over the limit was sent")
	}
	h.screenHas("not sent: the message has 4200 bytes, at most 4096 fit")
	if h.m.input.Value() == "" {
		t.Error("the refused message was cleared from the input")
	}
}

func TestCommands(t *testing.T) {
	f := newFake(t, "alice", "lobby")
	bob := newID(t)
	relay := newID(t)
	f.setPeers(
		chat.PeerInfo{ID: bob, Nick: "bob", Rooms: []string{"lobby"}, Path: chat.PathRelayed, Relay: relay},
	)
	h := newHarness(t, f, 120, 30, "lobby")

	h.m.welcome([]string{"/ip4/127.0.0.1/tcp/4001/p2p/" + f.id.String()})
	h.screenHas("peer ID "+f.id.String(), "listening on:", "/ip4/127.0.0.1/tcp/4001")

	h.enter("/join dev")
	h.screenHas("#dev>")
	h.enter("/join lobby") // already in: opens it
	h.screenHas("#lobby>")
	h.screenLacks("already")
	h.enter("/join dev")
	h.screenHas("#dev>")
	h.enter("/room lobby")
	h.screenHas("#lobby>")
	h.enter("/room")
	h.screenHas("current room: #lobby; joined: #dev #lobby")
	h.enter("/nick alicia")
	h.screenHas("you are now alicia", "alicia[")
	h.enter("/peers")
	h.screenHas("bob["+shortID(bob)+"]", "relayed via the relay ["+shortID(relay)+"]")
	h.enter("/outbox")
	h.screenHas("outbox empty")
	h.enter("/help")
	h.screenHas("/dm PEER TEXT", "Alt+1…9")
	h.enter("/frobnicate")
	h.screenHas("unknown command /frobnicate")
	h.enter("/leave")
	h.screenHas("#dev>", "left #lobby")
	if got := h.m.convs(); len(got) != 1 || got[0].name != "dev" {
		t.Errorf("after /leave the list has %d conversations, want #dev only", len(got))
	}

	// The people pane: nick, short ID, path; the status line counts the
	// connections and shows the relay.
	h.enter("/join lobby")
	h.key(tea.KeyF2)
	h.screenHas("People in #lobby (2)", "bob "+shortID(bob), "relayed via "+shortID(relay), "1 peer connected", "no relay")
	h.events(chat.RelayReservation{Addrs: []string{"/ip4/127.0.0.1/tcp/4001/p2p/" + relay.String() + "/p2p-circuit"}})
	h.screenHas("relay " + shortID(relay))
	// A click on a person opens the DM with them.
	for y, p := range h.m.peopleRows {
		if p == bob {
			h.send(tea.MouseMsg{X: h.m.g.peopleX + 1, Y: y, Button: tea.MouseButtonLeft, Action: tea.MouseActionPress})
			break
		}
	}
	h.screenHas("@bob>")

	// Connected to nobody: a warning in plain words.
	f.setPeers()
	h.events(chat.PeerLeft{Room: "lobby", Peer: bob, Nick: "bob"})
	h.screenHas("connected to nobody")
}

func TestQuitKeepsRenderingUntilTheServiceCloses(t *testing.T) {
	for _, k := range []tea.KeyType{tea.KeyCtrlC, tea.KeyCtrlD} {
		f := newFake(t, "alice", "lobby")
		h := newHarness(t, f, 80, 24, "lobby")
		_, cmd := h.m.Update(tea.KeyMsg{Type: k})
		if cmd == nil {
			t.Fatalf("%v did nothing", k)
		}
		h.send(cmd())
		if !f.quitCalled() {
			t.Errorf("%v did not ask the program to quit", k)
		}
		h.screenHas("leaving")
		// What comes while leaving still shows, and is kept to be
		// printed once the screen is restored.
		h.events(chat.Notice{Text: "1 DMs not delivered yet stay queued"})
		h.screenHas("stay queued")
		_, cmd = h.m.Update(closedMsg{})
		if _, ok := cmd().(tea.QuitMsg); !ok {
			t.Errorf("the end of the subscription did not end the program")
		}
		if notes := h.m.ExitNotes(); len(notes) != 1 || !strings.Contains(notes[0], "stay queued") {
			t.Errorf("exit notes %q", notes)
		}
	}

	// /quit too.
	f := newFake(t, "alice", "lobby")
	h := newHarness(t, f, 80, 24, "lobby")
	h.enter("/quit")
	if !f.quitCalled() {
		t.Error("/quit did not ask the program to quit")
	}
	// Ctrl+D with text typed deletes, it does not quit.
	f = newFake(t, "alice", "lobby")
	h = newHarness(t, f, 80, 24, "lobby")
	h.typeText("ab")
	h.key(tea.KeyLeft)
	h.key(tea.KeyCtrlD)
	if f.quitCalled() || h.m.input.Value() != "a" {
		t.Errorf("Ctrl+D on %q: quit %v, input %q; want a deletion", "ab", f.quitCalled(), h.m.input.Value())
	}
}

package tui

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	tea "github.com/charmbracelet/bubbletea"
	"github.com/charmbracelet/lipgloss"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/muesli/termenv"

	"github.com/parley-chat/parley/chat"
	"github.com/parley-chat/parley/internal/app"
)

func TestMain(m *testing.M) {
	// Screens in tests are plain text: no colour escapes to compare.
	lipgloss.SetColorProfile(termenv.Ascii)
	os.Exit(m.Run())
}

func newID(t testing.TB) peer.ID {
	t.Helper()
	key, _, err := crypto.GenerateEd25519Key(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	id, err := peer.IDFromPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return id
}

// fake is a Backend that keeps rooms, peers and stored history in memory
// and records the commands it ran.
type fake struct {
	mu       sync.Mutex
	id       peer.ID
	nick     string
	rooms    []string
	current  string
	peers    []chat.PeerInfo
	stored   map[string][]chat.Message // room → history, oldest first
	executed []app.Command
	pages    []string // "room before" of each History call
	quit     bool
	seq      int
}

func newFake(t testing.TB, nick string, rooms ...string) *fake {
	return &fake{id: newID(t), nick: nick, rooms: slices.Sorted(slices.Values(rooms)), stored: map[string][]chat.Message{}}
}

func (f *fake) ID() peer.ID { return f.id }

func (f *fake) Nick() string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.nick
}

func (f *fake) Rooms() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.rooms)
}

func (f *fake) Quit() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.quit = true
}

func (f *fake) quitCalled() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.quit
}

func (f *fake) Execute(_ context.Context, cmd app.Command) (app.Result, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if cmd.Kind != app.Peers {
		f.executed = append(f.executed, cmd)
	}
	f.seq++
	id := fmt.Sprintf("%032x", f.seq)
	switch cmd.Kind {
	case app.Say:
		return app.Sent{ID: id, Room: cmd.Room}, nil
	case app.DM:
		to, err := peer.Decode(cmd.To)
		if err != nil {
			for _, p := range f.peers {
				if p.Nick == cmd.To {
					to, err = p.ID, nil
				}
			}
		}
		if err != nil {
			return nil, fmt.Errorf("dm: %w %q", chat.ErrUnknownPeer, cmd.To)
		}
		return app.Sent{ID: id, To: to}, nil
	case app.Join:
		if slices.Contains(f.rooms, cmd.Room) {
			return nil, fmt.Errorf("join room %q: %w", cmd.Room, chat.ErrAlreadyInRoom)
		}
		f.rooms = append(f.rooms, cmd.Room)
		slices.Sort(f.rooms)
		f.current = cmd.Room
		return app.RoomList{Current: f.current, Rooms: slices.Clone(f.rooms)}, nil
	case app.Leave:
		f.rooms = slices.DeleteFunc(f.rooms, func(r string) bool { return r == cmd.Room })
		if f.current == cmd.Room {
			f.current = ""
			if len(f.rooms) > 0 {
				f.current = f.rooms[0]
			}
		}
		return app.RoomList{Current: f.current, Rooms: slices.Clone(f.rooms)}, nil
	case app.Switch:
		if cmd.Room != "" {
			if !slices.Contains(f.rooms, cmd.Room) {
				return nil, fmt.Errorf("not in room %q", cmd.Room)
			}
			f.current = cmd.Room
		}
		return app.RoomList{Current: f.current, Rooms: slices.Clone(f.rooms)}, nil
	case app.Peers:
		return app.PeerList{Self: f.id, Peers: slices.Clone(f.peers)}, nil
	case app.Nick:
		f.nick = cmd.Text
		return app.Info{Text: "you are now " + cmd.Text}, nil
	case app.Outbox:
		return app.OutboxList{}, nil
	case app.Help:
		return app.Info{Text: app.HelpText}, nil
	case app.Quit:
		f.quit = true
		return app.Quitting{}, nil
	}
	return nil, errors.New("unknown command")
}

func (f *fake) History(room, before string, limit int) ([]chat.Message, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.pages = append(f.pages, room+" "+before)
	msgs := f.stored[room]
	end := len(msgs)
	if before != "" {
		end = slices.IndexFunc(msgs, func(m chat.Message) bool { return m.ID == before })
		if end < 0 {
			return nil, fmt.Errorf("no message %s", before)
		}
	}
	out := slices.Clone(msgs[max(0, end-limit):end])
	for i := range out {
		out[i].Backfill = true
	}
	return out, nil
}

func (f *fake) commands() []app.Command {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.executed)
}

func (f *fake) setPeers(ps ...chat.PeerInfo) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.peers = ps
}

// epoch is the tests' "now".
var epoch = time.Date(2026, 3, 2, 10, 0, 0, 0, time.UTC)

// harness drives a Model the way bubbletea does: each message through
// Update, each command run and its message fed back, in order, on the
// test's goroutine.
type harness struct {
	t *testing.T
	m *Model
	f *fake
}

func newHarness(t *testing.T, f *fake, w, h int, rooms ...string) *harness {
	t.Helper()
	hs := newHarnessOn(t, f, w, h, rooms...)
	hs.f = f
	return hs
}

// newHarnessOn drives a model of any Backend.
func newHarnessOn(t *testing.T, b Backend, w, h int, rooms ...string) *harness {
	t.Helper()
	m := New(context.Background(), b, rooms)
	m.loc = time.UTC
	m.sys.loc = time.UTC
	for _, c := range m.rooms {
		c.loc = time.UTC
	}
	m.now = func() time.Time { return epoch }
	hs := &harness{t: t, m: m}
	hs.do(m.Init())
	hs.send(tea.WindowSizeMsg{Width: w, Height: h})
	return hs
}

func (h *harness) send(msg tea.Msg) {
	h.t.Helper()
	_, cmd := h.m.Update(msg)
	h.do(cmd)
}

func (h *harness) do(cmd tea.Cmd) {
	h.t.Helper()
	if cmd == nil {
		return
	}
	switch msg := cmd().(type) {
	case nil:
	case tea.BatchMsg:
		for _, c := range msg {
			h.do(c)
		}
	default:
		h.send(msg)
	}
}

func (h *harness) events(evs ...chat.Event) { h.send(eventsMsg{events: evs}) }

// typeText types s as bubbletea reports it when it arrives in one read:
// each run of characters other than space as one message (so "up" typed
// quickly is KeyRunes "up"), each space as KeySpace.
func (h *harness) typeText(s string) {
	for i, word := range strings.Split(s, " ") {
		if i > 0 {
			h.send(tea.KeyMsg{Type: tea.KeySpace, Runes: []rune{' '}})
		}
		if word != "" {
			h.send(tea.KeyMsg{Type: tea.KeyRunes, Runes: []rune(word)})
		}
	}
}

func (h *harness) key(k tea.KeyType) { h.send(tea.KeyMsg{Type: k}) }

func (h *harness) alt(r rune) { h.send(tea.KeyMsg{Type: tea.KeyRunes, Runes: []rune{r}, Alt: true}) }

// enter types a line and sends it.
func (h *harness) enter(line string) {
	h.typeText(line)
	h.key(tea.KeyEnter)
}

func (h *harness) screen() string { return h.m.View() }

// screenHas fails the test unless the screen shows every want.
func (h *harness) screenHas(wants ...string) {
	h.t.Helper()
	s := h.screen()
	for _, w := range wants {
		if !strings.Contains(s, w) {
			h.t.Fatalf("screen does not show %q:\n%s", w, s)
		}
	}
}

func (h *harness) screenLacks(unwanted ...string) {
	h.t.Helper()
	s := h.screen()
	for _, w := range unwanted {
		if strings.Contains(s, w) {
			h.t.Fatalf("screen shows %q:\n%s", w, s)
		}
	}
}

// listRow is the conversation list's row of title.
func (h *harness) listRow(title string) string {
	h.t.Helper()
	for _, l := range strings.Split(h.screen(), "\n") {
		left, _, _ := strings.Cut(l, "│")
		if strings.Contains(left, " "+title) {
			return strings.TrimSpace(left)
		}
	}
	h.t.Fatalf("no %q in the conversation list:\n%s", title, h.screen())
	return ""
}

// msg is a room message from p at epoch plus minutes.
func msg(room string, p peer.ID, nick, text string, minutes int) chat.Message {
	return chat.Message{Room: room, ID: fmt.Sprintf("%s-%s-%d", room, text, minutes), From: p, Nick: nick, Text: text,
		SentAt: epoch.Add(time.Duration(minutes) * time.Minute), Lamport: uint64(minutes)}
}

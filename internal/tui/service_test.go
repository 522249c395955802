package tui

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	tea "github.com/charmbracelet/bubbletea"

	"github.com/parley-chat/parley/chat"
	"github.com/parley-chat/parley/internal/app"
	"github.com/parley-chat/parley/internal/testutil"
)

// feed runs the UI's event pump on a's events and hands its messages to
// the test, which applies them to the model on its own goroutine.
type feed struct {
	msgs chan tea.Msg
	stop chan struct{}
	wg   sync.WaitGroup
}

func startFeed(t *testing.T, a *app.App) *feed {
	t.Helper()
	sub, err := a.Subscribe(chat.WithBuffer(eventBuffer), chat.After(0))
	if err != nil {
		t.Fatal(err)
	}
	f := &feed{msgs: make(chan tea.Msg, 64), stop: make(chan struct{})}
	f.wg.Add(1)
	go func() {
		defer f.wg.Done()
		pump(a, sub, func(m tea.Msg) {
			select {
			case f.msgs <- m:
			case <-f.stop:
			}
		}, f.stop)
	}()
	t.Cleanup(func() {
		close(f.stop)
		f.wg.Wait()
	})
	return f
}

// until applies the feed's messages to the model until the screen shows
// every want.
func (f *feed) until(h *harness, wants ...string) {
	h.t.Helper()
	deadline := time.NewTimer(testutil.Timeout)
	defer deadline.Stop()
	for {
		scr := h.screen()
		missing := ""
		for _, w := range wants {
			if !strings.Contains(scr, w) {
				missing = w
				break
			}
		}
		if missing == "" {
			return
		}
		select {
		case m := <-f.msgs:
			h.send(m)
		case <-deadline.C:
			h.t.Fatalf("no %q on the screen within %v:\n%s", missing, testutil.Timeout, scr)
		}
	}
}

// The UI against a real chat service on loopback: lines both ways, a DM
// delivered, scrollback read from the store, and the end of the program.
func TestWithARealChatService(t *testing.T) {
	alice := testutil.NewChat(t, testutil.NewNode(t), chat.WithNick("alice"))
	bob := testutil.NewChat(t, testutil.NewNode(t), chat.WithNick("bob"))
	if err := bob.Node.Host().Connect(context.Background(), testutil.Info(alice.Node)); err != nil {
		t.Fatal(err)
	}
	for _, c := range []*testutil.Chat{alice, bob} {
		if err := c.Join("lobby"); err != nil {
			t.Fatal(err)
		}
	}
	a := app.New(alice.Service)
	feed := startFeed(t, a)
	h := newHarnessOn(t, NewBackend(a, "lobby"), 100, 30, "lobby")
	alice.WaitPeerJoined(t, "lobby", bob.ID())
	bob.WaitPeerJoined(t, "lobby", alice.ID())

	if _, err := bob.Send(context.Background(), "lobby", "hi alice, bob here"); err != nil {
		t.Fatal(err)
	}
	feed.until(h, "hi alice, bob here", "bob["+shortID(bob.ID())+"]")

	h.enter("hello bob")
	bob.WaitMessage(t, "lobby", "hello bob")
	feed.until(h, "alice["+shortID(alice.ID())+"] hello bob")

	h.enter("/dm bob psst")
	bob.WaitFor(t, "the DM", func(ev chat.Event) bool { d, ok := ev.(chat.DirectMessage); return ok && d.Text == "psst" })
	h.alt('2')
	feed.until(h, "✓ psst")

	// Scrollback: a fresh window (nothing replayed) reads the store page
	// by page.
	const n = 130
	for i := range n {
		if _, err := bob.Send(context.Background(), "lobby", fmt.Sprintf("numbered %03d", i)); err != nil {
			t.Fatal(err)
		}
	}
	for i := range n {
		// Each: pubsub validates concurrently, so they may arrive out of
		// order.
		alice.WaitMessage(t, "lobby", fmt.Sprintf("numbered %03d", i))
	}
	w := newHarnessOn(t, NewBackend(a, "lobby"), 80, 24, "lobby")
	w.key(tea.KeyPgUp)
	w.screenHas(fmt.Sprintf("numbered %03d", n-1))
	for range 80 {
		w.key(tea.KeyPgUp)
	}
	w.screenHas("hi alice, bob here", "start of history reached")
	if got := len(w.m.view().entries); got != n+2 {
		t.Errorf("scrolled to the top: %d lines, want all %d stored", got, n+2)
	}

	// /quit asks the program to end; the UI ends with the subscription.
	h.enter("/quit")
	select {
	case <-a.Quitting():
	default:
		t.Fatal("/quit did not ask the program to end")
	}
	if err := a.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	for {
		m := <-feed.msgs
		if _, ok := m.(closedMsg); ok {
			_, cmd := h.m.Update(m)
			if _, ok := cmd().(tea.QuitMsg); !ok {
				t.Fatal("the end of the subscription did not end the UI")
			}
			break
		}
		h.send(m)
	}
}

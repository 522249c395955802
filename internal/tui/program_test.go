package tui

import (
	"bytes"
	"context"
	"slices"
	"testing"
	"time"

	tea "github.com/charmbracelet/bubbletea"
	"github.com/charmbracelet/x/exp/teatest"

	"github.com/parley-chat/parley/chat"
	"github.com/parley-chat/parley/internal/app"
)

// The model in a real bubbletea program (teatest's virtual terminal):
// it draws events, takes typed keys, and ends only when the service has
// closed the subscription after a quit.
func TestProgram(t *testing.T) {
	f := newFake(t, "alice", "lobby")
	m := New(context.Background(), f, []string{"lobby"})
	tm := teatest.NewTestModel(t, m, teatest.WithInitialTermSize(80, 24))
	wait := func(text string) {
		t.Helper()
		teatest.WaitFor(t, tm.Output(), func(b []byte) bool { return bytes.Contains(b, []byte(text)) },
			teatest.WithDuration(10*time.Second), teatest.WithCheckInterval(5*time.Millisecond))
	}
	wait("#lobby>")
	bob := newID(t)
	tm.Send(eventsMsg{events: []chat.Event{msg("lobby", bob, "bob", "hello through a program", 1)}})
	wait("hello through a program")

	tm.Type("typed here")
	tm.Send(tea.KeyMsg{Type: tea.KeyEnter})
	tm.Send(tea.KeyMsg{Type: tea.KeyCtrlC})
	wait("leaving")
	tm.Send(eventsMsg{events: []chat.Event{chat.Notice{Text: "2 DMs stay queued"}}, leaving: true})
	wait("2 DMs stay queued")
	tm.Send(closedMsg{})
	final := tm.FinalModel(t, teatest.WithFinalTimeout(10*time.Second)).(*Model)

	if !f.quitCalled() {
		t.Error("Ctrl+C did not ask the program to end")
	}
	if !slices.ContainsFunc(f.commands(), func(c app.Command) bool { return c.Kind == app.Say && c.Text == "typed here" && c.Room == "lobby" }) {
		t.Errorf("the typed line was not sent: %+v", f.commands())
	}
	if notes := final.ExitNotes(); len(notes) != 1 || notes[0] != "2 DMs stay queued" {
		t.Errorf("exit notes %q", notes)
	}
}

// Log lines written while the UI runs go to it, never to the terminal
// under it; before and after, they go to the fallback.
func TestLogsShowInsideTheUI(t *testing.T) {
	var fallback bytes.Buffer
	l := NewLogs(&fallback)
	l.Write([]byte("before\n"))
	got := make(chan tea.Msg, 16)
	l.attach(func(m tea.Msg) { got <- m })
	l.Write([]byte("level=WARN msg=one\nlevel=WARN "))
	l.Write([]byte("msg=two\n"))
	var lines []string
	for len(lines) < 2 {
		lines = append(lines, (<-got).(logMsg)...)
	}
	if !slices.Equal(lines, []string{"level=WARN msg=one", "level=WARN msg=two"}) {
		t.Errorf("the UI got %q", lines)
	}
	l.Write([]byte("partial"))
	l.detach()
	l.Write([]byte("after\n"))
	if fallback.String() != "before\npartialafter\n" {
		t.Errorf("the terminal got %q, want the lines from before and after the UI", fallback.String())
	}

	f := newFake(t, "alice", "lobby")
	h := newHarness(t, f, 80, 24, "lobby")
	h.send(logMsg{"level=WARN msg=\"\x1b[2Jboom\""})
	h.screenHas("log: level=WARN msg=\"␛[2Jboom\"")
}

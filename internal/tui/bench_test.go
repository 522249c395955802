package tui

import (
	"fmt"
	"testing"
	"time"

	tea "github.com/charmbracelet/bubbletea"
	"github.com/charmbracelet/lipgloss"
	"github.com/muesli/termenv"

	"github.com/parley-chat/parley/chat"
)

// BenchmarkIncomingLines measures what one incoming room line costs the
// UI: the model's update and a redraw of the whole screen, in colour.
// bubbletea calls View after every message, so the worst case is one line
// per update; the event pump batches lines that arrive together, which
// divides the redraws. The target is 1,000 lines/s with time to spare for
// input: a line must cost well under 1 ms. lines/s is what one core could
// take at this cost.
func BenchmarkIncomingLines(b *testing.B) {
	lipgloss.SetColorProfile(termenv.ANSI256)
	defer lipgloss.SetColorProfile(termenv.Ascii)
	for _, bc := range []struct {
		name   string
		w, h   int
		batch  int
		people bool
		scroll bool
	}{
		{"80x24", 80, 24, 1, false, false},
		{"200x50", 200, 50, 1, false, false},
		{"200x50/people", 200, 50, 1, true, false},
		{"200x50/scrolled-up", 200, 50, 1, false, true},
		{"200x50/batch-of-16", 200, 50, 16, false, false},
	} {
		b.Run(bc.name, func(b *testing.B) {
			f := newFake(b, "alice", "lobby", "dev")
			m := New(nil, f, []string{"lobby", "dev"})
			m.Update(tea.WindowSizeMsg{Width: bc.w, Height: bc.h})
			m.showPeople = bc.people
			var authors []chat.PeerInfo
			for i := range 8 {
				authors = append(authors, chat.PeerInfo{ID: newID(b), Nick: fmt.Sprintf("peer%d", i), Rooms: []string{"lobby"}, Path: "lan"})
			}
			m.Update(peersMsg{peers: authors})
			// A full buffer, as after a while of chat.
			at := time.Now()
			line := func(i int) chat.Event {
				a := authors[i%len(authors)]
				room := "lobby"
				if i%5 == 0 {
					room = "dev" // some lines go to the room not shown
				}
				return chat.Message{Room: room, ID: fmt.Sprintf("%032x", i), From: a.ID, Nick: a.Nick,
					Text: fmt.Sprintf("message %d: the quick brown fox jumps over the lazy dog, then some more words to wrap", i), SentAt: at}
			}
			for i := range maxEntries {
				m.Update(eventsMsg{events: []chat.Event{line(i)}})
			}
			m.View()
			if bc.scroll {
				m.scroll(20)
			}
			batch := make([]chat.Event, bc.batch)
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i += bc.batch {
				for j := range batch {
					batch[j] = line(maxEntries + i + j)
				}
				m.Update(eventsMsg{events: batch})
				m.View()
			}
			b.StopTimer()
			perLine := b.Elapsed().Seconds() / float64(b.N)
			b.ReportMetric(1/perLine, "lines/s")
		})
	}
}

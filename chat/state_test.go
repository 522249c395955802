package chat

import (
	"log/slog"
	"slices"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/parley-chat/parley/chat/storage"
	"github.com/parley-chat/parley/internal/store"
)

// A nick is as new as the send time of what carried it: a presence
// overtaken on another path, or a caught-up message, never renames a
// peer back, and each real change is reported once.
func TestNickBookKeepsTheNewestNickBySendTime(t *testing.T) {
	t0 := time.Now()
	at := func(s int) time.Time { return t0.Add(time.Duration(s) * time.Second) }
	alice := peer.ID("alice")
	type seen struct {
		nick       string
		arrive     int // seconds after t0
		sent       int
		wantChange bool
	}
	tests := []struct {
		name      string
		sightings []seen
		want      string
	}{
		{"a change is news once", []seen{{"alice", 0, 0, false}, {"alicia", 2, 1, true}, {"alicia", 3, 2, false}}, "alicia"},
		{"an older presence arriving later does not rename back", []seen{{"alice", 0, 0, false}, {"alicia", 2, 2, true}, {"alice", 3, 1, false}}, "alicia"},
		{"a caught-up message from before the change", []seen{{"alicia", 5, 5, false}, {"alice", 6, -10, false}}, "alicia"},
		{"renamed again", []seen{{"a", 0, 0, false}, {"b", 1, 1, true}, {"a", 2, 2, true}}, "a"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st, err := store.OpenMemory()
			if err != nil {
				t.Fatal(err)
			}
			defer st.Close()
			b, err := newNickBook(peer.ID("self"), "me", st, slog.Default())
			if err != nil {
				t.Fatal(err)
			}
			for i, s := range tt.sightings {
				changes := b.seen(alice, s.nick, at(s.arrive), at(s.sent))
				if got := len(changes) == 1; got != s.wantChange || len(changes) > 1 {
					t.Errorf("sighting %d (%q sent at %ds): changes %v, want a change: %v", i, s.nick, s.sent, changes, s.wantChange)
				}
			}
			if got := b.get(alice); got != tt.want {
				t.Errorf("nick %q, want %q", got, tt.want)
			}
			known, err := st.KnownPeers(time.Time{})
			if err != nil {
				t.Fatal(err)
			}
			if !slices.ContainsFunc(known, func(k storage.KnownPeer) bool { return k.ID == alice.String() && k.Nick == tt.want }) {
				t.Errorf("stored %+v, want alice as %q", known, tt.want)
			}
		})
	}
}

package store_test

import (
	"fmt"
	"slices"
	"testing"

	"github.com/parley-chat/parley/internal/store"
)

// DMs that arrived together are stored in one go, each once: a copy in the
// same batch or of one stored before is reported as not new.
func TestAddReceivedDMsInOneBatch(t *testing.T) {
	for _, disk := range []bool{false, true} {
		var s *store.Store
		var err error
		if disk {
			s, err = store.Open(t.TempDir())
		} else {
			s, err = store.OpenMemory()
		}
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		dm := func(peer, id string) store.DM {
			return store.DM{ID: id, Peer: peer, Nick: "n", Text: "t " + id, SentAt: 1}
		}
		if _, err := s.AddReceivedDMs([]store.DM{dm("bob", "1")}); err != nil {
			t.Fatal(err)
		}
		tests := []struct {
			batch []store.DM
			want  []bool
		}{
			{[]store.DM{dm("bob", "1"), dm("bob", "2"), dm("bob", "2"), dm("carol", "1")}, []bool{false, true, false, true}},
			{[]store.DM{dm("bob", "3")}, []bool{true}},
			{[]store.DM{dm("bob", "3"), dm("bob", "2")}, []bool{false, false}},
		}
		for i, tt := range tests {
			added, err := s.AddReceivedDMs(tt.batch)
			if err != nil || !slices.Equal(added, tt.want) {
				t.Errorf("disk=%v batch %d: added %v (%v), want %v", disk, i, added, err, tt.want)
			}
		}
		if got, _ := s.ReceivedDMs(""); len(got) != 4 {
			t.Errorf("disk=%v: %d DMs stored, want 4", disk, len(got))
		}
		// Texts and times come back as they were (a batch travels as JSON).
		odd := store.DM{ID: "odd", Peer: "frank", Nick: `ni"ck`, Text: "\"q\" \\ ünï 🎉\n\u2028", SentAt: 1_764_590_000_123}
		if _, err := s.AddReceivedDMs([]store.DM{odd, dm("frank", "x")}); err != nil {
			t.Fatal(err)
		}
		if got, _ := s.ReceivedDMs("frank"); len(got) != 2 || got[1] != odd {
			t.Errorf("disk=%v: stored %+v, want %+v among them", disk, got, odd)
		}
		// A batch longer than one statement takes: every other one new.
		var big []store.DM
		for i := range 150 {
			big = append(big, dm("dave", fmt.Sprint(i/2)))
		}
		added, err := s.AddReceivedDMs(big)
		if err != nil {
			t.Fatal(err)
		}
		for i, a := range added {
			if a != (i%2 == 0) {
				t.Fatalf("disk=%v: long batch, DM %d new = %v", disk, i, a)
			}
		}
		ids := make([]string, 0, 150)
		for i := range 150 {
			id := fmt.Sprint("q", i)
			s.QueueDM(store.DM{ID: id, Peer: "erin", Text: "x", SentAt: 1})
			ids = append(ids, id)
		}
		if err := s.MarkDMsDelivered(ids[:140]); err != nil {
			t.Fatal(err)
		}
		if n, _ := s.CountPendingDMs("erin"); n != 10 {
			t.Errorf("disk=%v: %d pending after marking 140 of 150, want 10", disk, n)
		}
	}
}

// Acks that came together are marked in one go; the outbox keeps the
// others, in the order they were queued.
func TestMarkDMsDelivered(t *testing.T) {
	s, err := store.OpenMemory()
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	// One millisecond for all: the order is still the queue's.
	ids := []string{"d", "a", "c", "b", "e"}
	for _, id := range ids {
		if err := s.QueueDM(store.DM{ID: id, Peer: "bob", Nick: "alice", Text: id, SentAt: 7}); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.MarkDMsDelivered([]string{"a", "b"}); err != nil {
		t.Fatal(err)
	}
	pending, err := s.PendingDMs("bob")
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, m := range pending {
		got = append(got, m.ID)
	}
	if want := []string{"d", "c", "e"}; !slices.Equal(got, want) {
		t.Errorf("pending %v, want %v", got, want)
	}
}

package store_test

import (
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/parley-chat/parley/internal/store"
)

func open(t *testing.T, dir string) *store.Store {
	t.Helper()
	s, err := store.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func msg(id string, sentAt int64, lamport uint64) store.RoomMessage {
	return store.RoomMessage{ID: id, Room: "lobby", Author: "peer", Nick: "n", Text: "t " + id, SentAt: sentAt, Lamport: lamport, Raw: []byte(id)}
}

func TestRoomHistoryOrderDedupAndPaging(t *testing.T) {
	s := open(t, t.TempDir())
	now := time.Now().UnixMilli()
	// Inserted out of order; the order is sent-at, then Lamport, then ID.
	for _, m := range []store.RoomMessage{msg("c", now, 1), msg("a", now, 2), msg("b", now, 1), msg("d", now-10, 9)} {
		if added, err := s.AddRoomMessage(m); err != nil || !added {
			t.Fatalf("add %s: %v %v", m.ID, added, err)
		}
	}
	if added, _ := s.AddRoomMessage(msg("a", now, 2)); added {
		t.Error("the same message ID was stored twice")
	}
	var got []string
	cur := store.Cursor{}
	for {
		page, err := s.RoomMessagesAfter("lobby", cur, 2)
		if err != nil {
			t.Fatal(err)
		}
		if len(page) == 0 {
			break
		}
		for _, m := range page {
			got = append(got, m.ID)
		}
		cur = page[len(page)-1].Cursor()
	}
	if strings.Join(got, "") != "dbca" {
		t.Errorf("paged history %v, want d b c a", got)
	}
	recent, _ := s.RecentRoomMessages("lobby", 2)
	if len(recent) != 2 || recent[0].ID != "c" || recent[1].ID != "a" {
		t.Errorf("recent = %v, want c a", recent)
	}
}

// StoredRoomMessages answers for the room asked about only, with the
// stored positions, also for more IDs than one query takes.
func TestStoredRoomMessages(t *testing.T) {
	s := open(t, t.TempDir())
	now := time.Now().UnixMilli()
	other := msg("elsewhere", now, 1)
	other.Room = "dev"
	for _, m := range []store.RoomMessage{msg("a", now, 1), msg("b", now+5, 7), other} {
		if _, err := s.AddRoomMessage(m); err != nil {
			t.Fatal(err)
		}
	}
	ids := []string{"b", "missing", "elsewhere", "a", ""}
	for i := range 1200 { // past one query's share of parameters
		ids = append(ids, fmt.Sprintf("unknown-%d", i))
	}
	got, err := s.StoredRoomMessages("lobby", ids)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]store.Cursor{"a": {SentAt: now, Lamport: 1, ID: "a"}, "b": {SentAt: now + 5, Lamport: 7, ID: "b"}}
	if !maps.Equal(got, want) {
		t.Errorf("stored = %v, want %v", got, want)
	}
}

func TestPrune(t *testing.T) {
	s := open(t, t.TempDir())
	now := time.Now()
	s.AddRoomMessage(msg("old", now.Add(-48*time.Hour).UnixMilli(), 1))
	for i := 0; i < 5; i++ {
		s.AddRoomMessage(msg(fmt.Sprint(i), now.UnixMilli()+int64(i), 1))
	}
	n, err := s.Prune("lobby", store.Retention{MaxMessages: 3, MaxAge: 24 * time.Hour})
	if err != nil || n != 3 {
		t.Fatalf("pruned %d (%v), want 3 (one too old, two over the count)", n, err)
	}
	left, _ := s.RecentRoomMessages("lobby", 10)
	if len(left) != 3 || left[0].ID != "2" {
		t.Errorf("left %v, want 2 3 4", left)
	}
}

func TestOutboxAndInboxSurviveReopen(t *testing.T) {
	dir := t.TempDir()
	s := open(t, dir)
	s.QueueDM(store.DM{ID: "x", Peer: "bob", Nick: "alice", Text: "hi", SentAt: 1})
	s.QueueDM(store.DM{ID: "y", Peer: "bob", Nick: "alice", Text: "there", SentAt: 2})
	s.MarkDelivered("x")
	s.AddReceivedDM(store.DM{ID: "z", Peer: "carol", Nick: "carol", Text: "yo", SentAt: 3})
	s.Close()

	s = open(t, dir)
	pending, err := s.PendingDMs("")
	if err != nil || len(pending) != 1 || pending[0].ID != "y" {
		t.Fatalf("pending after reopen %v (%v), want y", pending, err)
	}
	if added, _ := s.AddReceivedDM(store.DM{ID: "z", Peer: "carol"}); added {
		t.Error("a DM received before the restart was taken as new")
	}
	s.GiveUp("y", "expired")
	if pending, _ := s.PendingDMs("bob"); len(pending) != 0 {
		t.Errorf("given-up DM still pending: %v", pending)
	}
}

func TestCorruptDatabaseIsAnErrorAndKept(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, store.FileName)
	junk := []byte(strings.Repeat("this is not a database ", 200))
	os.WriteFile(path, junk, 0o600)
	if _, err := store.Open(dir); err == nil || !strings.Contains(err.Error(), "move it away") {
		t.Fatalf("got %v, want an error that says what to do", err)
	}
	if got, _ := os.ReadFile(path); string(got) != string(junk) {
		t.Error("the damaged database was modified")
	}
}

// The integrity check at open runs with a small page cache (so that it
// does not leave the cache full of every page it read) and gives the
// connection its own limit back.
func TestOpenRestoresCacheSize(t *testing.T) {
	for _, open := range []struct {
		name string
		open func() (*store.Store, error)
	}{
		{"file", func() (*store.Store, error) { return store.Open(t.TempDir()) }},
		{"memory", store.OpenMemory},
	} {
		t.Run(open.name, func(t *testing.T) {
			st, err := open.open()
			if err != nil {
				t.Fatal(err)
			}
			defer st.Close()
			var n int
			if err := st.DB().QueryRow("PRAGMA cache_size").Scan(&n); err != nil {
				t.Fatal(err)
			}
			if n != -2000 { // SQLite's default
				t.Errorf("cache_size %d after open, want SQLite's default -2000", n)
			}
		})
	}
}

func TestUnwritableDirectoryIsAnError(t *testing.T) {
	if os.Getuid() == 0 {
		// root writes anywhere; a file in the way of the directory does it.
		dir := filepath.Join(t.TempDir(), "file")
		os.WriteFile(dir, nil, 0o600)
		if _, err := store.Open(dir); err == nil {
			t.Fatal("opening a store where a file stands succeeded")
		}
		return
	}
	dir := t.TempDir()
	os.Chmod(dir, 0o500)
	if _, err := store.Open(filepath.Join(dir, "sub")); err == nil {
		t.Fatal("opening a store in a read-only directory succeeded")
	}
}

// Known nicks survive a restart; the newest sighting wins.
func TestKnownPeersSurviveRestart(t *testing.T) {
	dir := t.TempDir()
	s, err := store.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now().Truncate(time.Millisecond)
	for _, p := range []store.KnownPeer{
		{ID: "bob", Nick: "bob", LastSeen: now.Add(-time.Hour)},
		{ID: "bob", Nick: "robert", LastSeen: now},
		{ID: "bob", Nick: "stale", LastSeen: now.Add(-2 * time.Hour)}, // an old backfilled message
		{ID: "carol", Nick: "carol", LastSeen: now.Add(-48 * time.Hour)},
	} {
		if err := s.SavePeers(p); err != nil {
			t.Fatal(err)
		}
	}
	s.Close()
	s = open(t, dir)
	got, err := s.KnownPeers(now.Add(-24 * time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[0].ID != "bob" || got[0].Nick != "robert" || !got[0].LastSeen.Equal(now) {
		t.Errorf("known peers seen in the last day: %+v, want bob as robert seen %v", got, now)
	}
	if all, _ := s.KnownPeers(time.Time{}); len(all) != 2 || all[1].ID != "carol" {
		t.Errorf("all known peers: %+v, want bob then carol", all)
	}
}

// A database migrated to version 3 before 002 existed (the branches merged
// in that order) still gets 002's table.
func TestLateLowerMigrationRuns(t *testing.T) {
	dir := t.TempDir()
	s := open(t, dir)
	if _, err := s.DB().Exec(`DROP TABLE known_peers`); err != nil {
		t.Fatal(err)
	}
	s.Close()
	s = open(t, dir)
	if err := s.SavePeers(store.KnownPeer{ID: "bob", Nick: "bob", LastSeen: time.Now()}); err != nil {
		t.Fatalf("known_peers missing after reopening a version-3 database: %v", err)
	}
}

func TestAuthorLamport(t *testing.T) {
	s := open(t, t.TempDir())
	now := time.Now().UnixMilli()
	for _, m := range []store.RoomMessage{msg("a", now, 3), msg("b", now, 7), {ID: "c", Room: "lobby", Author: "other", Nick: "n", Text: "t", SentAt: now, Lamport: 5, Raw: []byte("c")}} {
		if _, err := s.AddRoomMessage(m); err != nil {
			t.Fatal(err)
		}
	}
	for _, tt := range []struct {
		below uint64
		want  uint64
		ok    bool
	}{{^uint64(0), 7, true}, {7, 3, true}, {4, 3, true}, {3, 0, false}} {
		got, ok, err := s.AuthorLamport("lobby", "peer", tt.below)
		if err != nil || got != tt.want || ok != tt.ok {
			t.Errorf("below %d: %d %v %v, want %d %v", tt.below, got, ok, err, tt.want, tt.ok)
		}
	}
}

func TestInboxBytesAndPendingCount(t *testing.T) {
	st, err := store.OpenMemory()
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	for i, text := range []string{"héllo", "world"} {
		if _, err := st.AddReceivedDM(store.DM{ID: fmt.Sprint("in", i), Peer: "alice", Nick: "al", Text: text, SentAt: 1}); err != nil {
			t.Fatal(err)
		}
	}
	if n, err := st.InboxBytes("alice"); err != nil || n != int64(len("héllo")+len("world")+2*len("al")) {
		t.Errorf("InboxBytes(alice) = %d, %v; want the bytes of both texts and nicks", n, err)
	}
	if n, _ := st.InboxBytes("bob"); n != 0 {
		t.Errorf("InboxBytes(bob) = %d, want 0", n)
	}
	for i := range 3 {
		if err := st.QueueDM(store.DM{ID: fmt.Sprint("out", i), Peer: "bob", Text: "x", SentAt: 1}); err != nil {
			t.Fatal(err)
		}
	}
	st.MarkDelivered("out0")
	if n, err := st.CountPendingDMs("bob"); err != nil || n != 2 {
		t.Errorf("CountPendingDMs(bob) = %d, %v; want 2 (one delivered)", n, err)
	}
}

// The background checkpoints connect only once something was written: a
// store that is only read never opens their connection.
func TestCheckpointerConnectsOnFirstWrite(t *testing.T) {
	dir := t.TempDir()
	s, err := store.Open(dir) // creates the tables: writes
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if s, err = store.Open(dir); err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	time.Sleep(400 * time.Millisecond) // the loop's first ticks: 100, 200 ms
	if s.CheckpointerConnected() {
		t.Fatal("the checkpoint connection was made before any write")
	}
	if err := s.QueueDM(store.DM{ID: fmt.Sprintf("%032d", 1), Peer: "bob", Nick: "alice", Text: "hi", SentAt: 1}); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second) // the loop backs off to 2 s while idle
	for !s.CheckpointerConnected() {
		if time.Now().After(deadline) {
			t.Fatal("no checkpoint 10 s after a write")
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// The writers' connection leaves checkpoints to the background one (up to
// a backstop), and what that one copies is all there after a reopen.
func TestCheckpointsRunBesideTheWriters(t *testing.T) {
	dir := t.TempDir()
	s, err := store.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	var auto int
	if err := s.DB().QueryRow(`PRAGMA wal_autocheckpoint`).Scan(&auto); err != nil {
		t.Fatal(err)
	}
	if auto != store.WALBackstopPages {
		t.Fatalf("writers' autocheckpoint %d pages, want the backstop %d", auto, store.WALBackstopPages)
	}
	const n = 300 // ~1,200 WAL frames: past SQLite's default of 1,000
	for i := range n {
		if err := s.QueueDM(store.DM{ID: fmt.Sprintf("%032d", i), Peer: "bob", Nick: "alice", Text: "hi", SentAt: int64(i)}); err != nil {
			t.Fatal(err)
		}
	}
	frames, copied, err := s.Checkpoint()
	if err != nil {
		t.Fatal(err)
	}
	if frames == 0 || copied != frames {
		t.Fatalf("checkpoint copied %d of %d WAL frames, want all of them", copied, frames)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s, err = store.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	got, err := s.PendingDMs("bob")
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != n {
		t.Fatalf("%d DMs after reopening, want %d", len(got), n)
	}
}

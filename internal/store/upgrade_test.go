package store

import (
	"os"
	"path/filepath"
	"testing"
)

// A database left by an earlier Parley, which stored the text of every
// room message in body, opens with every row readable and takes new rows
// (text stored once): here its files are copied while the old connection
// still holds WAL frames not yet in the database file, as a kill -9
// leaves them.
func TestDatabaseOfEarlierVersionOpens(t *testing.T) {
	old := t.TempDir()
	s, err := open("file:" + filepath.Join(old, FileName) + "?_pragma=journal_mode(WAL)&_pragma=synchronous(NORMAL)&_pragma=wal_autocheckpoint(0)")
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if _, err := s.db.Exec(`INSERT INTO room_messages (id, room, author, nick, body, sent_at_ms, lamport, stored_at_ms, raw)
		VALUES ('m1', 'lobby', 'peer', 'alice', 'hello from before', 1, 1, 1, x'00')`); err != nil {
		t.Fatal(err)
	}
	crashed := t.TempDir()
	for _, suffix := range []string{"", "-wal", "-shm"} {
		b, err := os.ReadFile(filepath.Join(old, FileName+suffix))
		if err != nil {
			t.Fatal(err)
		}
		if suffix == "-wal" && len(b) == 0 {
			t.Fatal("the row is not in the WAL: the test would not test recovery")
		}
		if err := os.WriteFile(filepath.Join(crashed, FileName+suffix), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	got, err := Open(crashed)
	if err != nil {
		t.Fatal(err)
	}
	defer got.Close()
	msgs, err := got.RecentRoomMessages("lobby", 10)
	if err != nil || len(msgs) != 1 || msgs[0].Text != "hello from before" {
		t.Fatalf("rows of the earlier database: %+v, %v", msgs, err)
	}
	if _, err := got.AddRoomMessage(RoomMessage{ID: "m2", Room: "lobby", Author: "peer", Nick: "bob", Text: "and now", SentAt: 2, Lamport: 2, Raw: []byte{0}}); err != nil {
		t.Fatal(err)
	}
}

package store_test

import (
	"fmt"
	"testing"

	"github.com/parley-chat/parley/internal/store"
)

func benchStores(b *testing.B, f func(b *testing.B, s *store.Store)) {
	for _, disk := range []bool{false, true} {
		b.Run(fmt.Sprintf("disk=%v", disk), func(b *testing.B) {
			var s *store.Store
			var err error
			if disk {
				s, err = store.Open(b.TempDir())
			} else {
				s, err = store.OpenMemory()
			}
			if err != nil {
				b.Fatal(err)
			}
			defer s.Close()
			f(b, s)
		})
	}
}

func BenchmarkDMOps(b *testing.B) {
	b.Run("QueueDM", func(b *testing.B) {
		benchStores(b, func(b *testing.B, s *store.Store) {
			for i := 0; b.Loop(); i++ {
				s.QueueDM(store.DM{ID: fmt.Sprintf("%032d", i), Peer: "bob", Nick: "alice", Text: "hello there", SentAt: int64(i)})
			}
		})
	})
	b.Run("AddReceivedDM", func(b *testing.B) {
		benchStores(b, func(b *testing.B, s *store.Store) {
			for i := 0; b.Loop(); i++ {
				s.AddReceivedDM(store.DM{ID: fmt.Sprintf("%032d", i), Peer: "bob", Nick: "alice", Text: "hello there", SentAt: int64(i)})
			}
		})
	})
	b.Run("QueueMark", func(b *testing.B) {
		benchStores(b, func(b *testing.B, s *store.Store) {
			for i := 0; b.Loop(); i++ {
				id := fmt.Sprintf("%032d", i)
				s.QueueDM(store.DM{ID: id, Peer: "bob", Nick: "alice", Text: "hello there", SentAt: int64(i)})
				s.MarkDelivered(id)
			}
		})
	})
	b.Run("CountPending", func(b *testing.B) {
		benchStores(b, func(b *testing.B, s *store.Store) {
			s.QueueDM(store.DM{ID: "x", Peer: "bob", Nick: "alice", Text: "hello there", SentAt: 1})
			for b.Loop() {
				s.CountPendingDMs("bob")
			}
		})
	})
}

// BenchmarkDMBatch is a receiver's batch of 32 DMs stored together and the
// sender's 32 acks marked together (per op: one batch each).
func BenchmarkDMBatch(b *testing.B) {
	const n = 32
	b.Run("AddReceivedDMs", func(b *testing.B) {
		benchStores(b, func(b *testing.B, s *store.Store) {
			batch := make([]store.DM, n)
			for i := 0; b.Loop(); i++ {
				for j := range batch {
					batch[j] = store.DM{ID: fmt.Sprintf("%032d", i*n+j), Peer: "bob", Nick: "alice", Text: "hello there", SentAt: int64(i)}
				}
				if _, err := s.AddReceivedDMs(batch); err != nil {
					b.Fatal(err)
				}
			}
		})
	})
	b.Run("MarkDMsDelivered", func(b *testing.B) {
		benchStores(b, func(b *testing.B, s *store.Store) {
			ids := make([]string, n)
			for i := 0; b.Loop(); i++ {
				b.StopTimer()
				for j := range ids {
					ids[j] = fmt.Sprintf("%032d", i*n+j)
					s.QueueDM(store.DM{ID: ids[j], Peer: "bob", Nick: "alice", Text: "hello there", SentAt: int64(i)})
				}
				b.StartTimer()
				if err := s.MarkDMsDelivered(ids); err != nil {
					b.Fatal(err)
				}
			}
		})
	})
}

package bench

import (
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/parley-chat/parley/internal/store"
)

// StoreOp is the time of one store operation on the DM and room paths, in
// memory (chat.New's default) and on disk (what `parley join` opens: WAL,
// synchronous=FULL, in a temporary directory).
type StoreOp struct {
	Name       string
	Mem, Disk  Dist
	PerMessage string // where the path calls it
}

// StoreOps times the store operations a DM round trip and a room message
// make: n iterations in memory, n/5 on disk.
func StoreOps(n int) ([]StoreOp, error) {
	mem, err := store.OpenMemory()
	if err != nil {
		return nil, err
	}
	defer mem.Close()
	dir, err := os.MkdirTemp("", "parley-bench-store")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	disk, err := store.Open(dir)
	if err != nil {
		return nil, err
	}
	defer disk.Close()

	ops := []StoreOp{
		{Name: "QueueDM", PerMessage: "sender, SendDM"},
		{Name: "PendingDMs", PerMessage: "sender, each flush of the outbox"},
		{Name: "AddReceivedDM", PerMessage: "receiver, before the ack"},
		{Name: "MarkDelivered", PerMessage: "sender, after the ack"},
		{Name: "AddRoomMessage (1 KB text, 1.25 KB signed message)", PerMessage: "every member, every room message"},
	}
	text := strings.Repeat("x", 100)
	body := strings.Repeat("y", 1024)
	raw := make([]byte, 1250) // the signed GossipSub message is kept too
	peer := "12D3KooWBenchPeer"
	for si, st := range []*store.Store{mem, disk} {
		iters := n
		if si == 1 {
			iters = max(n/5, 1)
		}
		samples := make([][]time.Duration, len(ops))
		timeOp := func(i int, f func() error) error {
			t0 := time.Now()
			err := f()
			samples[i] = append(samples[i], time.Since(t0))
			return err
		}
		for k := range iters {
			id := fmt.Sprintf("%032x", uint64(si)<<40|uint64(k))
			now := time.Now().UnixMilli()
			steps := []func() error{
				func() error { return st.QueueDM(store.DM{ID: id, Peer: peer, Nick: "bench", Text: text, SentAt: now}) },
				func() error { _, err := st.PendingDMs(peer); return err },
				func() error {
					_, err := st.AddReceivedDM(store.DM{ID: id, Peer: peer, Nick: "bench", Text: text, SentAt: now})
					return err
				},
				func() error { return st.MarkDelivered(id) },
				func() error {
					added, err := st.AddRoomMessage(store.RoomMessage{ID: id, Room: roomName, Author: peer, Nick: "bench", Text: body,
						SentAt: now, Lamport: uint64(k), Raw: raw})
					if err == nil && !added {
						err = errors.New("not stored")
					}
					return err
				},
			}
			for i, f := range steps {
				if err := timeOp(i, f); err != nil {
					return nil, fmt.Errorf("store %s: %w", ops[i].Name, err)
				}
			}
		}
		for i := range ops {
			if si == 0 {
				ops[i].Mem = NewDist(samples[i])
			} else {
				ops[i].Disk = NewDist(samples[i])
			}
		}
	}
	return ops, nil
}

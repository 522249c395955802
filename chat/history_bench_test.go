package chat_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/parley-chat/parley/chat"
	"github.com/parley-chat/parley/internal/store"
	"github.com/parley-chat/parley/internal/testutil"
)

// BenchmarkCatchUp measures backfill: a member that missed N messages
// joins and receives them from one peer over /parley/history/1.0.0.
//
//	go test ./chat -run '^$' -bench CatchUp -benchtime 1x
func BenchmarkCatchUp(b *testing.B) {
	for _, n := range []int{1000, 5000} {
		b.Run(fmt.Sprint(n), func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				b.StopTimer()
				alice := testutil.NewChat(b, testutil.NewNode(b), chat.WithNick("alice"))
				if err := alice.Join("lobby"); err != nil {
					b.Fatal(err)
				}
				for j := 0; j < n; j++ {
					if _, err := alice.Send(context.Background(), "lobby", fmt.Sprintf("message %d", j)); err != nil {
						b.Fatal(err)
					}
				}
				st, err := store.Open(b.TempDir()) // on disk, as for a user
				if err != nil {
					b.Fatal(err)
				}
				b.Cleanup(func() { st.Close() })
				late := testutil.NewChat(b, testutil.NewNode(b), chat.WithNick("late"), chat.WithHistory(0), chat.WithStore(st))
				if err := late.Node.Host().Connect(context.Background(), testutil.Info(alice.Node)); err != nil {
					b.Fatal(err)
				}
				b.StartTimer()
				start := time.Now()
				if err := late.Join("lobby"); err != nil {
					b.Fatal(err)
				}
				late.WaitMessage(b, "lobby", fmt.Sprintf("message %d", n-1))
				b.StopTimer()
				el := time.Since(start)
				b.ReportMetric(float64(n)/el.Seconds(), "msgs/s")
			}
		})
	}
}

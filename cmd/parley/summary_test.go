package main

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/parley-chat/parley/internal/metrics"
	"github.com/parley-chat/parley/internal/testutil"
)

// records hands every log record to a channel.
type records chan slog.Record

func (r records) Enabled(context.Context, slog.Level) bool        { return true }
func (r records) Handle(_ context.Context, rec slog.Record) error { r <- rec; return nil }
func (r records) WithAttrs([]slog.Attr) slog.Handler              { return r }
func (r records) WithGroup(string) slog.Handler                   { return r }

// The relay logs one summary line per interval at info level, and stops
// when its context ends.
func TestRelaySummaryLine(t *testing.T) {
	rm := metrics.NewRelay(prometheus.NewRegistry())
	b := testutil.NewBridge(t)
	recs := make(records, 16)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { summarize(ctx, slog.New(recs), b, rm, 20*time.Millisecond); close(done) }()
	rec := <-recs
	cancel()
	<-done
	if rec.Level != slog.LevelInfo || rec.Message != "relay summary" {
		t.Fatalf("logged %v %q, want an info line \"relay summary\"", rec.Level, rec.Message)
	}
	attrs := map[string]bool{}
	rec.Attrs(func(a slog.Attr) bool { attrs[a.Key] = true; return true })
	for _, k := range []string{"peers", "relayed_conns", "rooms", "members", "forwarded", "rate_limited"} {
		if !attrs[k] {
			t.Errorf("summary lacks %s: %v", k, attrs)
		}
	}
}

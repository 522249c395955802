package bench

import (
	"context"
	"io"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/network"
)

// The simulated link delivers what was written, in order, not before the
// one-way latency, and the close after the data.
func TestSimStream(t *testing.T) {
	const latency = 30 * time.Millisecond
	hs, err := SimHosts(latency, 20e6/8)(2)
	if err != nil {
		t.Fatal(err)
	}
	defer hs.Close()
	got := make(chan []byte, 1)
	hs.H[1].SetStreamHandler("/test", func(s network.Stream) {
		b, _ := io.ReadAll(s)
		got <- b
		s.Close()
	})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := hs.Connect(ctx, [][2]int{{0, 1}}); err != nil {
		t.Fatal(err)
	}
	s, err := hs.H[0].NewStream(ctx, hs.H[1].ID(), "/test")
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	var want []byte
	for i := range 50 {
		chunk := make([]byte, 300+i)
		for j := range chunk {
			chunk[j] = byte(i)
		}
		want = append(want, chunk...)
		if _, err := s.Write(chunk); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.CloseWrite(); err != nil {
		t.Fatal(err)
	}
	select {
	case b := <-got:
		if elapsed := time.Since(start); elapsed < latency {
			t.Errorf("arrived after %v, before the %v latency", elapsed, latency)
		}
		if string(b) != string(want) {
			t.Errorf("received %d bytes, not the %d written in order", len(b), len(want))
		}
	case <-ctx.Done():
		t.Fatal("nothing arrived")
	}
	if w := hs.Written(); w != int64(len(want)) {
		t.Errorf("counted %d bytes written, want %d", w, len(want))
	}
}

// A small Parley room on the simulated network delivers everything.
func TestSimRoom(t *testing.T) {
	if testing.Short() {
		t.Skip("starts 10 chat services")
	}
	cfg := DefaultSimConfig()
	cfg.N, cfg.Messages, cfg.Interval, cfg.ReadyTimeout = 10, 5, 100*time.Millisecond, time.Minute
	res, err := RunSim(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if res.Ratio() < 1 || res.WireBytes == 0 || res.Amplification <= 1 {
		t.Errorf("delivered %d of %d, %d bytes, amplification %.2f", res.Delivered, res.Expected, res.WireBytes, res.Amplification)
	}
}

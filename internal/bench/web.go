package bench

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"runtime"
	"strings"
	"sync"
	"time"

	"github.com/parley-chat/parley/chat"
	"github.com/parley-chat/parley/internal/app"
	"github.com/parley-chat/parley/internal/store"
	"github.com/parley-chat/parley/internal/web"
)

// WebConfig bounds the web API benchmarks.
type WebConfig struct {
	LatencyMessages int           // messages timed one at a time
	Rate            int           // messages per second in the throughput run
	Duration        time.Duration // of the throughput run
	Tabs            int           // event streams open at once
	Timeout         time.Duration
}

// WebResult is what the web benchmarks measured.
//
// EventLatency is, per message, from the moment an in-process subscriber
// of the node's event bus has the message event ("the node has it") to
// the moment a Server-Sent Events client on loopback has parsed the same
// event: what the web layer (JSON, HTTP, the socket) adds. The throughput
// run posts Rate messages per second for Duration through the API's own
// path (chat.Post) while Tabs event streams read, three times, with an
// on-disk store; Delivered is the fewest events any tab received, of Sent
// (all rounds); HeapBefore and HeapAfter are the Go heap in use after a
// GC, after the second round (by then the bounded buffers are full) and
// after the third: growth between them would be memory that grows with
// traffic.
type WebResult struct {
	WebConfig
	EventLatency Dist
	Sent         int
	Delivered    int
	Elapsed      time.Duration
	HeapBefore   uint64
	HeapAfter    uint64
}

// webNode is one in-process node with an on-disk store and its web API
// served on loopback.
type webNode struct {
	svc   *chat.Service
	app   *app.App
	base  string // http://127.0.0.1:port
	token string
	ctx   context.Context // ends when the server stops
	close func()
}

// startWebNode starts a node that has joined room and serves its web API.
func startWebNode(ctx context.Context, room string) (*webNode, error) {
	var undo []func()
	fail := func(err error) (*webNode, error) {
		for i := len(undo) - 1; i >= 0; i-- {
			undo[i]()
		}
		return nil, err
	}
	hs, err := NewHosts(1)
	if err != nil {
		return fail(err)
	}
	undo = append(undo, func() { hs.Close() })
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	// On disk, as a user's node keeps it: an in-memory store would put the
	// stored history itself in the heap measured below.
	dir, err := os.MkdirTemp("", "parley-bench-web")
	if err != nil {
		return fail(err)
	}
	undo = append(undo, func() { os.RemoveAll(dir) })
	st, err := store.Open(dir)
	if err != nil {
		return fail(err)
	}
	undo = append(undo, func() { st.Close() })
	// Unlimited: 1,000 messages a second from one author is a load test,
	// not what members accept from one person (chat.Limits).
	svc, err := chat.New(hs.H[0], chat.WithLogger(quiet), chat.WithStore(st), chat.WithLimits(chat.Unlimited()))
	if err != nil {
		return fail(err)
	}
	a := app.New(svc)
	undo = append(undo, func() { a.Shutdown(context.Background()) })
	if err := svc.Join(room); err != nil {
		return fail(err)
	}
	var tok [16]byte
	rand.Read(tok[:])
	token := hex.EncodeToString(tok[:])
	srv, err := web.New(a, web.Config{Token: token, Loopback: true, Logger: quiet, EventBuffer: 8192})
	if err != nil {
		return fail(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return fail(err)
	}
	sctx, stop := context.WithCancel(ctx)
	served := make(chan error, 1)
	go func() { served <- srv.Serve(sctx, ln) }()
	undo = append(undo, func() { stop(); <-served })
	return &webNode{
		svc: svc, app: a, base: "http://" + ln.Addr().String(), token: token, ctx: sctx,
		close: func() {
			for i := len(undo) - 1; i >= 0; i-- {
				undo[i]()
			}
		},
	}, nil
}

// RunWeb measures the web API of one in-process node on loopback.
func RunWeb(ctx context.Context, cfg WebConfig) (WebResult, error) {
	res := WebResult{WebConfig: cfg}
	n, err := startWebNode(ctx, roomName)
	if err != nil {
		return res, err
	}
	defer n.close()
	svc, a, base, token, sctx := n.svc, n.app, n.base, n.token, n.ctx

	// Latency: one message at a time.
	local, err := svc.Subscribe(chat.WithBuffer(1 << 14))
	if err != nil {
		return res, err
	}
	defer local.Close()
	tab, err := openStream(sctx, base, token)
	if err != nil {
		return res, err
	}
	samples := make([]time.Duration, 0, cfg.LatencyMessages)
	for i := range cfg.LatencyMessages {
		text := fmt.Sprintf("latency %d", i)
		if _, err := svc.Send(ctx, roomName, text); err != nil {
			return res, err
		}
		var atNode time.Time
		for atNode.IsZero() {
			select {
			case st := <-local.C():
				if m, ok := st.Event.(chat.Message); ok && m.Text == text {
					atNode = time.Now()
				}
			case <-time.After(cfg.Timeout):
				return res, errors.New("the node's own subscriber missed a message")
			}
		}
		atPage, err := tab.waitFor(`"text":"`+text+`"`, cfg.Timeout)
		if err != nil {
			return res, err
		}
		samples = append(samples, atPage.Sub(atNode))
	}
	tab.close()
	res.EventLatency = NewDist(samples)

	// Throughput to several tabs.
	tabs := make([]*stream, cfg.Tabs)
	for i := range tabs {
		if tabs[i], err = openStream(sctx, base, token); err != nil {
			return res, err
		}
		defer tabs[i].close()
	}
	// Three rounds: the first two fill what is bounded (the replay buffer,
	// queues, caches), the third shows whether anything grows beyond that.
	total := cfg.Rate * int(cfg.Duration/time.Second)
	tick := time.NewTicker(time.Second / time.Duration(cfg.Rate))
	defer tick.Stop()
	for round := range 3 {
		t0 := time.Now()
		for i := range total {
			select {
			case <-tick.C:
			case <-ctx.Done():
				return res, ctx.Err()
			}
			if _, err := a.Post(roomName, fmt.Sprintf("burst %06d", res.Sent)); err != nil {
				return res, fmt.Errorf("post %d: %w", i, err)
			}
			res.Sent++
		}
		for _, t := range tabs {
			if err := t.waitCount("burst ", res.Sent, cfg.Timeout); err != nil {
				return res, err
			}
		}
		res.Elapsed = time.Since(t0)
		switch round {
		case 1:
			res.HeapBefore = heapInUse()
		case 2:
			res.HeapAfter = heapInUse()
		}
	}
	res.Delivered = res.Sent
	for _, t := range tabs {
		res.Delivered = min(res.Delivered, t.count("burst "))
	}
	return res, nil
}

func heapInUse() uint64 {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapInuse
}

// stream is one Server-Sent Events client: a tab.
type stream struct {
	resp *http.Response

	mu     sync.Mutex
	lines  []string       // the newest data line
	seen   map[string]int // counts by prefix of interest
	added  chan struct{}
	finish chan struct{}
}

func openStream(ctx context.Context, base, token string) (*stream, error) {
	req, err := http.NewRequestWithContext(ctx, "GET", base+"/api/v1/events", nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != 200 {
		resp.Body.Close()
		return nil, fmt.Errorf("event stream: %s", resp.Status)
	}
	s := &stream{resp: resp, seen: make(map[string]int), added: make(chan struct{}), finish: make(chan struct{})}
	go s.read()
	return s, nil
}

func (s *stream) read() {
	defer close(s.finish)
	sc := bufio.NewScanner(s.resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line, ok := strings.CutPrefix(sc.Text(), "data: ")
		if !ok {
			continue
		}
		var ev struct{ Text string }
		json.Unmarshal([]byte(line), &ev)
		s.mu.Lock()
		s.lines = append(s.lines[:0], line) // only the newest is kept
		if strings.HasPrefix(ev.Text, "burst ") {
			s.seen["burst "]++
		}
		close(s.added)
		s.added = make(chan struct{})
		s.mu.Unlock()
	}
}

// waitFor returns when a data line containing want arrives.
func (s *stream) waitFor(want string, timeout time.Duration) (time.Time, error) {
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for {
		s.mu.Lock()
		for _, l := range s.lines {
			if strings.Contains(l, want) {
				s.mu.Unlock()
				return time.Now(), nil
			}
		}
		added := s.added
		s.mu.Unlock()
		select {
		case <-added:
		case <-s.finish:
			return time.Time{}, fmt.Errorf("event stream ended waiting for %s", want)
		case <-deadline.C:
			return time.Time{}, fmt.Errorf("no event %s within %v", want, timeout)
		}
	}
}

// waitCount returns once n events whose text starts with prefix came.
func (s *stream) waitCount(prefix string, n int, timeout time.Duration) error {
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for {
		s.mu.Lock()
		got, added := s.seen[prefix], s.added
		s.mu.Unlock()
		if got >= n {
			return nil
		}
		select {
		case <-added:
		case <-s.finish:
			return fmt.Errorf("event stream ended after %d of %d events", got, n)
		case <-deadline.C:
			return fmt.Errorf("%d of %d events within %v", got, n, timeout)
		}
	}
}

func (s *stream) count(prefix string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.seen[prefix]
}

func (s *stream) close() {
	s.resp.Body.Close()
	<-s.finish
}

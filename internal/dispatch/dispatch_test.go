package dispatch_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/parley-chat/parley/internal/dispatch"
	"github.com/parley-chat/parley/internal/dispatch/dispatchtest"
	"github.com/parley-chat/parley/internal/dispatch/docker"
	"github.com/parley-chat/parley/internal/dockertest"
)

func TestMain(m *testing.M) {
	code := m.Run()
	dockertest.Cleanup()
	os.Exit(code)
}

// setup is a dispatcher on a real Docker Engine, with its own network and
// name; every container and volume it makes is removed at the end.
type setup struct {
	t       *testing.T
	name    string
	engine  *docker.Engine
	secret  []byte
	cfg     dispatch.Config
	url     string
	stopRun context.CancelFunc
	ran     chan struct{}
	srv     *httptest.Server
	events  chan string
}

func newSetup(t *testing.T, pool, maxPeers int, idle time.Duration) *setup {
	t.Helper()
	image := dockertest.Image(t)
	network := dockertest.Network(t)
	s := &setup{t: t, name: "t" + dockertest.Random(), secret: []byte("0123456789abcdef0123456789abcdef"),
		events: make(chan string, 256)}
	t.Cleanup(func() { dockertest.RemoveLabelled(docker.LabelDispatcher, s.name) })
	s.engine = docker.New(docker.Config{Dispatcher: s.name, Image: image, Network: network,
		Memory: 96 << 20, NanoCPUs: 5e8, Pids: 256})
	if err := s.engine.Ping(context.Background()); err != nil {
		t.Fatal(err)
	}
	s.cfg = dispatch.Config{Backend: s.engine, Secret: s.secret, Pool: pool, MaxPeers: maxPeers, Idle: idle,
		Keep: time.Hour, Sync: time.Second, StartRate: 100, StartBurst: 100,
		Event: func(kind string, kv ...any) {
			select {
			case s.events <- kind + fmt.Sprint(kv...):
			default:
			}
		}}
	s.start()
	return s
}

// start runs a dispatcher (again, after stop: a restart).
func (s *setup) start() {
	d, err := dispatch.New(s.cfg)
	if err != nil {
		s.t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	s.stopRun, s.ran = cancel, make(chan struct{})
	go func() { defer close(s.ran); d.Run(ctx) }()
	s.srv = httptest.NewServer(d.Handler())
	s.url = s.srv.URL
	s.t.Cleanup(s.stop)
}

func (s *setup) stop() {
	if s.srv == nil {
		return
	}
	s.srv.Close()
	s.stopRun()
	<-s.ran
	s.srv = nil
}

func (s *setup) visitor() *dispatchtest.Visitor {
	return dispatchtest.NewVisitor(s.t, func() string { return s.url }, 60*time.Second)
}

// Two visitors get two peers of their own, both in lobby, and chat; a
// visitor's next visit gets the same peer; a forged cookie gets nobody
// else's peer.
func TestVisitorsGetTheirOwnPeersAndChat(t *testing.T) {
	s := newSetup(t, 1, 4, time.Hour)
	alice, bob := s.visitor(), s.visitor()
	if code, body := alice.Start(); code != 200 || !strings.Contains(body, "<") {
		t.Fatalf("alice's start: %d", code)
	}
	bob.Start()
	a, b := alice.PeerID(), bob.PeerID()
	if a == b {
		t.Fatal("two visitors got the same peer")
	}
	if code := alice.API("POST", "/rooms/lobby/messages", `{"text":"hello from alice"}`, nil); code != 202 {
		t.Fatalf("alice posts: %d", code)
	}
	bob.WaitText("hello from alice")
	// Again, as a returning visitor.
	alice.Start()
	if again := alice.PeerID(); again != a {
		t.Errorf("alice's second visit got peer %s, want %s", again, a)
	}
	// A cookie with bob's peer ID but no valid signature reaches no peer.
	forger := s.visitor()
	u, _ := url.Parse(s.url)
	forger.Client.Jar.SetCookies(u, []*http.Cookie{{Name: "parley_visitor", Value: bob.CookieID() + ".0000"}})
	resp, err := (&http.Client{Jar: forger.Client.Jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}).Get(s.url + "/me/api/v1/info")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/" {
		t.Errorf("forged cookie: %d to %q, want a redirect to the landing page", resp.StatusCode, resp.Header.Get("Location"))
	}
	forger.Start()
	if got := forger.PeerID(); got == a || got == b {
		t.Errorf("a forged cookie led to someone else's peer")
	}
}

// The dispatcher keeps no database: restarted, it finds its peers again
// and every visitor keeps theirs.
func TestRestartedDispatcherKeepsVisitorsPeers(t *testing.T) {
	s := newSetup(t, 0, 3, time.Hour)
	v := s.visitor()
	v.Start()
	before := v.PeerID()
	s.stop()
	s.start()
	if after := v.PeerID(); after != before {
		t.Errorf("after a restart the visitor has peer %s, want %s", after, before)
	}
}

// An idle peer is stopped, and comes back with its history on the next
// visit.
func TestIdlePeerStopsAndComesBackWithHistory(t *testing.T) {
	s := newSetup(t, 0, 3, 2*time.Second)
	v := s.visitor()
	v.Start()
	id := v.PeerID()
	if code := v.API("POST", "/rooms/lobby/messages", `{"text":"remember me"}`, nil); code != 202 {
		t.Fatal(code)
	}
	v.WaitText("remember me")
	deadline := time.After(30 * time.Second)
	for stopped := false; !stopped; {
		select {
		case ev := <-s.events:
			stopped = strings.HasPrefix(ev, "peer-stopped")
		case <-deadline:
			t.Fatal("the idle peer was not stopped")
		}
	}
	if got := v.PeerID(); got != id {
		t.Errorf("after the idle stop the visitor has peer %s, want %s", got, id)
	}
	v.WaitText("remember me")
}

// --max-peers bounds what visitors can make it start: the next visitor
// gets a clear page, not a hang.
func TestMaxPeersGivesAClearFullPage(t *testing.T) {
	s := newSetup(t, 0, 2, time.Hour)
	for range 2 {
		if code, _ := s.visitor().Start(); code != 200 {
			t.Fatalf("a visitor within --max-peers got %d", code)
		}
	}
	code, body := s.visitor().Start()
	if code != http.StatusServiceUnavailable || !strings.Contains(body, "try again") {
		t.Errorf("third visitor: %d %q; want 503 with a page that says to try again", code, body)
	}
}

// A visitor's container that dies is started again on the next visit,
// with the same peer.
func TestDeadPeerIsReplacedOnTheNextVisit(t *testing.T) {
	s := newSetup(t, 0, 2, time.Hour)
	v := s.visitor()
	v.Start()
	id := v.PeerID()
	name := "parley-" + s.name + "-peer-" + v.CookieID()
	if out, err := exec.Command("docker", "kill", name).CombinedOutput(); err != nil {
		t.Fatalf("docker kill: %v %s", err, out)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		var info struct{ Peer string }
		code := v.API("GET", "/info", "", &info)
		if code == 200 && info.Peer == id {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("after its container died the visitor gets %d %q, want peer %s back", code, info.Peer, id)
		}
		time.Sleep(200 * time.Millisecond) // the dispatcher notices at the next request or sync
	}
}

// Start chatting is rate-limited per client address.
func TestStartIsRateLimitedPerClient(t *testing.T) {
	s := newSetup(t, 0, 3, time.Hour)
	s.stop()
	s.cfg.StartRate, s.cfg.StartBurst = 0.001, 1
	s.start()
	if code, _ := s.visitor().Start(); code != 200 {
		t.Fatalf("first visitor: %d", code)
	}
	if code, body := s.visitor().Start(); code != http.StatusTooManyRequests || !strings.Contains(body, "try again") {
		t.Errorf("second new visitor from the same address at once: %d, want 429 with a page", code)
	}
}

// A pool peer whose container is gone before the dispatcher notices (it
// died, or was removed by hand) costs a visitor nothing: the click drops
// it and gives them a new peer.
func TestClickGetsAPeerWhenThePoolPeerIsGone(t *testing.T) {
	s := newSetup(t, 1, 3, time.Hour)
	var pooled string
	for pooled == "" {
		select {
		case ev := <-s.events:
			if id, ok := strings.CutPrefix(ev, "pool-peer"); ok {
				pooled = strings.TrimPrefix(id, "peer") // kind, then the key-value pairs run together
			}
		case <-time.After(60 * time.Second):
			t.Fatal("no pool peer started")
		}
	}
	// Restarted with a sync far away, the dispatcher's view keeps the pool
	// peer after its container is removed behind its back.
	s.stop()
	s.cfg.Sync = time.Hour
	s.start()
	if err := s.engine.Remove(context.Background(), pooled); err != nil {
		t.Fatal(err)
	}
	v := s.visitor()
	if code, _ := v.Start(); code != http.StatusOK {
		t.Fatalf("start chatting: %d, want the visitor's page", code)
	}
	if id := v.PeerID(); id == "" {
		t.Fatal("no peer")
	}
	if got := v.CookieID(); got == pooled {
		t.Errorf("the visitor got the peer whose container is gone")
	}
}

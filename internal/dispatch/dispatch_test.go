package dispatch_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/parley-chat/parley/internal/dispatch"
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

// visitor is one browser: its own cookie jar.
type visitor struct {
	t      *testing.T
	s      *setup
	client *http.Client
}

func (s *setup) visitor() *visitor {
	jar, _ := cookiejar.New(nil)
	return &visitor{t: s.t, s: s, client: &http.Client{Jar: jar, Timeout: 60 * time.Second}}
}

// start clicks "Start chatting"; it returns the final status and body.
func (v *visitor) start() (int, string) {
	v.t.Helper()
	resp, err := v.client.Post(v.s.url+"/start", "application/x-www-form-urlencoded", nil)
	if err != nil {
		v.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func (v *visitor) api(method, path, body string, out any) int {
	v.t.Helper()
	req, _ := http.NewRequest(method, v.s.url+"/me/api/v1"+path, strings.NewReader(body))
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := v.client.Do(req)
	if err != nil {
		v.t.Fatal(err)
	}
	defer resp.Body.Close()
	if out != nil {
		json.NewDecoder(resp.Body).Decode(out)
	}
	return resp.StatusCode
}

func (v *visitor) peerID() string {
	v.t.Helper()
	var info struct{ Peer string }
	if code := v.api("GET", "/info", "", &info); code != 200 || info.Peer == "" {
		v.t.Fatalf("info through /me/: %d %+v", code, info)
	}
	return info.Peer
}

// waitText waits until the visitor's peer shows text in room lobby.
func (v *visitor) waitText(text string) {
	v.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		var page struct{ Messages []struct{ Text string } }
		v.api("GET", "/rooms/lobby/messages", "", &page)
		for _, m := range page.Messages {
			if m.Text == text {
				return
			}
		}
		time.Sleep(100 * time.Millisecond) // a poll of a remote peer's state: no event reaches the test
	}
	v.t.Fatalf("%q never showed up", text)
}

// Two visitors get two peers of their own, both in lobby, and chat; a
// visitor's next visit gets the same peer; a forged cookie gets nobody
// else's peer.
func TestVisitorsGetTheirOwnPeersAndChat(t *testing.T) {
	s := newSetup(t, 1, 4, time.Hour)
	alice, bob := s.visitor(), s.visitor()
	if code, body := alice.start(); code != 200 || !strings.Contains(body, "<") {
		t.Fatalf("alice's start: %d", code)
	}
	bob.start()
	a, b := alice.peerID(), bob.peerID()
	if a == b {
		t.Fatal("two visitors got the same peer")
	}
	if code := alice.api("POST", "/rooms/lobby/messages", `{"text":"hello from alice"}`, nil); code != 202 {
		t.Fatalf("alice posts: %d", code)
	}
	bob.waitText("hello from alice")
	// Again, as a returning visitor.
	alice.start()
	if again := alice.peerID(); again != a {
		t.Errorf("alice's second visit got peer %s, want %s", again, a)
	}
	// A cookie with bob's peer ID but no valid signature reaches no peer.
	forger := s.visitor()
	u, _ := url.Parse(s.url)
	forger.client.Jar.SetCookies(u, []*http.Cookie{{Name: "parley_visitor", Value: bob.cookieID() + ".0000"}})
	resp, err := (&http.Client{Jar: forger.client.Jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}).Get(s.url + "/me/api/v1/info")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/" {
		t.Errorf("forged cookie: %d to %q, want a redirect to the landing page", resp.StatusCode, resp.Header.Get("Location"))
	}
	forger.start()
	if got := forger.peerID(); got == a || got == b {
		t.Errorf("a forged cookie led to someone else's peer")
	}
}

func (v *visitor) cookieID() string {
	u, _ := url.Parse(v.s.url)
	for _, c := range v.client.Jar.Cookies(u) {
		if c.Name == "parley_visitor" {
			id, _, _ := strings.Cut(c.Value, ".")
			return id
		}
	}
	v.t.Fatal("no visitor cookie")
	return ""
}

// The dispatcher keeps no database: restarted, it finds its peers again
// and every visitor keeps theirs.
func TestRestartedDispatcherKeepsVisitorsPeers(t *testing.T) {
	s := newSetup(t, 0, 3, time.Hour)
	v := s.visitor()
	v.start()
	before := v.peerID()
	s.stop()
	s.start()
	if after := v.peerID(); after != before {
		t.Errorf("after a restart the visitor has peer %s, want %s", after, before)
	}
}

// An idle peer is stopped, and comes back with its history on the next
// visit.
func TestIdlePeerStopsAndComesBackWithHistory(t *testing.T) {
	s := newSetup(t, 0, 3, 2*time.Second)
	v := s.visitor()
	v.start()
	id := v.peerID()
	if code := v.api("POST", "/rooms/lobby/messages", `{"text":"remember me"}`, nil); code != 202 {
		t.Fatal(code)
	}
	v.waitText("remember me")
	deadline := time.After(30 * time.Second)
	for stopped := false; !stopped; {
		select {
		case ev := <-s.events:
			stopped = strings.HasPrefix(ev, "peer-stopped")
		case <-deadline:
			t.Fatal("the idle peer was not stopped")
		}
	}
	if got := v.peerID(); got != id {
		t.Errorf("after the idle stop the visitor has peer %s, want %s", got, id)
	}
	v.waitText("remember me")
}

// --max-peers bounds what visitors can make it start: the next visitor
// gets a clear page, not a hang.
func TestMaxPeersGivesAClearFullPage(t *testing.T) {
	s := newSetup(t, 0, 2, time.Hour)
	for range 2 {
		if code, _ := s.visitor().start(); code != 200 {
			t.Fatalf("a visitor within --max-peers got %d", code)
		}
	}
	code, body := s.visitor().start()
	if code != http.StatusServiceUnavailable || !strings.Contains(body, "try again") {
		t.Errorf("third visitor: %d %q; want 503 with a page that says to try again", code, body)
	}
}

// A visitor's container that dies is started again on the next visit,
// with the same peer.
func TestDeadPeerIsReplacedOnTheNextVisit(t *testing.T) {
	s := newSetup(t, 0, 2, time.Hour)
	v := s.visitor()
	v.start()
	id := v.peerID()
	name := "parley-" + s.name + "-peer-" + v.cookieID()
	if out, err := exec.Command("docker", "kill", name).CombinedOutput(); err != nil {
		t.Fatalf("docker kill: %v %s", err, out)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		var info struct{ Peer string }
		code := v.api("GET", "/info", "", &info)
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
	if code, _ := s.visitor().start(); code != 200 {
		t.Fatalf("first visitor: %d", code)
	}
	if code, body := s.visitor().start(); code != http.StatusTooManyRequests || !strings.Contains(body, "try again") {
		t.Errorf("second new visitor from the same address at once: %d, want 429 with a page", code)
	}
}

package web_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/parley-chat/parley/chat"
	"github.com/parley-chat/parley/internal/app"
	"github.com/parley-chat/parley/internal/testutil"
	"github.com/parley-chat/parley/internal/web"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m, testutil.LeakIgnores()...)
}

const token = "0123456789abcdef0123456789abcdef"

// node is one chat node with its web API on loopback.
type node struct {
	*testutil.Chat
	app *app.App
	srv *web.Server
	url string
}

// smallBuffers makes every accepted connection's send buffer small, as a
// slow network would: a client that stops reading blocks the server's
// writes after a few kilobytes instead of a loopback socket's megabytes.
type smallBuffers struct{ net.Listener }

func (l smallBuffers) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if tc, ok := c.(*net.TCPConn); ok {
		tc.SetWriteBuffer(4096)
	}
	return c, err
}

func newNode(t *testing.T, nick string, cfg web.Config) *node {
	t.Helper()
	return newNodeOn(t, nick, cfg, false)
}

func newNodeOn(t *testing.T, nick string, cfg web.Config, slowNetwork bool) *node {
	t.Helper()
	// Unlimited: the tests post hundreds of messages from one author,
	// which members would pace and rate-limit (chat.Limits).
	c := testutil.NewChat(t, testutil.NewNode(t), chat.WithNick(nick), chat.WithLimits(chat.Unlimited()))
	a := app.New(c.Service)
	cfg.Token, cfg.Loopback = token, true
	srv, err := web.New(a, cfg)
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewUnstartedServer(srv.Handler())
	if slowNetwork {
		hs.Listener = smallBuffers{hs.Listener}
	}
	hs.Start()
	// Cleanups run last-in first-out: the HTTP server closes (ending
	// event streams) before the chat service does.
	t.Cleanup(hs.Close)
	return &node{Chat: c, app: a, srv: srv, url: hs.URL}
}

// call makes an API request with the bearer token and decodes the JSON
// answer into out (if not nil); it returns the status.
func (n *node) call(t *testing.T, method, path, body string, out any, header ...string) int {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, n.url+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+token)
	for i := 0; i+1 < len(header); i += 2 {
		if header[i] == "Authorization" && header[i+1] == "" {
			req.Header.Del("Authorization")
			continue
		}
		if header[i] == "Host" {
			req.Host = header[i+1]
			continue
		}
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if out != nil && len(b) > 0 {
		if err := json.Unmarshal(b, out); err != nil {
			t.Fatalf("%s %s: %v in %q", method, path, err, b)
		}
	}
	return resp.StatusCode
}

type apiError struct {
	Error string `json:"error"`
}

// Every route the server registers is in the committed OpenAPI document,
// and the document names no route the server lacks.
func TestEveryRouteIsDocumented(t *testing.T) {
	n := newNode(t, "alice", web.Config{})
	var doc struct {
		Paths map[string]map[string]any `json:"paths"`
	}
	if code := n.call(t, "GET", "/api/v1/openapi.json", "", &doc, "Authorization", ""); code != 200 {
		t.Fatalf("openapi.json: status %d", code)
	}
	var documented []string
	for path, ops := range doc.Paths {
		for method := range ops {
			documented = append(documented, strings.ToUpper(method)+" "+path)
		}
	}
	registered := web.Routes(n.srv)
	slices.Sort(documented)
	slices.Sort(registered)
	if !slices.Equal(documented, registered) {
		t.Errorf("registered routes %v\ndocumented routes %v", registered, documented)
	}
}

func TestAuth(t *testing.T) {
	n := newNode(t, "alice", web.Config{})
	var e apiError
	if code := n.call(t, "GET", "/api/v1/info", "", &e, "Authorization", ""); code != 401 || e.Error == "" {
		t.Errorf("no token: %d %q, want 401 with a reason", code, e.Error)
	}
	if code := n.call(t, "GET", "/api/v1/info", "", nil, "Authorization", "Bearer wrong"); code != 401 {
		t.Errorf("wrong token: %d, want 401", code)
	}
	if code := n.call(t, "GET", "/api/v1/info", "", nil); code != 200 {
		t.Errorf("bearer token: %d, want 200", code)
	}
	if code := n.call(t, "POST", "/api/v1/session", `{"token":"nope"}`, nil, "Authorization", ""); code != 401 {
		t.Errorf("session with a wrong token: %d, want 401", code)
	}
	// The login page's exchange: the token for a cookie, then the cookie
	// alone is enough.
	resp, err := http.Post(n.url+"/api/v1/session", "application/json", strings.NewReader(`{"token":"`+token+`"}`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	cookies := resp.Cookies()
	if resp.StatusCode != 204 || len(cookies) != 1 || !cookies[0].HttpOnly || cookies[0].SameSite != http.SameSiteStrictMode {
		t.Fatalf("session: status %d, cookies %+v; want 204 and one HttpOnly SameSite=Strict cookie", resp.StatusCode, cookies)
	}
	if strings.Contains(cookies[0].Value, token) {
		t.Error("the session cookie holds the token itself")
	}
	req, _ := http.NewRequest("GET", n.url+"/api/v1/info", nil)
	req.AddCookie(cookies[0])
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Errorf("with the session cookie: %d, want 200", resp.StatusCode)
	}
}

func TestForeignHostAndOriginAreRefused(t *testing.T) {
	n := newNode(t, "alice", web.Config{})
	var e apiError
	if code := n.call(t, "GET", "/api/v1/info", "", &e, "Host", "attacker.example:80"); code != 403 || !strings.Contains(e.Error, "host") {
		t.Errorf("foreign Host: %d %q, want 403 naming the host", code, e.Error)
	}
	for _, host := range []string{"localhost", "127.0.0.1:7780", "[::1]:7780"} {
		if code := n.call(t, "GET", "/api/v1/info", "", nil, "Host", host); code != 200 {
			t.Errorf("Host %s: %d, want 200", host, code)
		}
	}
	if code := n.call(t, "POST", "/api/v1/rooms", `{"room":"dev"}`, &e, "Origin", "https://attacker.example", "Sec-Fetch-Site", "cross-site"); code != 403 {
		t.Errorf("cross-origin POST: %d, want 403", code)
	}
	if n.app.Rooms() != nil && slices.Contains(n.app.Rooms(), "dev") {
		t.Error("the cross-origin request joined a room")
	}
	if code := n.call(t, "POST", "/api/v1/rooms", `{"room":"dev"}`, nil, "Origin", n.url, "Sec-Fetch-Site", "same-origin"); code != 200 {
		t.Errorf("same-origin POST: %d, want 200", code)
	}
}

func TestBadRequestsAreClear4xx(t *testing.T) {
	n := newNode(t, "alice", web.Config{})
	if err := n.Join("lobby"); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, method, path, body string
		want                     int
	}{
		{"malformed JSON", "POST", "/api/v1/rooms", `{"room":`, 400},
		{"unknown field", "POST", "/api/v1/rooms", `{"room":"dev","colour":"red"}`, 400},
		{"two objects", "POST", "/api/v1/rooms", `{"room":"dev"}{"room":"x"}`, 400},
		{"no body", "POST", "/api/v1/rooms", ``, 400},
		{"oversized body", "POST", "/api/v1/rooms/lobby/messages", `{"text":"` + strings.Repeat("x", web.MaxBodyBytes) + `"}`, 413},
		{"bad room name", "POST", "/api/v1/rooms", `{"room":"no spaces"}`, 400},
		{"bad room in path", "GET", "/api/v1/rooms/a%20b/messages", ``, 400},
		{"room not joined", "POST", "/api/v1/rooms/elsewhere/messages", `{"text":"hi"}`, 404},
		{"leave a room not joined", "DELETE", "/api/v1/rooms/elsewhere", ``, 404},
		{"empty text", "POST", "/api/v1/rooms/lobby/messages", `{"text":""}`, 400},
		{"text over 4096 bytes", "POST", "/api/v1/rooms/lobby/messages", `{"text":"` + strings.Repeat("é", 2049) + `"}`, 400},
		{"terminal escape", "POST", "/api/v1/rooms/lobby/messages", `{"text":"\u001b[2J"}`, 400},
		{"unknown peer", "POST", "/api/v1/dms/nobody/messages", `{"text":"hi"}`, 404},
		{"DM to yourself", "POST", "/api/v1/dms/" + n.ID().String() + "/messages", `{"text":"hi"}`, 400},
		{"bad limit", "GET", "/api/v1/rooms/lobby/messages?limit=0", ``, 400},
		{"page from an unknown message", "GET", "/api/v1/rooms/lobby/messages?before=nope", ``, 404},
		{"bad nick", "PUT", "/api/v1/nick", `{"nick":""}`, 400},
		{"bad event id", "GET", "/api/v1/events?after=x", ``, 400},
		{"no such route", "GET", "/api/v1/frobnicate", ``, 404},
		{"wrong method", "PATCH", "/api/v1/rooms", `{}`, 405},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var e apiError
			code := n.call(t, tt.method, tt.path, tt.body, &e)
			if code != tt.want {
				t.Errorf("status %d (%q), want %d", code, e.Error, tt.want)
			}
			if code != 405 && e.Error == "" {
				t.Errorf("no error text a person could read")
			}
		})
	}
}

func TestRoomsHistoryPagesAndUnread(t *testing.T) {
	alice := newNode(t, "alice", web.Config{})
	var rooms struct {
		Rooms []struct {
			Room   string `json:"room"`
			Unread int    `json:"unread"`
		} `json:"rooms"`
	}
	if code := alice.call(t, "POST", "/api/v1/rooms", `{"room":"#lobby"}`, &rooms); code != 200 || len(rooms.Rooms) != 1 || rooms.Rooms[0].Room != "lobby" {
		t.Fatalf("join #lobby: %d %+v", code, rooms)
	}
	for i := range 5 {
		var acc struct {
			ID string `json:"id"`
		}
		if code := alice.call(t, "POST", "/api/v1/rooms/lobby/messages", fmt.Sprintf(`{"text":"m%d"}`, i), &acc); code != 202 || acc.ID == "" {
			t.Fatalf("post: %d %+v, want 202 and an id", code, acc)
		}
		alice.WaitFor(t, "message "+acc.ID, func(ev chat.Event) bool { m, ok := ev.(chat.Message); return ok && m.ID == acc.ID })
	}
	type page struct {
		Messages []struct {
			ID, Text string
			Own      bool
		} `json:"messages"`
		More bool `json:"more"`
	}
	var last page
	alice.call(t, "GET", "/api/v1/rooms/lobby/messages?limit=2", "", &last)
	if len(last.Messages) != 2 || last.Messages[0].Text != "m3" || last.Messages[1].Text != "m4" || !last.More || !last.Messages[0].Own {
		t.Fatalf("newest page: %+v; want m3 m4 (own), more", last)
	}
	var older page
	alice.call(t, "GET", "/api/v1/rooms/lobby/messages?limit=10&before="+last.Messages[0].ID, "", &older)
	if len(older.Messages) != 3 || older.Messages[0].Text != "m0" || older.More {
		t.Fatalf("older page: %+v; want m0 m1 m2, no more", older)
	}
}

func TestDMConversationsStatesAndUnread(t *testing.T) {
	alice := newNode(t, "alice", web.Config{})
	bob := newNode(t, "bob", web.Config{})
	if err := bob.Node.Host().Connect(context.Background(), testutil.Info(alice.Node)); err != nil {
		t.Fatal(err)
	}
	var acc struct {
		ID string `json:"id"`
	}
	if code := alice.call(t, "POST", "/api/v1/dms/"+bob.ID().String()+"/messages", `{"text":"psst"}`, &acc); code != 202 {
		t.Fatalf("dm: %d", code)
	}
	alice.WaitFor(t, "delivered", func(ev chat.Event) bool { d, ok := ev.(chat.Delivered); return ok && d.ID == acc.ID })
	type conversations struct {
		Conversations []struct {
			Peer, Nick string
			Unread     int
			Last       struct {
				Text, State string
				Own         bool
			}
		} `json:"conversations"`
	}
	var cs conversations
	bob.call(t, "GET", "/api/v1/dms", "", &cs)
	if len(cs.Conversations) != 1 || cs.Conversations[0].Peer != alice.ID().String() || cs.Conversations[0].Nick != "alice" ||
		cs.Conversations[0].Unread != 1 || cs.Conversations[0].Last.Text != "psst" || cs.Conversations[0].Last.State != "received" {
		t.Fatalf("bob's conversations: %+v", cs)
	}
	// By nick, as people type it.
	if code := bob.call(t, "POST", "/api/v1/dms/alice/read", "", nil); code != 204 {
		t.Fatalf("mark read: %d", code)
	}
	bob.call(t, "GET", "/api/v1/dms", "", &cs)
	if cs.Conversations[0].Unread != 0 {
		t.Errorf("after reading, %d unread", cs.Conversations[0].Unread)
	}
	var dms struct {
		Messages []struct {
			Text, State string
			Own         bool
		} `json:"messages"`
	}
	alice.call(t, "GET", "/api/v1/dms/"+bob.ID().String()+"/messages", "", &dms)
	if len(dms.Messages) != 1 || dms.Messages[0].State != "delivered" || !dms.Messages[0].Own {
		t.Errorf("alice's view of the DM: %+v; want one own, delivered", dms)
	}

	// A long conversation comes in pages, newest first, as rooms do.
	for i := 1; i <= 4; i++ {
		if code := alice.call(t, "POST", "/api/v1/dms/"+bob.ID().String()+"/messages", fmt.Sprintf(`{"text":"d%d"}`, i), &acc); code != 202 {
			t.Fatalf("dm d%d: %d", i, code)
		}
		alice.WaitFor(t, "delivered", func(ev chat.Event) bool { d, ok := ev.(chat.Delivered); return ok && d.ID == acc.ID })
	}
	type page struct {
		Messages []struct{ ID, Text string } `json:"messages"`
		More     bool                        `json:"more"`
	}
	texts := func(p page) (out []string) {
		for _, m := range p.Messages {
			out = append(out, m.Text)
		}
		return out
	}
	var newest, older page
	bob.call(t, "GET", "/api/v1/dms/alice/messages?limit=2", "", &newest)
	if got := texts(newest); !slices.Equal(got, []string{"d3", "d4"}) || !newest.More {
		t.Fatalf("bob's newest page: %v more=%v; want [d3 d4], more", got, newest.More)
	}
	bob.call(t, "GET", "/api/v1/dms/alice/messages?limit=10&before="+newest.Messages[0].ID, "", &older)
	if got := texts(older); !slices.Equal(got, []string{"psst", "d1", "d2"}) || older.More {
		t.Fatalf("bob's older page: %v more=%v; want [psst d1 d2], no more", got, older.More)
	}
	var e apiError
	if code := bob.call(t, "GET", "/api/v1/dms/alice/messages?before=nope", "", &e); code != 404 || e.Error == "" {
		t.Errorf("page from an unknown DM: %d %q, want 404 with a reason", code, e.Error)
	}
}

// sse reads one event stream.
type sse struct {
	resp   *http.Response
	events chan sseEvent
}

type sseEvent struct {
	id, kind, data string
}

func openEvents(t *testing.T, n *node, lastID string) *sse {
	t.Helper()
	return openEventsWith(t, http.DefaultClient, n, lastID)
}

func openEventsWith(t *testing.T, client *http.Client, n *node, lastID string) *sse {
	t.Helper()
	req, _ := http.NewRequest("GET", n.url+"/api/v1/events", nil)
	req.Header.Set("Authorization", "Bearer "+token)
	if lastID != "" {
		req.Header.Set("Last-Event-ID", lastID)
	}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "text/event-stream" {
		t.Fatalf("events: %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	s := &sse{resp: resp, events: make(chan sseEvent, 1<<12)}
	go func() {
		defer close(s.events)
		sc := bufio.NewScanner(resp.Body)
		var ev sseEvent
		for sc.Scan() {
			line := sc.Text()
			switch {
			case line == "":
				if ev.data != "" || ev.kind != "" {
					s.events <- ev
				}
				ev = sseEvent{}
			case strings.HasPrefix(line, "id: "):
				ev.id = line[4:]
			case strings.HasPrefix(line, "event: "):
				ev.kind = line[7:]
			case strings.HasPrefix(line, "data: "):
				ev.data = line[6:]
			}
		}
	}()
	t.Cleanup(func() { resp.Body.Close() })
	return s
}

// next returns the next event whose data contains want.
func (s *sse) next(t *testing.T, want string) sseEvent {
	t.Helper()
	timeout := time.After(testutil.Timeout)
	for {
		select {
		case ev, ok := <-s.events:
			if !ok {
				t.Fatalf("event stream ended while waiting for %q", want)
			}
			if strings.Contains(ev.data, want) || ev.kind == want {
				return ev
			}
		case <-timeout:
			t.Fatalf("no event with %q", want)
		}
	}
}

func post(t *testing.T, n *node, text string) {
	t.Helper()
	if code := n.call(t, "POST", "/api/v1/rooms/lobby/messages", `{"text":"`+text+`"}`, nil); code != 202 {
		t.Fatalf("post %q: %d", text, code)
	}
}

// A page that loses its connection resumes where it left off: nothing
// sent meanwhile is missed.
func TestEventStreamResumesAfterADisconnect(t *testing.T) {
	n := newNode(t, "alice", web.Config{})
	if err := n.Join("lobby"); err != nil {
		t.Fatal(err)
	}
	s := openEvents(t, n, "")
	post(t, n, "before")
	ev := s.next(t, `"text":"before"`)
	var m map[string]any
	if err := json.Unmarshal([]byte(ev.data), &m); err != nil || m["event"] != "message" || m["nick"] != "alice" {
		t.Fatalf("data %q is not the --json message event", ev.data)
	}
	s.resp.Body.Close()
	post(t, n, "while away")
	n.WaitMessage(t, "lobby", "while away")
	again := openEvents(t, n, ev.id)
	again.next(t, `"text":"while away"`)
	// From a sequence number no longer (or never) buffered: resync.
	stale := openEvents(t, n, "999999")
	stale.next(t, "resync")
}

// Three tabs, one of them stuck: the two others get every event, the
// node is not slowed, and the stuck one is cut off.
func TestStuckTabIsCutOffAndOthersGetEverything(t *testing.T) {
	n := newNodeOn(t, "alice", web.Config{EventBuffer: 16}, true)
	if err := n.Join("lobby"); err != nil {
		t.Fatal(err)
	}
	before := n.Subscribers()
	tab1, tab2 := openEvents(t, n, ""), openEvents(t, n, "")
	// A tab on a bad network: a tiny receive window, and never read.
	tiny := &http.Client{Transport: &http.Transport{DialContext: (&net.Dialer{
		Control: func(_, _ string, c syscall.RawConn) error {
			return c.Control(func(fd uintptr) { syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 2048) })
		}}).DialContext}}
	req, _ := http.NewRequest("GET", n.url+"/api/v1/events", nil)
	req.Header.Set("Authorization", "Bearer "+token)
	stuck, err := tiny.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer stuck.Body.Close()
	testutil.Eventually(t, "three streams subscribed", func() bool { return n.Subscribers() == before+3 })
	const count = 400 // bounded; enough to overflow a 16-event queue and the socket
	for i := range count {
		text := fmt.Sprintf("%s-%03d", strings.Repeat("x", 2000), i)
		if _, err := n.Send(context.Background(), "lobby", text); err != nil {
			t.Fatal(err)
		}
		// The readers keep up; only the stuck tab falls behind.
		want := fmt.Sprintf("-%03d", i)
		tab1.next(t, want)
		tab2.next(t, want)
	}
	testutil.Eventually(t, "stuck stream cut off", func() bool { return n.Subscribers() == before+2 })
}

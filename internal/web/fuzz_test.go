package web_test

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/parley-chat/parley/chat"
	"github.com/parley-chat/parley/internal/app"
	"github.com/parley-chat/parley/internal/testutil"
	"github.com/parley-chat/parley/internal/web"
)

// FuzzAPIBodies sends what any page or script may send to every route
// that reads a body: never a panic, never a 500 for a client's mistake.
// (503 is fine: thousands of valid posts a second fill the queue of
// messages waiting to be sent, and the node says it is busy.)
func FuzzAPIBodies(f *testing.F) {
	for _, s := range []string{`{"text":"hi"}`, `{"room":"#lobby"}`, `{"nick":"bob"}`, `{}`, `null`, `[]`, `{"text":1}`,
		`{"text":"hi","extra":true}`, `{"text":"` + strings.Repeat("é", 2049) + `"}`, "{\"text\":\"\\u0000\"}", `{`} {
		f.Add(s)
	}
	c := testutil.NewChat(f, testutil.NewNode(f), chat.WithNick("fuzz"), chat.WithLimits(chat.Unlimited()))
	if err := c.Join("lobby"); err != nil {
		f.Fatal(err)
	}
	srv, err := web.New(app.New(c.Service), web.Config{Token: token, Loopback: true})
	if err != nil {
		f.Fatal(err)
	}
	h := srv.Handler()
	routes := []struct{ method, path string }{
		{"POST", "/api/v1/rooms"},
		{"POST", "/api/v1/rooms/lobby/messages"},
		{"PUT", "/api/v1/nick"},
		{"POST", "/api/v1/dms/" + c.ID().String() + "/messages"},
		{"POST", "/api/v1/dms/nobody/messages"},
	}
	f.Fuzz(func(t *testing.T, body string) {
		for _, r := range routes {
			req := httptest.NewRequest(r.method, "http://127.0.0.1"+r.path, strings.NewReader(body))
			req.Header.Set("Authorization", "Bearer "+token)
			req.Header.Set("Content-Type", "application/json")
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			if rec.Code == http.StatusInternalServerError {
				t.Fatalf("%s %s with %q: %d %s", r.method, r.path, body, rec.Code, rec.Body)
			}
		}
	})
}

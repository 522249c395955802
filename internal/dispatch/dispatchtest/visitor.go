// Package dispatchtest is a web visitor of a dispatcher for tests, the
// same for every backend.
package dispatchtest

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"strings"
	"testing"
	"time"
)

// Visitor is one browser: its own cookie jar.
type Visitor struct {
	t      testing.TB
	base   func() string // the dispatcher's URL (a restarted one may have a new one)
	Client *http.Client
	Wait   time.Duration // how long WaitText waits
}

// NewVisitor returns a visitor of the dispatcher at base(); timeout bounds
// one request (a click that starts a peer on demand takes a while).
func NewVisitor(t testing.TB, base func() string, timeout time.Duration) *Visitor {
	jar, _ := cookiejar.New(nil)
	return &Visitor{t: t, base: base, Client: &http.Client{Jar: jar, Timeout: timeout}, Wait: timeout}
}

// Start clicks "Start chatting"; it returns the final status and body.
func (v *Visitor) Start() (int, string) {
	v.t.Helper()
	resp, err := v.Client.Post(v.base()+"/start", "application/x-www-form-urlencoded", nil)
	if err != nil {
		v.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// API calls the visitor's peer's web API through /me/ and decodes the
// answer into out (if not nil); it returns the status.
func (v *Visitor) API(method, path, body string, out any) int {
	v.t.Helper()
	req, _ := http.NewRequest(method, v.base()+"/me/api/v1"+path, strings.NewReader(body))
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := v.Client.Do(req)
	if err != nil {
		v.t.Fatal(err)
	}
	defer resp.Body.Close()
	if out != nil {
		json.NewDecoder(resp.Body).Decode(out)
	}
	return resp.StatusCode
}

// PeerID is the visitor's peer's ID.
func (v *Visitor) PeerID() string {
	v.t.Helper()
	var info struct{ Peer string }
	if code := v.API("GET", "/info", "", &info); code != 200 || info.Peer == "" {
		v.t.Fatalf("info through /me/: %d %+v", code, info)
	}
	return info.Peer
}

// CookieID is the peer ID the visitor's cookie names.
func (v *Visitor) CookieID() string {
	v.t.Helper()
	u, _ := url.Parse(v.base())
	for _, c := range v.Client.Jar.Cookies(u) {
		if c.Name == "parley_visitor" {
			id, _, _ := strings.Cut(c.Value, ".")
			return id
		}
	}
	v.t.Fatal("no visitor cookie")
	return ""
}

// WaitText waits until the visitor's peer shows text in room lobby.
func (v *Visitor) WaitText(text string) {
	v.t.Helper()
	deadline := time.Now().Add(v.Wait)
	for time.Now().Before(deadline) {
		var page struct{ Messages []struct{ Text string } }
		v.API("GET", "/rooms/lobby/messages", "", &page)
		for _, m := range page.Messages {
			if m.Text == text {
				return
			}
		}
		time.Sleep(200 * time.Millisecond) // a poll of a remote peer's state: no event reaches the test
	}
	v.t.Fatalf("%q never showed up", text)
}

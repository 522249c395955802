package main_test

import (
	"archive/tar"
	"compress/gzip"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/cookiejar"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/parley-chat/parley/internal/proctest"
	"github.com/parley-chat/parley/internal/testutil"
)

// loginLink waits for the "Open …/login#TOKEN" line on p's stderr.
func loginLink(t *testing.T, p *proc) (base, token string) {
	t.Helper()
	re := regexp.MustCompile(`Open (http://127\.0\.0\.1:\d+/)login#([0-9a-f]+)`)
	deadline := time.Now().Add(testutil.Timeout)
	for time.Now().Before(deadline) {
		if m := re.FindStringSubmatch(p.P.Stderr()); m != nil {
			return m[1], m[2]
		}
		select {
		case <-p.P.Exited():
			t.Fatalf("%s exited before printing its login link: %s", p.Name(), p.P.StderrTail())
		case <-time.After(20 * time.Millisecond): // stderr has no event to wait on
		}
	}
	t.Fatalf("%s printed no login link: %s", p.Name(), p.P.StderrTail())
	return "", ""
}

// `parley web` serves its app and API; the printed link logs a browser
// in, the ready event says where, and Ctrl-C stops node and server
// together.
func TestWebServesTheAppAndStopsOnInterrupt(t *testing.T) {
	data := t.TempDir()
	p := start(t, "alice", "web", "--json", "--web", "127.0.0.1:0", "--no-browser", "--nick", "alice",
		"--data", data, "--listen", "/ip4/127.0.0.1/tcp/0", "--no-mdns")
	ready := p.Event("ready")
	base, token := loginLink(t, p)
	if ready["web"] != base {
		t.Errorf("ready event says web %v, the link says %s", ready["web"], base)
	}
	if rooms, _ := ready["rooms"].([]any); len(rooms) != 1 || rooms[0] != "lobby" {
		t.Errorf("rooms %v, want the default [lobby]", ready["rooms"])
	}
	if st, err := os.Stat(data + "/api-token"); err != nil || st.Mode().Perm() != 0o600 {
		t.Errorf("api-token: %v, mode %v; want 0600", err, st.Mode().Perm())
	}
	jar, _ := cookiejar.New(nil)
	client := &http.Client{Jar: jar}
	resp, err := client.Get(base + "login")
	if err != nil {
		t.Fatal(err)
	}
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(page), "<html") && !strings.Contains(string(page), "<!doctype") {
		t.Fatalf("login page: %d %.100s", resp.StatusCode, page)
	}
	resp, err = client.Post(base+"api/v1/session", "application/json", strings.NewReader(`{"token":"`+token+`"}`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	resp, err = client.Get(base + "api/v1/info")
	if err != nil {
		t.Fatal(err)
	}
	var info struct{ Peer, Nick string }
	json.NewDecoder(resp.Body).Decode(&info)
	resp.Body.Close()
	if resp.StatusCode != 200 || info.Nick != "alice" || info.Peer != ready["peer"] {
		t.Fatalf("info with the login cookie: %d %+v", resp.StatusCode, info)
	}
	// A message sent through the API comes out as the same --json event.
	req, _ := http.NewRequest("POST", base+"api/v1/rooms/lobby/messages", strings.NewReader(`{"text":"from the web"}`))
	req.Header.Set("Authorization", "Bearer "+token)
	if resp, err = http.DefaultClient.Do(req); err != nil || resp.StatusCode != 202 {
		t.Fatalf("post: %v %v", err, resp.Status)
	}
	resp.Body.Close()
	p.WaitFor("the posted message", proctest.Match("message", "text", "from the web", "nick", "alice"))
	p.Signal(os.Interrupt)
	p.WaitExit()
	if _, err := http.Get(base + "api/v1/openapi.json"); err == nil {
		t.Error("the web server still answers after the node stopped")
	}
}

// `parley join --web` serves the same app beside the terminal or JSON
// front end: what one shows, the other shows too.
func TestJoinServesTheWebAppBeside(t *testing.T) {
	data := t.TempDir()
	p := start(t, "bob", "join", "lobby", "--json", "--web", "127.0.0.1:0", "--nick", "bob",
		"--data", data, "--listen", "/ip4/127.0.0.1/tcp/0", "--no-mdns")
	ready := p.Event("ready")
	base, _ := ready["web"].(string)
	tok, err := os.ReadFile(data + "/api-token")
	if base == "" || err != nil {
		t.Fatalf("web %q, token %v", base, err)
	}
	p.Send("typed in the terminal")
	p.WaitFor("own message", proctest.Match("message", "text", "typed in the terminal"))
	req, _ := http.NewRequest("GET", base+"api/v1/rooms/lobby/messages", nil)
	req.Header.Set("Authorization", "Bearer "+strings.TrimSpace(string(tok)))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var page struct {
		Messages []struct{ Text string } `json:"messages"`
	}
	json.NewDecoder(resp.Body).Decode(&page)
	resp.Body.Close()
	if len(page.Messages) != 1 || page.Messages[0].Text != "typed in the terminal" {
		t.Errorf("the web API shows %+v", page)
	}
	p.CloseAndWait()
}

func TestWebRefusesARemoteAddressWithoutConsent(t *testing.T) {
	p := start(t, "carol", "web", "--web", "0.0.0.0:0", "--no-browser", "--data", t.TempDir(),
		"--listen", "/ip4/127.0.0.1/tcp/0", "--no-mdns")
	err := p.P.WaitExit(t.Context())
	var exit *proctest.ExitError
	if !errors.As(err, &exit) || exit.Code != 2 || !strings.Contains(p.P.Stderr(), "--web-allow-remote") {
		t.Errorf("exit %v, stderr %q; want status 2 naming --web-allow-remote", err, p.P.Stderr())
	}
}

// "Take it home": the web app's download holds the identity and history;
// unpacked elsewhere, `parley web --data DIR` is the same peer with the
// same history.
func TestExportTakesThePeerHome(t *testing.T) {
	data := t.TempDir()
	p := start(t, "alice", "web", "--json", "--web", "127.0.0.1:0", "--no-browser", "--nick", "alice",
		"--data", data, "--listen", "/ip4/127.0.0.1/tcp/0", "--no-mdns")
	ready := p.Event("ready")
	base, token := loginLink(t, p)
	do := func(method, url, body string) *http.Response {
		req, _ := http.NewRequest(method, url, strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		return resp
	}
	do("POST", base+"api/v1/rooms/lobby/messages", `{"text":"pack me"}`).Body.Close()
	p.WaitFor("stored", proctest.Match("message", "text", "pack me"))
	resp := do("GET", base+"api/v1/export", "")
	if resp.StatusCode != 200 || !strings.Contains(resp.Header.Get("Content-Disposition"), "attachment") {
		t.Fatalf("export: %s %v", resp.Status, resp.Header)
	}
	home := t.TempDir()
	zr, err := gzip.NewReader(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	tr := tar.NewReader(zr)
	var names []string
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		names = append(names, h.Name)
		f, err := os.OpenFile(filepath.Join(home, filepath.Base(h.Name)), os.O_CREATE|os.O_WRONLY, 0o600)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(f, tr)
		f.Close()
	}
	resp.Body.Close()
	p.Signal(os.Interrupt)
	p.WaitExit()
	if strings.Join(names, ",") != "identity.key,parley.db" {
		t.Fatalf("archive holds %v", names)
	}
	q := start(t, "alice at home", "web", "--json", "--web", "127.0.0.1:0", "--no-browser",
		"--data", home, "--listen", "/ip4/127.0.0.1/tcp/0", "--no-mdns")
	again := q.Event("ready")
	if again["peer"] != ready["peer"] {
		t.Errorf("at home the peer is %v, want %v", again["peer"], ready["peer"])
	}
	q.WaitFor("history at home", proctest.Match("message", "text", "pack me"))
}

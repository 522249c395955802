package web_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/cdproto/input"
	"github.com/chromedp/cdproto/log"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"

	"github.com/parley-chat/parley/internal/chromium"
	"github.com/parley-chat/parley/internal/proctest"
)

// The browser test drives Debian's chromium against two real parley nodes.
// It is skipped where chromium is absent, unless CHROMIUM_REQUIRE=1 (CI),
// which makes a missing chromium a failure. Screenshots go to the test's
// temporary directory and are copied to $PARLEY_SHOTS (default
// /tmp/parley-shots) for a person to look at.

// chromium returns the path of the browser, or skips (or fails) the test.
// webNode is a `parley web --json` node on loopback.
type webNode struct {
	*proctest.Test
	id, addr, web, login string
}

var openLine = regexp.MustCompile(`Open (http://\S+/login#\S+)`)

func startWeb(t *testing.T, bin, nick string, extra ...string) *webNode {
	t.Helper()
	return startWebAt(t, bin, nick, t.TempDir(), "127.0.0.1:0", extra...)
}

// startWebAt starts a node on the data directory and web address given.
func startWebAt(t *testing.T, bin, nick, data, web string, extra ...string) *webNode {
	t.Helper()
	args := append([]string{"web", "--nick", nick, "--web", web, "--no-browser"},
		proctest.LoopbackFlags(data)...)
	args = append(args, extra...)
	p := proctest.StartTest(t, nick, exec.Command(bin, args...))
	ready := p.Event("ready")
	n := &webNode{Test: p}
	n.id, _ = ready["peer"].(string)
	n.web, _ = ready["web"].(string)
	addr, err := proctest.AddrOf(ready, "/ip4/127.0.0.1/")
	if err != nil {
		t.Fatal(err)
	}
	n.addr = addr
	// The link is printed on stderr before the ready event on stdout, but
	// the two pipes are read apart: wait for it.
	var m []string
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		if m = openLine.FindStringSubmatch(p.P.Stderr()); m != nil || time.Now().After(deadline) {
			break
		}
	}
	if m == nil || n.web == "" || !strings.HasPrefix(m[1], n.web+"login#") {
		t.Fatalf("%s: want a web URL in ready (%v) and an Open …/login#TOKEN line on stderr; stderr:\n%s", nick, ready, p.P.Stderr())
	}
	n.login = m[1]
	return n
}

// post sends text to room through the node's API, as any program may.
func (n *webNode) post(t *testing.T, room, text string) {
	t.Helper()
	body, _ := json.Marshal(map[string]string{"text": text})
	req, err := http.NewRequest("POST", n.web+"api/v1/rooms/"+room+"/messages", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+n.login[strings.Index(n.login, "#")+1:])
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("%s: POST %s: %s", n.Name(), req.URL, resp.Status)
	}
}

// tab is one page in its own browser context, with what went wrong in it.
type tab struct {
	t      *testing.T
	name   string
	ctx    context.Context
	cancel context.CancelFunc // closes the tab
	shots  string

	mu       sync.Mutex
	problems []string
	// allow lists substrings of browser log lines that are expected (the
	// 401 of a page that is not logged in yet).
	allow []string
}

func newTab(t *testing.T, parent context.Context, name, shots string, opts ...chromedp.ContextOption) *tab {
	t.Helper()
	ctx, cancel := chromedp.NewContext(parent, opts...)
	t.Cleanup(cancel)
	b := &tab{t: t, name: name, ctx: ctx, cancel: cancel, shots: shots}
	if err := chromedp.Do(ctx); err != nil { // opens the tab; no timeout here
		t.Fatalf("%s: open a tab: %v", name, err)
	}
	// Script errors, CSP violations (logged as errors) and any dialog (an
	// alert from injected markup) are failures.
	err := chromedp.Listen(ctx, func(ev any) {
		var p string
		switch e := ev.(type) {
		case *runtime.EventExceptionThrown:
			p = "exception: " + e.ExceptionDetails.Text
			if e.ExceptionDetails.Exception != nil {
				p += " " + e.ExceptionDetails.Exception.Description
			}
		case *runtime.EventConsoleAPICalled:
			if e.Type == runtime.ConsoleAPICalledTypeError {
				p = "console.error"
				for _, a := range e.Args {
					p += " " + string(a.Value) + a.Description
				}
			}
		case *log.EventEntryAdded:
			if e.Entry.Level == log.EntryLevelError {
				p = "log: " + e.Entry.Text + " " + e.Entry.URL
				b.mu.Lock()
				for _, a := range b.allow {
					if strings.Contains(p, a) {
						p = ""
					}
				}
				b.mu.Unlock()
			}
		case *page.EventJavascriptDialogOpening:
			p = "a dialog opened: " + string(e.Type) + " " + e.Message
			go chromedp.Call(ctx, page.HandleJavaScriptDialog, page.HandleJavaScriptDialogParams{Accept: true})
		}
		if p != "" {
			b.mu.Lock()
			b.problems = append(b.problems, p)
			b.mu.Unlock()
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// do runs steps, each bounded, and fails the test with a screenshot.
func (b *tab) do(what string, steps ...chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 20*time.Second)
	defer cancel()
	if err := chromedp.Do(ctx, steps...); err != nil {
		b.fail(what, err)
	}
}

// wait waits until the JavaScript expression is truthy.
func (b *tab) wait(what, expr string) {
	b.t.Helper()
	b.do(what, chromedp.Poll[chromedp.Void](expr, chromedp.WithPollingTimeout(20*time.Second), chromedp.WithPollingInterval(50*time.Millisecond)))
}

func (b *tab) fail(what string, err error) {
	b.t.Helper()
	b.shot("failed-" + b.name)
	state, _ := eval[string](b, `document.querySelector('#app:not([hidden]) .conv-title')?.innerText + ' | ' +
		(document.querySelector('#messages')?.innerText || '').slice(-600) + ' | banner: ' + document.querySelector('#banner')?.innerText +
		' | login hidden: ' + document.querySelector('#login')?.hidden`)
	b.t.Fatalf("%s: %s: %v\npage: %s\nproblems: %v", b.name, what, err, state, b.problemList())
}

func eval[T any](b *tab, expr string) (T, error) {
	ctx, cancel := context.WithTimeout(b.ctx, 10*time.Second)
	defer cancel()
	return chromedp.Run(ctx, chromedp.Evaluate[T](expr))
}

// mustEval evaluates expr, failing the test on an error.
func mustEval[T any](b *tab, what, expr string) T {
	b.t.Helper()
	v, err := eval[T](b, expr)
	if err != nil {
		b.fail(what, err)
	}
	return v
}

func (b *tab) shot(name string) {
	ctx, cancel := context.WithTimeout(b.ctx, 10*time.Second)
	defer cancel()
	png, err := chromedp.Run(ctx, chromedp.CaptureScreenshot())
	if err != nil {
		b.t.Logf("%s: screenshot %s: %v", b.name, name, err)
		return
	}
	if err := os.WriteFile(filepath.Join(b.shots, name+".png"), png, 0o644); err != nil {
		b.t.Log(err)
	}
}

func (b *tab) problemList() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]string(nil), b.problems...)
}

// enter presses Enter in the focused element as a keyboard does: a
// keydown whose default the page may cancel. (chromedp's "\r" also sends a
// separate char event, which inserts a newline even when the keydown was
// cancelled; a real key press does not.)
var enter = chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
	for _, typ := range []input.DispatchKeyEventType{input.DispatchKeyEventTypeKeyDown, input.DispatchKeyEventTypeKeyUp} {
		if _, err := cdp.Call(ctx, tg, input.DispatchKeyEvent, input.DispatchKeyEventParams{
			Type: typ, Key: "Enter", Code: "Enter", WindowsVirtualKeyCode: 13, NativeVirtualKeyCode: 13,
		}); err != nil {
			return err
		}
	}
	return nil
})

// say types text into the compose box and presses Enter.
func (b *tab) say(what, text string) {
	b.t.Helper()
	b.do(what, chromedp.SendKeys(chromedp.ID("text"), text), chromedp.Focus(chromedp.ID("text")), enter)
}

// peerSel is the CSS selector of the element for peer id: before it the
// selector of the element, after it that of a descendant.
func peerSel(before, id, after string) string {
	return before + `[data-peer="` + id + `"]` + after
}

// js quotes s as a JavaScript string.
func js(s string) string { return strconv.Quote(s) }

// line returns an expression that finds the message with text and says
// who wrote it (the header of its group) and how it is marked, or null.
func line(text string) string {
	return `(() => {
		const rows = [...document.querySelectorAll('#messages .msg')];
		const i = rows.findIndex((r) => r.querySelector('.text').textContent === ` + js(text) + `);
		if (i < 0) return null;
		let j = i;
		while (j > 0 && !rows[j].classList.contains('head')) j--;
		const st = rows[i].querySelector('.state');
		return {nick: rows[j].querySelector('.nick').textContent, pid: rows[j].querySelector('.pid').textContent,
			own: rows[i].classList.contains('own'), pending: rows[i].classList.contains('pending'),
			state: st && !st.hidden ? st.className : ''};
	})()`
}

// rows counts the message lines shown.
const rows = `document.querySelectorAll('#messages .msg').length`

type lineInfo struct {
	Nick, Pid, State string
	Own, Pending     bool
}

func title(want string) string {
	return `document.querySelector('#conv-title').textContent === ` + js(want) + ` && !document.querySelector('#app').hidden`
}

func TestBrowserTwoPeople(t *testing.T) {
	chrome := chromium.Require(t)
	start := time.Now()
	root, err := proctest.ModuleRoot()
	if err != nil {
		t.Fatal(err)
	}
	bin, err := proctest.Build(context.Background(), root, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	shots := t.TempDir()
	defer func() {
		// Keep the screenshots where a person can look at them.
		dst := os.Getenv("PARLEY_SHOTS")
		if dst == "" {
			dst = filepath.Join(os.TempDir(), "parley-shots")
		}
		if err := os.MkdirAll(dst, 0o755); err != nil {
			t.Log(err)
			return
		}
		files, _ := filepath.Glob(filepath.Join(shots, "*.png"))
		for _, f := range files {
			if b, err := os.ReadFile(f); err == nil {
				os.WriteFile(filepath.Join(dst, filepath.Base(f)), b, 0o644)
			}
		}
		t.Logf("%d screenshots in %s (and %s)", len(files), dst, shots)
	}()

	alice := startWeb(t, bin, "alice")

	alloc, cancelAlloc := chromium.Allocator(context.Background(), chrome, t.TempDir(), 1280, 800)
	defer cancelAlloc()
	browser, cancelBrowser := chromedp.NewContext(alloc)
	defer cancelBrowser()
	if err := chromedp.Do(browser); err != nil {
		t.Fatalf("start chromium (%s): %v", chrome, err)
	}
	a := newTab(t, browser, "alice", shots, chromedp.WithNewBrowserContext())

	// Alice opens the printed link: logged in, on the first room, and the
	// key is gone from the address bar.
	a.do("open the login link", chromedp.Navigate(alice.login))
	a.wait("the lobby after login", title("#lobby"))
	if href := mustEval[string](a, "location", `location.href`); href != alice.web {
		t.Errorf("after login the address is %q, want %q (no token, no /login)", href, alice.web)
	}
	a.wait("the empty state", `document.querySelector('#empty-title').textContent.startsWith('No messages yet')`)
	// Alone on loopback, the node says so in plain words.
	a.wait("no peers yet", `!document.querySelector('#banner').hidden && document.querySelector('#banner-text').textContent.startsWith('No peers yet')`)
	a.shot("01-alice-alone")

	// Joining by name, with the leading # people type.
	a.do("join #tea", chromedp.SendKeys(chromedp.ID("join-input"), "#tea\r"))
	a.wait("#tea opened", title("#tea")+` && !!document.querySelector('#room-list [data-room="tea"]')`)
	a.do("back to the lobby", chromedp.Click(chromedp.CSS(`#room-list [data-room="lobby"]`)))
	a.wait("the lobby again", title("#lobby"))

	bob := startWeb(t, bin, "bob", "--bootstrap", alice.addr)
	b := newTab(t, browser, "bob", shots, chromedp.WithNewBrowserContext())
	b.do("open bob's login link", chromedp.Navigate(bob.login))
	b.wait("bob's lobby", title("#lobby"))

	// Each sees the other in the room before anyone speaks.
	a.wait("bob in alice's people list", `!!document.querySelector(`+js(peerSel("#people-list .person.online", bob.id, ""))+`)`)
	b.wait("alice in bob's people list", `!!document.querySelector(`+js(peerSel("#people-list .person.online", alice.id, ""))+`)`)

	hello := "Hello from Alice's browser ☕"
	xss := `<img src=x onerror=alert(1)>`
	a.say("alice sends a line", hello)
	a.wait("alice's line is sent", line(hello)+`?.pending === false`)
	a.say("alice sends HTML", xss)
	a.wait("alice's HTML line is sent", line(xss)+`?.pending === false`)
	if v := mustEval[string](a, "compose box", `document.querySelector('#text').value`); v != "" {
		t.Errorf("the compose box still holds %q after sending", v)
	}

	b.wait("bob sees alice's line", line(hello)+` !== null`)
	b.wait("bob sees the HTML line", line(xss)+` !== null`)
	for _, text := range []string{hello, xss} {
		got := mustEval[lineInfo](b, "alice's line at bob", line(text))
		if got.Nick != "alice" || got.Pid != alice.id[len(alice.id)-6:] || got.Own {
			t.Errorf("bob shows %q as %+v, want alice with %s, not own", text, got, alice.id[len(alice.id)-6:])
		}
	}
	for _, p := range []*tab{a, b} {
		if n := mustEval[int](p, "img count", `document.querySelectorAll('#messages img, #messages [onerror]').length`); n != 0 {
			t.Errorf("%s: %d img elements in the message list: message text was rendered as HTML", p.name, n)
		}
	}
	own := mustEval[lineInfo](a, "alice's own line", line(hello))
	if !own.Own || own.Nick != "alice" {
		t.Errorf("alice shows her own line as %+v, want own", own)
	}
	a.shot("02-alice-lobby")
	b.shot("03-bob-lobby")

	// Bob writes to alice from the people list and sees it delivered.
	b.do("bob clicks alice", chromedp.Click(chromedp.CSS(peerSel("#people-list .person", alice.id, ""))))
	b.wait("bob's DM view", `document.querySelector('#conv-title').textContent.startsWith('alice')`)
	b.wait("bob's empty DM", `document.querySelector('#empty-title').textContent.startsWith('No messages yet')`)
	dm := "Hi Alice, this is just for you"
	b.say("bob sends a DM", dm)
	b.wait("the DM is delivered", line(dm)+`?.state.includes('delivered')`)
	b.shot("04-bob-dm-delivered")

	// Alice sees the conversation with an unread count, and opens it.
	a.wait("alice's unread DM", `document.querySelector(`+js(peerSel("#dm-list ", bob.id, " .badge"))+`)?.textContent === '1'`)
	a.shot("05-alice-unread-dm")
	a.do("alice opens the DM", chromedp.Click(chromedp.CSS(peerSel("#dm-list ", bob.id, ""))))
	a.wait("alice reads bob's DM", line(dm)+`?.nick === 'bob'`)
	a.wait("the unread count goes", `!document.querySelector(`+js(peerSel("#dm-list ", bob.id, " .badge"))+`)`)

	// Alice reloads: the lobby's history is there, her lines marked hers.
	a.do("alice back to the lobby", chromedp.Click(chromedp.CSS(`#room-list [data-room="lobby"]`)))
	a.wait("the lobby", title("#lobby"))
	a.do("reload", chromedp.Reload())
	a.wait("the history after reload", title("#lobby")+` && `+line(hello)+`?.own === true && `+line(xss)+` !== null`)
	a.wait("the DM list after reload", `!!document.querySelector(`+js(peerSel("#dm-list ", bob.id, ""))+`)`)
	if n := mustEval[int](a, "DM badge", `document.querySelectorAll(`+js(peerSel("#dm-list ", bob.id, " .badge"))+`).length`); n != 0 {
		t.Errorf("alice after reload: bob's DM is unread again, though she read it")
	}
	a.wait("the peers banner is gone", `document.querySelector('#banner').hidden`)
	if n := mustEval[int](a, "img count", `document.querySelectorAll('#messages img').length`); n != 0 {
		t.Errorf("alice after reload: %d img elements in the message list", n)
	}
	a.shot("06-alice-after-reload")

	// A second tab of alice's browser is logged in by the cookie alone.
	a2 := newTab(t, a.ctx, "alice-tab2", shots)
	a2.do("open the page", chromedp.Navigate(alice.web))
	a2.wait("history in the second tab", title("#lobby")+` && `+line(hello)+` !== null`)

	// History pages: 250 more lines, posted through the API. The open tab
	// follows them live; a fresh load shows the newest page, and scrolling
	// up brings the rest in order, down to the room's beginning.
	const extra = 150 // one page and a half: own messages are paced past a burst of 100
	for i := range extra {
		alice.post(t, "lobby", fmt.Sprintf("line %03d", i))
	}
	last := fmt.Sprintf("line %03d", extra-1)
	a2.wait("the lines arrive live", line(last)+` !== null`)
	a2.do("reload the second tab", chromedp.Reload())
	a2.wait("the newest page", title("#lobby")+` && `+line(last)+` !== null`)
	if n := mustEval[int](a2, "rows", rows); n != 100 {
		t.Errorf("a fresh page shows %d lines, want the newest page of 100", n)
	}
	a2.wait("older pages while scrolling up", `(() => {
		document.querySelector('#scroller').scrollTop = 0;
		return `+rows+` === `+strconv.Itoa(extra+2)+` && !!document.querySelector('#history-top .start-title');
	})()`)
	texts := mustEval[[]string](a2, "texts", `[...document.querySelectorAll('#messages .text')].map((e) => e.textContent)`)
	want := []string{hello, xss}
	for i := range extra {
		want = append(want, fmt.Sprintf("line %03d", i))
	}
	if strings.Join(texts, "\n") != strings.Join(want, "\n") {
		t.Errorf("after paging up, the lines are not the history in order: %d lines, first %q, last %q", len(texts), texts[:min(3, len(texts))], texts[max(0, len(texts)-3):])
	}

	// A scrolled-up view stays put when a line comes, and says so.
	b.do("bob back to the lobby", chromedp.Click(chromedp.CSS(`#room-list [data-room="lobby"]`)))
	b.wait("bob's lobby again", title("#lobby")+` && `+line(last)+` !== null`)
	b.say("bob writes while alice reads old lines", "Are you still there?")
	a2.wait("the new-messages button", `!document.querySelector('#jump').hidden && document.querySelector('#scroller').scrollTop < 1000`)
	a2.shot("11-alice-new-messages-button")
	a2.do("jump to the new line", chromedp.Click(chromedp.ID("jump")))
	a2.wait("at the bottom", `(() => { const s = document.querySelector('#scroller'); return s.scrollHeight - s.scrollTop - s.clientHeight < 50 && document.querySelector('#jump').hidden; })()`)

	// Over the limit: counted in bytes, said before sending, not sent.
	b.do("a message over the limit", chromedp.Evaluate[chromedp.Void](`(() => {
		const t = document.querySelector('#text');
		t.value = 'é'.repeat(2049);
		t.dispatchEvent(new Event('input'));
	})()`))
	b.wait("the limit is shown", `document.querySelector('#bytes').textContent === '4098 / 4096 bytes' && document.querySelector('#send').disabled &&
		document.querySelector('#compose-error').textContent.startsWith('Too long')`)
	b.do("press Enter anyway", chromedp.Focus(chromedp.ID("text")), enter)
	if n := mustEval[int](b, "text kept", `document.querySelector('#text').value.length`); n != 2049 {
		t.Errorf("a message over the limit was sent or dropped: %d characters left in the box", n)
	}
	b.shot("12-bob-too-long")
	b.do("clear the box", chromedp.Evaluate[chromedp.Void](`(() => {
		const t = document.querySelector('#text');
		t.value = '';
		t.dispatchEvent(new Event('input'));
	})()`))

	// Not logged in: the page says what to do; pasting the link works. And
	// the app works under a reverse proxy's path prefix, as the dispatcher
	// will serve it.
	target, err := url.Parse(alice.web)
	if err != nil {
		t.Fatal(err)
	}
	proxy := httptest.NewServer(http.StripPrefix("/me", httputil.NewSingleHostReverseProxy(target)))
	defer func() {
		// The pages' event streams never end by themselves.
		proxy.CloseClientConnections()
		proxy.Close()
	}()
	p1 := newTab(t, browser, "proxy-paste", shots, chromedp.WithNewBrowserContext())
	p1.allow = []string{"401"}
	p1.do("open /me/ without the link", chromedp.Navigate(proxy.URL+"/me/"))
	p1.wait("the login screen", `!document.querySelector('#login').hidden && document.querySelector('#app').hidden`)
	p1.shot("13-login-screen")
	p1.do("paste the link", chromedp.SendKeys(chromedp.ID("login-input"), alice.login), chromedp.Click(chromedp.CSS("#login-form button")))
	p1.wait("logged in under /me/", title("#lobby")+` && `+line(last)+` !== null`)
	p2 := newTab(t, browser, "proxy-link", shots, chromedp.WithNewBrowserContext())
	p2.do("open /me/login#TOKEN", chromedp.Navigate(proxy.URL+"/me/login"+alice.login[strings.Index(alice.login, "#"):]))
	p2.wait("the lobby under /me/", title("#lobby")+` && `+line(last)+` !== null`)
	if href := mustEval[string](p2, "location", `location.href`); href != proxy.URL+"/me/" {
		t.Errorf("after login under /me/ the address is %q, want %q", href, proxy.URL+"/me/")
	}
	p2.say("a line through the proxy", "Through the proxy")
	a.wait("alice's first tab sees it", line("Through the proxy")+`?.own === true`)

	// Phone width: the sidebar is a drawer.
	b.do("phone width", chromedp.EmulateViewport(390, 844, chromedp.EmulateMobile, chromedp.EmulateScale(2)))
	b.wait("the sidebar hides", `getComputedStyle(document.querySelector('#sidebar')).visibility === 'hidden'`)
	b.do("open the menu", chromedp.Click(chromedp.CSS(`#nav-open`)))
	b.wait("the drawer opens", `getComputedStyle(document.querySelector('#sidebar')).transform === 'none'`)
	b.shot("07-bob-phone-menu")
	b.do("pick the lobby", chromedp.Click(chromedp.CSS(`#room-list [data-room="lobby"]`)))
	b.wait("the drawer closes on the lobby", title("#lobby")+` && !document.body.classList.contains('nav-open')`)
	b.wait("the lobby at phone width", line("Are you still there?")+` !== null && getComputedStyle(document.querySelector('#sidebar')).visibility === 'hidden'`)
	b.shot("08-bob-phone-lobby")

	// The dark scheme.
	a.do("dark scheme", chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
		_, err := chromedp.Call(ctx, emulation.SetEmulatedMedia, emulation.SetEmulatedMediaParams{
			Features: []*emulation.MediaFeature{{Name: "prefers-color-scheme", Value: "dark"}},
		})
		return err
	}))
	a.wait("dark colours", `getComputedStyle(document.body).backgroundColor !== 'rgb(245, 246, 248)'`)
	a.do("open your node", chromedp.Click(chromedp.ID("me-card")))
	a.wait("the node dialog", `document.querySelector('#me-dialog').open && document.querySelector('#me-peer').textContent === `+js(alice.id))
	a.shot("09-alice-dark-node")

	for _, p := range []*tab{a, b, a2, p1, p2} {
		for _, pr := range p.problemList() {
			t.Errorf("%s: %s", p.name, pr)
		}
	}

	// Bob goes away: a DM to him waits in the outbox, and says so.
	b.do("bob's page goes", chromedp.Navigate("about:blank"))
	bob.Signal(syscall.SIGINT)
	bob.WaitExit()
	a.do("close the dialog", chromedp.Click(chromedp.CSS("#me-dialog .dialog-head button")))
	a.do("alice opens the DM", chromedp.Click(chromedp.CSS(peerSel("#dm-list ", bob.id, ""))))
	a.wait("the DM view", line(dm)+` !== null`)
	a.say("alice writes to bob, who is gone", "See you later")
	a.wait("the DM is queued", line("See you later")+`?.state.includes('queued')`)
	a.wait("bob offline", `document.querySelector('#conv-sub').textContent.includes('offline')`)
	a.shot("14-alice-dark-dm-queued")

	// Alice's node restarts under her open page: the page says it lost the
	// node, resumes the stream (the node's event numbers start over, so it
	// is told to resync) and shows what came after.
	p1.cancel()
	p2.cancel()
	a.mu.Lock()
	a.allow = []string{"ERR_CONNECTION_REFUSED"}
	a.mu.Unlock()
	alice.Signal(syscall.SIGINT)
	alice.WaitExit()
	a.wait("the page notices", `!document.querySelector('#banner').hidden && document.querySelector('#banner-text').textContent.startsWith('Reconnecting')`)
	a.shot("15-alice-reconnecting")
	aliceURL, err := url.Parse(alice.web)
	if err != nil {
		t.Fatal(err)
	}
	data := ""
	for i, arg := range alice.P.Cmd.Args {
		if arg == "--data" {
			data = alice.P.Cmd.Args[i+1]
		}
	}
	alice = startWebAt(t, bin, "alice", data, aliceURL.Host)
	a.wait("back", `!document.querySelector('#banner-text').textContent.startsWith('Reconnecting')`)
	alice.post(t, "lobby", "After the restart")
	a2.wait("the second tab, in the lobby, gets it live", line("After the restart")+`?.own === true`)
	a.do("to the lobby", chromedp.Click(chromedp.CSS(`#room-list [data-room="lobby"]`)))
	a.wait("the line after the restart", line("After the restart")+`?.own === true`)
	for _, pr := range a.problemList() {
		t.Errorf("%s: %s", a.name, pr)
	}

	// The node stops cleanly with pages open.
	cancelBrowser()
	alice.Signal(syscall.SIGINT)
	alice.WaitExit()
	t.Logf("browser test took %v", time.Since(start).Round(time.Millisecond))
}

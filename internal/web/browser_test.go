package web_test

import (
	"context"
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

	"github.com/parley-chat/parley/internal/proctest"
)

// The browser test drives Debian's chromium against two real parley nodes.
// It is skipped where chromium is absent, unless CHROMIUM_REQUIRE=1 (CI),
// which makes a missing chromium a failure. Screenshots go to the test's
// temporary directory and are copied to $PARLEY_SHOTS (default
// /tmp/parley-shots) for a person to look at.

// chromium returns the path of the browser, or skips (or fails) the test.
func chromium(t *testing.T) string {
	t.Helper()
	if p := os.Getenv("CHROMIUM"); p != "" {
		return p
	}
	for _, name := range []string{"chromium", "chromium-browser"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if os.Getenv("CHROMIUM_REQUIRE") == "1" {
		t.Fatal("chromium not found and CHROMIUM_REQUIRE=1: install it (apt-get install chromium) or set CHROMIUM=/path/to/chromium")
	}
	t.Skip("chromium not found: the browser test needs it (apt-get install chromium); CHROMIUM_REQUIRE=1 makes this a failure")
	return ""
}

// webNode is a `parley web --json` node on loopback.
type webNode struct {
	*proctest.Test
	id, addr, web, login string
}

var openLine = regexp.MustCompile(`Open (http://\S+/login#\S+)`)

func startWeb(t *testing.T, bin, nick string, extra ...string) *webNode {
	t.Helper()
	args := append([]string{"web", "--nick", nick, "--web", "127.0.0.1:0", "--no-browser"},
		proctest.LoopbackFlags(t.TempDir())...)
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

// tab is one page in its own browser context, with what went wrong in it.
type tab struct {
	t     *testing.T
	name  string
	ctx   context.Context
	shots string

	mu       sync.Mutex
	problems []string
}

func newTab(t *testing.T, parent context.Context, name, shots string, opts ...chromedp.ContextOption) *tab {
	t.Helper()
	ctx, cancel := chromedp.NewContext(parent, opts...)
	t.Cleanup(cancel)
	b := &tab{t: t, name: name, ctx: ctx, shots: shots}
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

type lineInfo struct {
	Nick, Pid, State string
	Own, Pending     bool
}

func title(want string) string {
	return `document.querySelector('#conv-title').textContent === ` + js(want) + ` && !document.querySelector('#app').hidden`
}

func TestBrowserTwoPeople(t *testing.T) {
	chrome := chromium(t)
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

	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chrome),
		chromedp.Headless,
		chromedp.DisableGPU,
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("no-proxy-server", true),
		chromedp.WindowSize(1280, 800),
		chromedp.UserDataDir(t.TempDir()),
	)
	if os.Geteuid() == 0 {
		opts = append(opts, chromedp.NoSandbox) // chromium refuses to run as root with its sandbox
	}
	alloc, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
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

	// Phone width: the sidebar is a drawer.
	b.do("phone width", chromedp.EmulateViewport(390, 844, chromedp.EmulateMobile, chromedp.EmulateScale(2)))
	b.wait("the sidebar hides", `getComputedStyle(document.querySelector('#sidebar')).visibility === 'hidden'`)
	b.do("open the menu", chromedp.Click(chromedp.CSS(`#nav-open`)))
	b.wait("the drawer opens", `getComputedStyle(document.querySelector('#sidebar')).transform === 'none'`)
	b.shot("07-bob-phone-menu")
	b.do("pick the lobby", chromedp.Click(chromedp.CSS(`#room-list [data-room="lobby"]`)))
	b.wait("the drawer closes on the lobby", title("#lobby")+` && !document.body.classList.contains('nav-open')`)
	b.wait("the lobby at phone width", line(hello)+` !== null && getComputedStyle(document.querySelector('#sidebar')).visibility === 'hidden'`)
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

	for _, p := range []*tab{a, b, a2} {
		for _, pr := range p.problemList() {
			t.Errorf("%s: %s", p.name, pr)
		}
	}

	// The nodes stop cleanly with pages open.
	cancelBrowser()
	for _, n := range []*webNode{alice, bob} {
		n.Signal(syscall.SIGINT)
		n.WaitExit()
	}
	t.Logf("browser test took %v", time.Since(start).Round(time.Millisecond))
}

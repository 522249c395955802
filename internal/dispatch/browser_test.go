package dispatch_test

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/parley-chat/parley/internal/chromium"
)

// A visitor in a real browser clicks "Start chatting", lands in their own
// peer's web app under /me/, and chats with a second visitor; the page
// keeps its peer across a reload.
func TestBrowserVisitorStartsChatting(t *testing.T) {
	chrome := chromium.Require(t)
	s := newSetup(t, 1, 3, time.Hour)
	other := s.visitor()
	other.Start()

	alloc, cancelAlloc := chromium.Allocator(context.Background(), chrome, t.TempDir(), 1100, 760)
	defer cancelAlloc()
	ctx, cancel := chromedp.NewContext(alloc)
	defer cancel()
	// The first action starts the browser and ties it to its context: no
	// timeout on this one.
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("start chromium: %v", err)
	}
	run := func(what string, actions ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		c, stop := context.WithTimeout(ctx, 60*time.Second)
		defer stop()
		if err := chromedp.Do(c, actions...); err != nil {
			png, _ := chromedp.Run(ctx, chromedp.CaptureScreenshot())
			os.WriteFile(filepath.Join(t.TempDir(), "failed.png"), png, 0o644)
			t.Fatalf("%s: %v", what, err)
		}
	}
	poll := func(expr string) chromedp.Action[chromedp.Void] {
		return chromedp.Poll[chromedp.Void](expr, chromedp.WithPollingTimeout(45*time.Second), chromedp.WithPollingInterval(100*time.Millisecond))
	}
	hasLine := func(text string) string {
		return `[...document.querySelectorAll('#messages .msg .text')].some((e) => e.textContent === ` + strconv.Quote(text) + `)`
	}

	run("open the landing page", chromedp.Navigate(s.url+"/"), chromedp.WaitVisible(chromedp.CSS("button[type=submit]")))
	// Click, from the page itself a moment later: the click navigates
	// away, and an action waiting on the old page would see it vanish.
	run("click Start chatting", chromedp.Evaluate[chromedp.Void](`setTimeout(() => document.querySelector('button[type=submit]').click(), 10)`))
	// Polled across the navigations (landing → /start → /me/), which
	// interrupt a poll under way.
	landed := `location.pathname === '/me/' && !document.querySelector('#app').hidden && document.querySelector('#conv-title').textContent === '#lobby'`
	for deadline := time.Now().Add(60 * time.Second); ; {
		c, stop := context.WithTimeout(ctx, 5*time.Second)
		ok, err := chromedp.Run(c, chromedp.Evaluate[bool](`(() => { try { return `+landed+` } catch (e) { return false } })()`))
		stop()
		if err == nil && ok {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the visitor did not land in their web app: %v", err)
		}
		time.Sleep(100 * time.Millisecond) // between page loads there is no event to wait on here
	}
	run("say hello", chromedp.SendKeys(chromedp.ID("text"), "hello from a real browser\n"), poll(hasLine("hello from a real browser")))
	other.WaitText("hello from a real browser")
	if code := other.API("POST", "/rooms/lobby/messages", `{"text":"hello back"}`, nil); code != 202 {
		t.Fatalf("the other visitor posts: %d", code)
	}
	run("see the answer", poll(hasLine("hello back")))
	peerBefore, err := chromedp.Run(ctx, chromedp.Evaluate[string](`fetch('api/v1/info').then((r) => r.json()).then((i) => i.peer)`, chromedp.EvalAsValue, chromedp.EvalAwaitPromise))
	if err != nil {
		t.Fatal(err)
	}
	run("reload", chromedp.Reload(), poll(hasLine("hello from a real browser")))
	peerAfter, err := chromedp.Run(ctx, chromedp.Evaluate[string](`fetch('api/v1/info').then((r) => r.json()).then((i) => i.peer)`, chromedp.EvalAsValue, chromedp.EvalAwaitPromise))
	if err != nil || peerAfter != peerBefore || peerAfter == other.PeerID() {
		t.Errorf("peer before the reload %q, after %q (err %v); the other visitor's is %q", peerBefore, peerAfter, err, other.PeerID())
	}
}

package bench

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"
	"time"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"

	"github.com/parley-chat/parley/internal/chromium"
)

// PageConfig bounds the page-ready benchmark.
type PageConfig struct {
	Stored  int // messages in the room before the page opens
	Loads   int // page loads timed
	Timeout time.Duration
}

// PageResult is how long the web app takes to show a room.
//
// Ready is, per load, from the start of the navigation (the page's time
// origin) to the first frame painted after the newest stored message is
// in the document: what a person sees as "the chat is there". The HTTP
// cache is off, so every load fetches the app, its script and style, and
// the history again, as a first visit does. Unavailable says why nothing
// was measured (no chromium).
type PageResult struct {
	PageConfig
	Ready       Dist
	Unavailable string
}

// readyProbe runs in every document before the page's own script: it
// watches for the marker text and, once it is in the document, records
// the time of the first frame painted after it (a requestAnimationFrame
// callback runs just before a paint, a task queued from it just after).
const readyProbe = `(() => {
  const marker = %s;
  const seen = (n) => n.nodeType === 1 && n.textContent.includes(marker);
  const obs = new MutationObserver((records) => {
    for (const r of records) for (const n of r.addedNodes) {
      if (!seen(n)) continue;
      obs.disconnect();
      requestAnimationFrame(() => setTimeout(() => { window.__parleyReady = performance.now(); }, 0));
      return;
    }
  });
  obs.observe(document, {childList: true, subtree: true});
})();`

// RunPage opens the web app of a node whose room holds cfg.Stored
// messages in headless chromium, cfg.Loads times.
func RunPage(ctx context.Context, cfg PageConfig) (PageResult, error) {
	res := PageResult{PageConfig: cfg}
	chrome := chromium.Find()
	if chrome == "" {
		res.Unavailable = "chromium not found (apt-get install chromium, or set CHROMIUM)"
		return res, nil
	}
	n, err := startWebNode(ctx, roomName)
	if err != nil {
		return res, err
	}
	defer n.close()
	last := ""
	for i := range cfg.Stored {
		last = fmt.Sprintf("stored message %04d", i)
		if _, err := n.app.Post(roomName, last); err != nil {
			return res, fmt.Errorf("store message %d: %w", i, err)
		}
	}
	// The newest message is in the store once the node has shown it.
	if err := waitStored(ctx, n, last, cfg.Timeout); err != nil {
		return res, err
	}

	dir, err := os.MkdirTemp("", "parley-bench-chromium")
	if err != nil {
		return res, err
	}
	defer os.RemoveAll(dir)
	alloc, cancelAlloc := chromium.Allocator(ctx, chrome, dir, 1280, 800)
	defer cancelAlloc()
	tab, cancelTab := chromedp.NewContext(alloc)
	defer cancelTab()
	if err := chromedp.Do(tab); err != nil {
		return res, fmt.Errorf("start chromium (%s): %w", chrome, err)
	}
	run := func(what string, steps ...chromedp.Action[chromedp.Void]) error {
		c, cancel := context.WithTimeout(tab, cfg.Timeout)
		defer cancel()
		if err := chromedp.Do(c, steps...); err != nil {
			return fmt.Errorf("page: %s: %w", what, err)
		}
		return nil
	}
	// Log in once (the login link sets the session cookie), then time
	// plain loads of the app, as a returning person opens it.
	if err := run("log in", chromedp.Navigate(n.base+"/login#"+n.token),
		chromedp.Poll[chromedp.Void](`document.title.includes('#`+roomName+`')`, chromedp.WithPollingTimeout(cfg.Timeout))); err != nil {
		return res, err
	}
	if _, err := chromedp.Call(tab, network.SetCacheDisabled, network.SetCacheDisabledParams{CacheDisabled: true}); err != nil {
		return res, fmt.Errorf("page: disable the cache: %w", err)
	}
	if _, err := chromedp.Call(tab, page.AddScriptToEvaluateOnNewDocument,
		page.AddScriptToEvaluateOnNewDocumentParams{Source: fmt.Sprintf(readyProbe, strconv.Quote(last))}); err != nil {
		return res, fmt.Errorf("page: add the probe: %w", err)
	}
	samples := make([]time.Duration, 0, cfg.Loads)
	for i := range cfg.Loads {
		if err := run(fmt.Sprintf("load %d", i), chromedp.Navigate(n.base+"/"),
			chromedp.Poll[chromedp.Void](`window.__parleyReady !== undefined`, chromedp.WithPollingTimeout(cfg.Timeout))); err != nil {
			return res, err
		}
		c, cancel := context.WithTimeout(tab, cfg.Timeout)
		ms, err := chromedp.Run(c, chromedp.Evaluate[float64](`window.__parleyReady`))
		cancel()
		if err != nil {
			return res, fmt.Errorf("page: read load %d: %w", i, err)
		}
		samples = append(samples, time.Duration(ms*float64(time.Millisecond)))
	}
	res.Ready = NewDist(samples)
	return res, nil
}

// waitStored waits until the node's history API returns text as the
// newest message of the room.
func waitStored(ctx context.Context, n *webNode, text string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		msgs, err := n.app.History(roomName, "", 1)
		if err == nil && len(msgs) == 1 && msgs[0].Text == text {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
	return errors.New("page: the stored messages did not reach the history in time")
}

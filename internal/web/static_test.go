package web_test

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// The web app's files: small, no inline script or style (the server's CSP
// would block them), relative URLs only (it must work under a reverse
// proxy's path prefix), and no way to put network text into the page as
// HTML. Reading the files here also ties the test cache to them, so the
// browser test reruns when the app changes.
func TestStaticFiles(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("static", "*"))
	if err != nil || len(files) == 0 {
		t.Fatalf("static files: %v %v", files, err)
	}
	const budget = 150 << 10
	total := 0
	text := map[string]string{}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		total += len(b)
		text[filepath.Base(f)] = string(b)
	}
	if total > budget {
		t.Errorf("static files are %d bytes, over the %d budget", total, budget)
	}
	t.Logf("static files: %d bytes", total)

	page := text["index.html"]
	for _, bad := range []*regexp.Regexp{
		regexp.MustCompile(`<script(\s[^>]*)?>\s*[^<\s]`), // inline script
		regexp.MustCompile(`<script(?:\s+(?:defer|async|type="[^"]*"))*\s*>`),
		regexp.MustCompile(`<style`),
		regexp.MustCompile(`\sstyle=`),
		regexp.MustCompile(`\son[a-z]+=`), // inline handlers
		regexp.MustCompile(`(?:src|href|action)="(?:/|https?:)`),
	} {
		if m := bad.FindString(page); m != "" {
			t.Errorf("index.html: %q: no inline script or style, relative URLs only", m)
		}
	}
	for _, want := range []string{`src="static/app.js"`, `href="static/app.css"`} {
		if !strings.Contains(page, want) {
			t.Errorf("index.html does not load %s", want)
		}
	}

	js := text["app.js"]
	for _, bad := range []*regexp.Regexp{
		regexp.MustCompile(`\.(?:inner|outer)HTML\b`),
		regexp.MustCompile(`insertAdjacentHTML|document\.write|createContextualFragment|DOMParser`),
		regexp.MustCompile(`\beval\(|new Function\(`),
		regexp.MustCompile(`\.style\.|setAttribute\(\s*['"]style`),
		regexp.MustCompile(`['"]/(?:api|static|login)`),
	} {
		if m := bad.FindString(js); m != "" {
			t.Errorf("app.js: %q: text goes into the page with textContent only, no inline styles, relative URLs only", m)
		}
	}
	if strings.Contains(text["app.css"], "@import") || regexp.MustCompile(`url\(\s*["']?(?:https?:|/)`).MatchString(text["app.css"]) {
		t.Error("app.css loads something from elsewhere: only data: URLs and relative ones")
	}
}

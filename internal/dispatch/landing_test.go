package dispatch

import (
	"strings"
	"testing"
)

func TestLandingPage(t *testing.T) {
	for _, tc := range []struct {
		name      string
		p         page
		want, not []string
	}{
		{"first visit", page{Title: "Parley", Button: true},
			[]string{"<title>Parley</title>", "<h1>Parley</h1>", "<p>" + defaultMessage + "</p>", startForm},
			[]string{continueLink, "{{"}},
		{"returning", page{Title: "Parley", Returning: true, Button: true},
			[]string{continueLink},
			[]string{startForm}},
		{"message, no button", page{Title: "One moment", Message: "Please reload in a minute; nothing is lost."},
			[]string{"<h1>One moment</h1>", "<p>Please reload in a minute; nothing is lost.</p>"},
			[]string{startForm, continueLink, defaultMessage}},
		{"text is escaped", page{Title: `<b>"x"</b>`, Message: "a & {{action}} <script>"},
			[]string{"<title>&lt;b&gt;&#34;x&#34;&lt;/b&gt;</title>", "<p>a &amp; {{action}} &lt;script&gt;</p>"},
			[]string{"<script>", "<b>"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := tc.p.html()
			for _, w := range tc.want {
				if !strings.Contains(got, w) {
					t.Errorf("page lacks %q:\n%s", w, got)
				}
			}
			for _, n := range tc.not {
				if strings.Contains(got, n) {
					t.Errorf("page has %q:\n%s", n, got)
				}
			}
		})
	}
}

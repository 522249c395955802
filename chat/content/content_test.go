package content_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/parley-chat/parley/chat/content"
)

func TestValidateNick(t *testing.T) {
	good := []string{"alice", "Bob_2", "a.b-c", "Zoë", "Ярослава", "李小龍", "नमस्ते", strings.Repeat("ä", content.MaxNickChars), "peer-5hLn4Z"}
	for _, nick := range good {
		if err := content.ValidateNick(nick); err != nil {
			t.Errorf("ValidateNick(%q) = %v, want ok", nick, err)
		}
	}
	bad := []struct {
		nick string
		kind error
		why  string // part of the reason given
	}{
		{"", content.ErrEmpty, "empty"},
		{"alice[FTbHkd]>", content.ErrBadChars, "imitate someone else's tag"},
		{"<alice>", content.ErrBadChars, "imitate"},
		{"al>ice", content.ErrBadChars, "imitate"},
		{"al\u1433ice", content.ErrBadChars, "imitate"}, // a letter that looks like '>'
		{"has space", content.ErrBadChars, "spaces are not allowed"},
		{"tab\there", content.ErrBadChars, "spaces are not allowed"},
		{"al\u200bice", content.ErrBadChars, "invisible"}, // zero-width space
		{"evil\u202egnp", content.ErrBadChars, "text-direction"},
		{"a\u0301\u0301\u0301", content.ErrBadChars, "combining marks"},
		{"\u0301a", content.ErrBadChars, "invisible"},
		{"-dash", content.ErrBadChars, "start with a letter or a digit"},
		{"at@host", content.ErrBadChars, "'@' is not allowed"},
		{"\x1b[2J", content.ErrBadChars, "not allowed"},
		{"\xff", content.ErrBadChars, "UTF-8"},
		{strings.Repeat("n", content.MaxNickChars+1), content.ErrTooLong, "33 characters long; the most is 32"},
	}
	for _, tt := range bad {
		err := content.ValidateNick(tt.nick)
		if err == nil || !errors.Is(err, tt.kind) || !strings.Contains(err.Error(), tt.why) {
			t.Errorf("ValidateNick(%q) = %v, want %v saying %q", tt.nick, err, tt.kind, tt.why)
		}
		if err != nil && strings.ContainsAny(err.Error(), "\x1b\u202e\u200b") {
			t.Errorf("ValidateNick(%q): the reason carries the bad character raw: %q", tt.nick, err)
		}
	}
}

// The limit is in characters, as documented, not in bytes.
func TestNickLimitIsCharacters(t *testing.T) {
	if err := content.ValidateNick(strings.Repeat("й", 20)); err != nil { // 40 bytes
		t.Errorf("a 20-character nick of 40 bytes: %v", err)
	}
}

func TestPeerNick(t *testing.T) {
	if got := content.PeerNick("alice"); got != "alice" {
		t.Errorf("PeerNick(alice) = %q", got)
	}
	if got := content.PeerNick("alice[FTbHkd]>"); got != "" {
		t.Errorf("PeerNick of a bad nick = %q, want \"\"", got)
	}
}

// Package content defines what a Parley message may contain, the same on
// every protocol and from every front end: nicks, text, message IDs and
// send times. Everything a peer sends is checked against it before it is
// stored or shown, so no peer can put a terminal escape on a screen.
package content

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// Limits on what Parley accepts from the network and from the user.
const (
	MaxTextBytes = 4096 // UTF-8 bytes of one message
	// MaxNickChars bounds a nick in characters (Unicode code points).
	MaxNickChars = 32
	// MaxNickBytes is the most UTF-8 bytes a valid nick can take.
	MaxNickBytes = 4 * MaxNickChars
	// MaxClockSkew is how far in the future a sent-at time may be.
	MaxClockSkew = 5 * time.Minute
	// IDLen is the length of a message ID: 32 lowercase hex characters.
	IDLen = 32
)

// Validation errors.
var (
	ErrEmpty    = errors.New("empty")
	ErrTooLong  = errors.New("too long")
	ErrBadChars = errors.New("contains control characters or invalid UTF-8")
)

// NewID returns a fresh random message ID.
func NewID() string {
	var b [IDLen / 2]byte
	rand.Read(b[:]) // never fails (crypto/rand since Go 1.24)
	return hex.EncodeToString(b[:])
}

// ValidateNick accepts a nick: 1–32 characters, each a letter (of any
// script), a digit, '-', '_' or '.', starting with a letter or a digit;
// combining marks may follow a letter (at most two in a row, as some
// scripts need). Everything else is refused with the reason in words:
// whitespace, brackets and '<' '>' (a nick is shown as nick[ID tag], so
// "alice[FTbHkd]>" would imitate someone else's tag), and invisible or
// text-direction characters (they make one nick look like another).
// errors.Is matches ErrEmpty, ErrTooLong or ErrBadChars.
func ValidateNick(nick string) error {
	if nick == "" {
		return &refusal{ErrEmpty, "a nick cannot be empty"}
	}
	if !utf8.ValidString(nick) {
		return &refusal{ErrBadChars, "a nick must be valid UTF-8"}
	}
	if n := utf8.RuneCountInString(nick); n > MaxNickChars {
		return &refusal{ErrTooLong, fmt.Sprintf("nick %q is %d characters long; the most is %d", nick, n, MaxNickChars)}
	}
	marks := 0
	for i, r := range nick {
		switch {
		case strings.ContainsRune(tagLookalikes, r):
		case unicode.IsLetter(r) || unicode.IsDigit(r):
			marks = 0
			continue
		case unicode.In(r, unicode.Mn, unicode.Mc) && i > 0:
			if marks++; marks <= 2 {
				continue
			}
			return &refusal{ErrBadChars, fmt.Sprintf("nick %q stacks more than two combining marks on one letter", nick)}
		case r == '-' || r == '_' || r == '.':
			if i == 0 {
				return &refusal{ErrBadChars, fmt.Sprintf("nick %q must start with a letter or a digit", nick)}
			}
			marks = 0
			continue
		}
		return &refusal{ErrBadChars, fmt.Sprintf("nick %q: %s", nick, whyNot(r))}
	}
	return nil
}

// PeerNick is how a nick a peer sent is shown: as sent when it is valid,
// else "" (no nick: front ends show the peer's ID tag alone). A bad nick
// never makes a peer's message or DM rejected: a peer running an older
// Parley, whose nick rules were looser, keeps talking.
func PeerNick(nick string) string {
	if ValidateNick(nick) != nil {
		return ""
	}
	return nick
}

// tagLookalikes are letters that look like '<' or '>' (Canadian
// syllabics), refused like the characters they imitate.
const tagLookalikes = "\u1433\u1438\u1405\u140a"

// whyNot says why r may not be in a nick.
func whyNot(r rune) string {
	switch {
	case unicode.IsSpace(r):
		return "spaces are not allowed; use '-', '_' or '.' between words"
	case strings.ContainsRune("[]<>"+tagLookalikes, r):
		return fmt.Sprintf("%q is not allowed: nicks are shown as nick[ID tag], and brackets would let one imitate someone else's tag", r)
	case unicode.Is(unicode.Cf, r) || unicode.IsControl(r) || unicode.In(r, unicode.Mn, unicode.Mc, unicode.Me):
		return fmt.Sprintf("the invisible or text-direction character U+%04X is not allowed: it makes one nick look like another", r)
	default:
		return fmt.Sprintf("%q is not allowed; use letters, digits, '-', '_' and '.'", r)
	}
}

// refusal is a validation error with its reason in words; errors.Is
// matches its kind (ErrEmpty, ErrTooLong, ErrBadChars).
type refusal struct {
	kind error
	msg  string
}

func (r *refusal) Error() string { return r.msg }
func (r *refusal) Unwrap() error { return r.kind }

// ValidateText accepts 1–4096 bytes of UTF-8; tabs and newlines are the
// only control characters allowed, so no peer can send terminal escapes.
func ValidateText(text string) error {
	if text == "" {
		return fmt.Errorf("text: %w", ErrEmpty)
	}
	if len(text) > MaxTextBytes {
		return fmt.Errorf("text: %w (%d bytes, max %d)", ErrTooLong, len(text), MaxTextBytes)
	}
	if !printable(text, true) {
		return fmt.Errorf("text: %w", ErrBadChars)
	}
	return nil
}

func printable(s string, multiline bool) bool {
	if !utf8.ValidString(s) {
		return false
	}
	for _, r := range s {
		if multiline && (r == '\n' || r == '\t') {
			continue
		}
		if unicode.IsControl(r) {
			return false
		}
	}
	return true
}

// ValidateID accepts a message ID: IDLen lowercase hex characters.
func ValidateID(id string) error {
	if len(id) != IDLen {
		return fmt.Errorf("id: want %d hex characters, got %d", IDLen, len(id))
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return errors.New("id: not lowercase hex")
		}
	}
	return nil
}

// ValidateSentAt accepts a send time (Unix ms) at most MaxClockSkew ahead
// of now and, if maxAge > 0, at most maxAge behind.
func ValidateSentAt(ms int64, now time.Time, maxAge time.Duration) error {
	t := time.UnixMilli(ms)
	if t.After(now.Add(MaxClockSkew)) {
		return fmt.Errorf("sent-at %s is in the future", t.UTC().Format(time.RFC3339))
	}
	if maxAge > 0 && t.Before(now.Add(-maxAge)) {
		return fmt.Errorf("sent-at %s is too old", t.UTC().Format(time.RFC3339))
	}
	return nil
}

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
	"time"
	"unicode"
	"unicode/utf8"
)

// Limits on what Parley accepts from the network and from the user.
const (
	MaxTextBytes = 4096 // UTF-8 bytes of one message
	MaxNickBytes = 32
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

// ValidateNick accepts 1–32 bytes of printable UTF-8 without line breaks.
func ValidateNick(nick string) error {
	if nick == "" {
		return fmt.Errorf("nick: %w", ErrEmpty)
	}
	if len(nick) > MaxNickBytes {
		return fmt.Errorf("nick: %w (max %d bytes)", ErrTooLong, MaxNickBytes)
	}
	if !printable(nick, false) {
		return fmt.Errorf("nick: %w", ErrBadChars)
	}
	return nil
}

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

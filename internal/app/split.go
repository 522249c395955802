package app

import (
	"fmt"
	"strings"
	"unicode/utf8"

	"github.com/parley-chat/parley/chat"
)

// MaxParts bounds how many messages one long text becomes.
const MaxParts = 16

// SplitText cuts text into parts of at most max bytes each, in order: at
// the last line break, else the last space, in the second half of a part,
// else at a character boundary. A line break or space where it was cut is
// dropped; nothing else changes.
func SplitText(text string, max int) []string {
	var parts []string
	for len(text) > max {
		cut := max
		for cut > 0 && !utf8.RuneStart(text[cut]) {
			cut--
		}
		skip := 0
		if i := strings.LastIndexByte(text[:cut], '\n'); i >= max/2 {
			cut, skip = i, 1
		} else if i := strings.LastIndexAny(text[:cut], " \t"); i >= max/2 {
			cut, skip = i, 1
		}
		parts = append(parts, text[:cut])
		text = text[cut+skip:]
	}
	if text != "" || len(parts) == 0 {
		parts = append(parts, text)
	}
	return parts
}

// splitForSending cuts a text too long for one message into several, or
// says why it will not: never cut silently.
func splitForSending(text string) ([]string, error) {
	if len(text) <= chat.MaxTextBytes {
		return []string{text}, nil
	}
	parts := SplitText(text, chat.MaxTextBytes)
	if len(parts) > MaxParts {
		return nil, fmt.Errorf("that text is %d bytes: too long to send even as %d messages of at most %d bytes each; send it in pieces", len(text), MaxParts, chat.MaxTextBytes)
	}
	for _, p := range parts {
		if err := chat.ValidateText(p); err != nil {
			return nil, err
		}
	}
	return parts, nil
}

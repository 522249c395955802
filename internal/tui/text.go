package tui

import (
	"hash/fnv"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/charmbracelet/lipgloss"
	"github.com/charmbracelet/x/ansi"
	"github.com/libp2p/go-libp2p/core/peer"
)

// clean makes s safe to put on one screen line: whatever a peer sent (a
// nick, a message, an error that quotes one) is shown as text, never
// interpreted by the terminal. Control characters become their visible
// Unicode pictures (ESC shows as ␛), C1 controls, invalid UTF-8 and
// bidirectional overrides become U+FFFD, a tab becomes spaces.
// chat already refuses control characters from the network; this is the
// last line of defence, applied to everything the UI draws.
func clean(s string) string {
	safe := true
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c >= 0x7f {
			safe = false
			break
		}
	}
	if safe {
		return s
	}
	var b strings.Builder
	b.Grow(len(s))
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		i += size
		switch {
		case r == utf8.RuneError && size <= 1:
			b.WriteRune(utf8.RuneError)
		case r == '\t':
			b.WriteString("    ")
		case r < 0x20:
			b.WriteRune(0x2400 + r) // ␀ … ␟: ESC shows as ␛
		case r == 0x7f:
			b.WriteRune('␡')
		case r >= 0x80 && r < 0xa0, unsafeFormat(r):
			b.WriteRune(utf8.RuneError)
		default:
			b.WriteRune(r)
		}
	}
	return b.String()
}

// unsafeFormat reports the format characters that reorder or break the
// text around them on a terminal: bidirectional embeddings, overrides and
// isolates, and the Unicode line and paragraph separators.
func unsafeFormat(r rune) bool {
	switch {
	case r >= 0x202a && r <= 0x202e, r >= 0x2066 && r <= 0x2069:
		return true
	case r == 0x200e, r == 0x200f, r == 0x061c, r == 0x2028, r == 0x2029:
		return true
	}
	return false
}

// cleanLines splits a message into its lines, each cleaned.
func cleanLines(s string) []string {
	lines := strings.Split(strings.ReplaceAll(s, "\r\n", "\n"), "\n")
	for i, l := range lines {
		lines[i] = clean(l)
	}
	return lines
}

// width is the number of terminal cells s takes (s is cleaned text or
// text styled by lipgloss).
func width(s string) int { return ansi.StringWidth(s) }

// truncate cuts plain text s to at most w cells, ending in "…" when cut.
func truncate(s string, w int) string {
	if w <= 0 {
		return ""
	}
	if width(s) <= w {
		return s
	}
	return ansi.Truncate(s, w, "…")
}

// pad fills s (styled, sw cells wide) with spaces up to w cells.
func pad(s string, sw, w int) string {
	if sw >= w {
		return s
	}
	return s + strings.Repeat(" ", w-sw)
}

// fit truncates plain text s to w cells, styles it and pads it to w.
func fit(s string, st lipgloss.Style, w int) string {
	s = truncate(s, w)
	return pad(st.Render(s), width(s), w)
}

// wrap breaks one cleaned line into rows of at most first cells (the
// first row) and rest cells (the others), at spaces where it can and
// inside words where it must.
func wrap(s string, first, rest int) []string {
	first, rest = max(first, 1), max(rest, 1)
	if width(s) <= first {
		return []string{s}
	}
	var rows []string
	var cur strings.Builder
	curW, limit := 0, first
	flush := func() {
		rows = append(rows, cur.String())
		cur.Reset()
		curW, limit = 0, rest
	}
	for i, word := range strings.Split(s, " ") {
		ww := width(word)
		if i > 0 {
			switch {
			case curW+1+ww <= limit, ww > rest && curW+1 < limit:
				// The space fits, and the word too (or it is broken
				// anyway, so it may as well start here).
				cur.WriteByte(' ')
				curW++
			case curW > 0:
				flush() // the row breaks at this space
			}
		}
		for ww > limit-curW {
			// A word longer than the row: break it.
			head := ansi.Truncate(word, limit-curW, "")
			if head == "" && curW > 0 {
				flush()
				continue
			}
			if head == "" {
				head = string([]rune(word)[:1]) // a wide rune on a one-cell row
			}
			cur.WriteString(head)
			word = word[len(head):]
			ww = width(word)
			flush()
		}
		cur.WriteString(word)
		curW += ww
	}
	if curW > 0 || len(rows) == 0 {
		rows = append(rows, cur.String())
	}
	return rows
}

// shortID is the end of a peer ID that the UI shows next to every nick:
// the nick is whatever its sender chose, the ID is who it really is.
func shortID(id peer.ID) string {
	s := id.String()
	return s[max(0, len(s)-6):]
}

// palette holds 256-colour foregrounds that read on dark and light
// backgrounds alike.
var palette = []lipgloss.Color{
	"32", "33", "37", "38", "39", "41", "69", "70", "75", "98", "99", "105",
	"111", "127", "128", "130", "133", "134", "135", "136", "140", "166", "167", "168",
	"169", "170", "172", "173", "178", "179", "184", "202", "203", "208", "209", "214",
}

// peerColor is a colour that follows the peer ID, not the nick: an
// impostor using a friend's nick gets another colour (and another short
// ID).
func peerColor(id peer.ID) lipgloss.Color {
	h := fnv.New32a()
	h.Write([]byte(id))
	return palette[h.Sum32()%uint32(len(palette))]
}

// mentions reports whether text names nick as a word (case-insensitive).
func mentions(text, nick string) bool {
	if nick == "" {
		return false
	}
	lt, ln := strings.ToLower(text), strings.ToLower(nick)
	for off := 0; ; {
		i := strings.Index(lt[off:], ln)
		if i < 0 {
			return false
		}
		start, end := off+i, off+i+len(ln)
		if !wordRune(lastRune(lt[:start])) && !wordRune(firstRune(lt[end:])) {
			return true
		}
		off = start + 1
	}
}

func wordRune(r rune) bool {
	return r == '_' || r == '-' || unicode.IsLetter(r) || unicode.IsDigit(r)
}

func lastRune(s string) rune {
	if s == "" {
		return utf8.RuneError
	}
	r, _ := utf8.DecodeLastRuneInString(s)
	return r
}

func firstRune(s string) rune {
	if s == "" {
		return utf8.RuneError
	}
	r, _ := utf8.DecodeRuneInString(s)
	return r
}

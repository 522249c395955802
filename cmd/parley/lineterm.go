package main

import (
	"io"
	"os"
	"strings"
	"sync"
	"unicode/utf8"

	"golang.org/x/term"
)

// lineTerminal is line mode's input on a terminal (also `--plain` once a
// full-screen front end exists): golang.org/x/term's line editor, which
// redraws the line being typed when a message arrives, with what x/term
// does not do by itself:
//
//   - It knows the terminal's real width (followSize): x/term assumes 80
//     columns, so input wrapped at column 80 in a wide terminal and arriving
//     messages garbled the typed line in a narrow one.
//   - A line you send is not left on the screen: x/term leaves it there,
//     then the message comes back and is shown again. Enter is handled here
//     (the reader turns it into enterKey, which x/term hands to its
//     AutoCompleteCallback): the typed text is cleared from the input line
//     and shows once, as the message; a /command stays visible above.
//   - A line longer than x/term holds (4096 characters) is not cut: x/term
//     drops what comes after, silently; the rest is kept here and sent with
//     it (the app splits a long text into several messages and says so).
type lineTerminal struct {
	*term.Terminal
	lines chan lineResult

	mu       sync.Mutex
	prompt   string
	overflow []rune // typed past maxEditorLine, after the end of the line
	cut      bool   // edited past maxEditorLine where nothing can be kept
}

type lineResult struct {
	line string
	err  error
}

// enterKey is what the reader turns Enter into: a private-use character,
// which x/term passes to AutoCompleteCallback instead of ending the line.
const enterKey = '\uE000'

// maxEditorLine is the most characters x/term's editor holds in a line.
const maxEditorLine = 4096

func newLineTerminal(in io.Reader, out io.Writer) *lineTerminal {
	lt := &lineTerminal{lines: make(chan lineResult, 16), prompt: "> "}
	lt.Terminal = term.NewTerminal(struct {
		io.Reader
		io.Writer
	}{&enterReader{r: in}, out}, lt.prompt)
	lt.Terminal.AutoCompleteCallback = lt.key
	go lt.read()
	return lt
}

// read runs x/term's editor; lines come out of key, the end of input here.
func (lt *lineTerminal) read() {
	defer close(lt.lines)
	for {
		line, err := lt.Terminal.ReadLine()
		if err != nil {
			lt.lines <- lineResult{err: err}
			return
		}
		lt.lines <- lineResult{line: line} // an Enter the reader did not see
	}
}

// ReadLine returns the next line typed, io.EOF at the end (Ctrl-D, Ctrl-C).
func (lt *lineTerminal) ReadLine() (string, error) {
	r, ok := <-lt.lines
	if !ok {
		return "", io.EOF
	}
	return r.line, r.err
}

// SetPrompt sets the prompt.
func (lt *lineTerminal) SetPrompt(prompt string) {
	lt.mu.Lock()
	lt.prompt = prompt
	lt.mu.Unlock()
	lt.Terminal.SetPrompt(prompt)
}

// key sees every key x/term does not handle itself, with the line so far
// (x/term's lock is not held).
func (lt *lineTerminal) key(line string, pos int, key rune) (string, int, bool) {
	if key == enterKey {
		lt.enter(line)
		return "", 0, true // clear the input line
	}
	if key < ' ' {
		return "", 0, false
	}
	n := utf8.RuneCountInString(line)
	lt.mu.Lock()
	defer lt.mu.Unlock()
	switch {
	case n >= maxEditorLine && pos == len(line):
		lt.overflow = append(lt.overflow, key) // x/term drops it
	case n >= maxEditorLine:
		lt.cut = true
	case len(lt.overflow) > 0:
		lt.cut = true // edited after the overflow began: its place is lost
	}
	return "", 0, false
}

// enter sends the line typed.
func (lt *lineTerminal) enter(line string) {
	lt.mu.Lock()
	full := line + string(lt.overflow)
	cut, prompt := lt.cut, lt.prompt
	lt.overflow, lt.cut = nil, false
	lt.mu.Unlock()
	switch {
	case cut:
		io.WriteString(lt.Terminal, "! that line is longer than the line editor holds (4096 characters) and was edited past that point, so it was not sent; paste it again without editing it\n")
		return
	case strings.TrimSpace(full) == "":
		return
	case strings.HasPrefix(full, "/") && !strings.HasPrefix(full, "//"):
		// A command stays visible above its answer; text comes back as
		// the message it became.
		io.WriteString(lt.Terminal, prompt+full+"\n")
	}
	lt.Terminal.History.Add(full)
	lt.lines <- lineResult{line: full}
}

// enterReader turns Enter (CR, LF or CRLF) into enterKey.
type enterReader struct {
	r      io.Reader
	buf    [1024]byte
	pend   []byte
	err    error
	lastCR bool
}

func (e *enterReader) Read(p []byte) (int, error) {
	for len(e.pend) == 0 {
		if e.err != nil {
			return 0, e.err
		}
		n, err := e.r.Read(e.buf[:])
		for _, b := range e.buf[:n] {
			switch {
			case b == '\n' && e.lastCR: // the LF of a CRLF
			case b == '\r' || b == '\n':
				e.pend = utf8.AppendRune(e.pend, enterKey)
			default:
				e.pend = append(e.pend, b)
			}
			e.lastCR = b == '\r'
		}
		e.err = err
	}
	n := copy(p, e.pend)
	e.pend = e.pend[n:]
	return n, nil
}

// followSize tells t the terminal's size now and whenever it changes, until
// stop is called. Without it x/term assumes 80 columns.
func followSize(t *term.Terminal, f *os.File) (stop func()) {
	size := func() (int, int, error) { return term.GetSize(int(f.Fd())) }
	resized := make(chan os.Signal, 1)
	stopSignals := notifyResize(resized)
	stopFollowing := followSizeOf(t, size, resized)
	return func() { stopSignals(); stopFollowing() }
}

// sizeSet, if not nil, is called after each size was set (for tests).
var sizeSet func()

// followSizeOf sets t's size from size now and at every value on resized.
func followSizeOf(t *term.Terminal, size func() (w, h int, err error), resized <-chan os.Signal) (stop func()) {
	set := func() {
		if w, h, err := size(); err == nil && w > 0 {
			t.SetSize(w, h)
		}
		if sizeSet != nil {
			sizeSet()
		}
	}
	set()
	done := make(chan struct{})
	go func() {
		for {
			select {
			case <-done:
				return
			case <-resized:
				set()
			}
		}
	}()
	var once sync.Once
	return func() { once.Do(func() { close(done) }) }
}

package main

import (
	"fmt"
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
//     then the message comes back and is shown again. Once x/term has taken
//     the line (History.Add, right after Enter), the rows it took are
//     erased, while output is held back so nothing lands in between; the
//     text shows once, as the message. A /command stays visible above.
//   - A line longer than x/term holds (4096 characters) is not cut: x/term
//     drops what comes after, silently; the rest is kept here and sent with
//     it (the app splits a long text into several messages and says so).
type lineTerminal struct {
	*term.Terminal
	raw   io.Writer // the terminal itself
	lines chan lineResult

	out      sync.Mutex // held while writing, and from an Enter until its line is erased
	mu       sync.Mutex // guards what follows
	prompt   string
	width    int
	overflow []rune // typed past maxEditorLine, after the end of the line
	cut      bool   // edited past maxEditorLine where nothing can be kept
	holding  bool   // out is held for an Enter x/term is handling
}

type lineResult struct {
	line string
	err  error
}

// maxEditorLine is the most characters x/term's editor holds in a line.
const maxEditorLine = 4096

func newLineTerminal(in io.Reader, out io.Writer) *lineTerminal {
	lt := &lineTerminal{raw: out, lines: make(chan lineResult, 16), prompt: "> ", width: 80}
	lt.Terminal = term.NewTerminal(struct {
		io.Reader
		io.Writer
	}{&enterReader{lt: lt, r: in}, out}, lt.prompt)
	lt.Terminal.History = &eraseOnAdd{lt: lt, History: lt.Terminal.History}
	lt.Terminal.AutoCompleteCallback = lt.key
	go lt.read()
	return lt
}

// read runs x/term's editor.
func (lt *lineTerminal) read() {
	defer close(lt.lines)
	for {
		line, err := lt.Terminal.ReadLine()
		if err != nil {
			lt.release() // no History.Add after Ctrl-C, Ctrl-D or an error
			lt.lines <- lineResult{err: err}
			return
		}
		lt.mu.Lock()
		line += string(lt.overflow)
		cut := lt.cut
		lt.overflow, lt.cut = nil, false
		lt.mu.Unlock()
		if cut {
			lt.Write([]byte("! that line is longer than the line editor holds (4096 characters) and was edited past that point, so it was not sent; paste it again without editing it\n"))
			continue
		}
		lt.lines <- lineResult{line: line}
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

// Write prints p above the line being typed.
func (lt *lineTerminal) Write(p []byte) (int, error) {
	lt.out.Lock()
	defer lt.out.Unlock()
	return lt.Terminal.Write(p)
}

// SetPrompt sets the prompt.
func (lt *lineTerminal) SetPrompt(prompt string) {
	lt.mu.Lock()
	lt.prompt = prompt
	lt.mu.Unlock()
	lt.Terminal.SetPrompt(prompt)
}

// SetSize tells the editor the terminal's size.
func (lt *lineTerminal) SetSize(w, h int) error {
	lt.out.Lock()
	defer lt.out.Unlock()
	lt.mu.Lock()
	lt.width = w
	lt.mu.Unlock()
	return lt.Terminal.SetSize(w, h)
}

// hold keeps output back from the moment x/term gets an Enter until the
// line it ends is erased (release).
func (lt *lineTerminal) hold() {
	lt.out.Lock()
	lt.mu.Lock()
	lt.holding = true
	lt.mu.Unlock()
}

func (lt *lineTerminal) release() {
	lt.mu.Lock()
	held := lt.holding
	lt.holding = false
	lt.mu.Unlock()
	if held {
		lt.out.Unlock()
	}
}

// eraseOnAdd is x/term's input history; x/term adds each line right after
// its Enter, which is when the line is erased from the screen.
type eraseOnAdd struct {
	term.History
	lt *lineTerminal
}

func (h *eraseOnAdd) Add(line string) {
	lt := h.lt
	lt.mu.Lock()
	prompt, width, holding := lt.prompt, lt.width, lt.holding
	lt.mu.Unlock()
	if holding && !(strings.HasPrefix(line, "/") && !strings.HasPrefix(line, "//")) {
		// x/term wrote prompt and line, then CR LF: the cursor is at the
		// start of the row below them. Up over their rows, clear below.
		rows := (utf8.RuneCountInString(prompt)+utf8.RuneCountInString(line))/max(width, 1) + 1
		fmt.Fprintf(lt.raw, "\x1b[%dA\r\x1b[J", rows)
	}
	lt.release()
	if line != "" {
		h.History.Add(line)
	}
}

// key sees every printable key before x/term adds it (x/term's lock is
// not held): what x/term would drop past maxEditorLine is kept.
func (lt *lineTerminal) key(line string, pos int, key rune) (string, int, bool) {
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

// enterReader hands x/term the keys typed, one line at a time: a chunk
// ends with its first Enter, and output is held (lt.hold) from then until
// x/term has taken the line. The LF of a CR LF is dropped.
type enterReader struct {
	lt     *lineTerminal
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
			if b == '\n' && e.lastCR {
				e.lastCR = false
				continue
			}
			e.lastCR = b == '\r'
			e.pend = append(e.pend, b)
		}
		e.err = err
	}
	n := min(len(p), len(e.pend))
	if i := strings.IndexAny(string(e.pend[:n]), "\r\n"); i >= 0 {
		n = i + 1
		e.lt.hold()
	}
	copy(p, e.pend[:n])
	e.pend = e.pend[n:]
	return n, nil
}

// followSize tells lt the terminal's size now and whenever it changes,
// until stop is called. Without it x/term assumes 80 columns.
func followSize(lt *lineTerminal, f *os.File) (stop func()) {
	size := func() (int, int, error) { return term.GetSize(int(f.Fd())) }
	resized := make(chan os.Signal, 1)
	stopSignals := notifyResize(resized)
	stopFollowing := followSizeOf(lt, size, resized)
	return func() { stopSignals(); stopFollowing() }
}

// sizeSet, if not nil, is called after each size was set (for tests).
var sizeSet func()

// followSizeOf sets lt's size from size now and at every value on resized.
func followSizeOf(lt *lineTerminal, size func() (w, h int, err error), resized <-chan os.Signal) (stop func()) {
	set := func() {
		if w, h, err := size(); err == nil && w > 0 {
			lt.SetSize(w, h)
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

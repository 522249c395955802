package main

import (
	"bytes"
	"io"
	"os"
	"strings"
	"sync"
	"testing"
	"time"
)

// screen is a terminal's output, written from several goroutines.
type screen struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *screen) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *screen) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func (s *screen) Reset() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.b.Reset()
}

// typing starts a line terminal whose keyboard is the returned writer.
func typing(t *testing.T) (*lineTerminal, io.Writer, *screen) {
	t.Helper()
	r, w := io.Pipe()
	t.Cleanup(func() { w.Close() })
	out := &screen{}
	return newLineTerminal(r, out), w, out
}

func readLine(t *testing.T, lt *lineTerminal) string {
	t.Helper()
	got := make(chan string, 1)
	go func() {
		l, err := lt.ReadLine()
		if err != nil {
			l = "error: " + err.Error()
		}
		got <- l
	}()
	select {
	case l := <-got:
		return l
	case <-time.After(10 * time.Second):
		t.Fatal("no line read")
		return ""
	}
}

// The line editor wraps input at the terminal's real width, told at start
// and again when the terminal is resized (SIGWINCH); it assumed 80.
func TestLineEditorKnowsTheTerminalWidth(t *testing.T) {
	set := make(chan struct{}, 1)
	sizeSet = func() { set <- struct{}{} }
	defer func() { sizeSet = nil }()
	lt, keys, out := typing(t)
	width := 150
	resized := make(chan os.Signal, 1)
	stop := followSizeOf(lt, func() (int, int, error) { return width, 40, nil }, resized)
	defer stop()
	<-set
	io.WriteString(keys, strings.Repeat("a", 100))
	io.WriteString(keys, "\r")
	if l := readLine(t, lt); len(l) != 100 {
		t.Fatalf("read %d characters, want 100", len(l))
	}
	if !strings.Contains(out.String(), strings.Repeat("a", 100)) {
		t.Errorf("100 characters wrapped in a 150-column terminal: %q", out.String())
	}

	width = 50
	resized <- os.Interrupt // any signal value: a resize
	<-set
	out.Reset()
	io.WriteString(keys, strings.Repeat("b", 60))
	io.WriteString(keys, "\r")
	readLine(t, lt)
	if !strings.Contains(out.String(), "b\r\nb") {
		t.Errorf("60 characters did not wrap in a 50-column terminal: %q", out.String())
	}
}

// A line sent is erased once x/term has taken it (it comes back as the
// message, once), over all the rows it took; a command stays visible
// above its answer.
func TestTypedLineIsNotShownTwice(t *testing.T) {
	lt, keys, out := typing(t)
	io.WriteString(keys, "hello there\r")
	if l := readLine(t, lt); l != "hello there" {
		t.Fatalf("read %q", l)
	}
	// x/term ends the line (CR LF), then its one row is erased.
	if !strings.Contains(out.String(), "hello there\r\n\x1b[1A\r\x1b[J") {
		t.Errorf("the typed line is not erased: %q", out.String())
	}
	lt.SetSize(20, 10)
	out.Reset()
	io.WriteString(keys, strings.Repeat("c", 30)+"\r") // "> " and 30: two rows of 20
	readLine(t, lt)
	if !strings.Contains(out.String(), "\r\n\x1b[2A\r\x1b[J") {
		t.Errorf("a line of two rows is not erased: %q", out.String())
	}
	out.Reset()
	io.WriteString(keys, "/peers\r\n")
	if l := readLine(t, lt); l != "/peers" {
		t.Fatalf("read %q", l)
	}
	if strings.Contains(out.String(), "\x1b[J") {
		t.Errorf("a command was erased: %q", out.String())
	}
	// Nothing printed in between: output waits while a line is erased.
	lt.Write([]byte("a message\n"))
	if strings.Count(out.String(), "a message") != 1 {
		t.Errorf("output after a line: %q", out.String())
	}
}

// x/term's editor holds 4096 characters and silently dropped the rest of
// a longer paste; the whole line comes through.
func TestLongPasteIsNotCut(t *testing.T) {
	lt, keys, _ := typing(t)
	go io.WriteString(keys, strings.Repeat("x", 5000)+"\r")
	if l := readLine(t, lt); l != strings.Repeat("x", 5000) {
		t.Errorf("read %d characters, want 5000", len(l))
	}
}

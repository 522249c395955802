// Package tmuxtest runs terminal programs in tmux for tests: a real
// pseudo-terminal of a chosen size, keys typed with send-keys, the screen
// read with capture-pane. Each Server is a private tmux server (its own
// socket, -L), killed when the test ends; no other tmux server is touched.
package tmuxtest

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// Timeout bounds each wait for the screen.
const Timeout = 20 * time.Second

// Server is one private tmux server.
type Server struct {
	t      testing.TB
	tmux   string
	socket string
}

var servers atomic.Int64

// New starts nothing yet: the server starts with the first window. The
// test is skipped, saying why, when tmux is not installed.
func New(t testing.TB) *Server {
	t.Helper()
	path, err := exec.LookPath("tmux")
	if err != nil {
		t.Skip("tmux is not installed (apt-get install tmux): this test runs the program in a pseudo-terminal through tmux")
	}
	s := &Server{t: t, tmux: path,
		socket: fmt.Sprintf("parley-test-%d-%d-%d", os.Getpid(), time.Now().UnixNano(), servers.Add(1))}
	t.Cleanup(func() {
		// Only this test's server, by its own socket.
		exec.Command(s.tmux, "-L", s.socket, "kill-server").Run()
	})
	return s
}

func (s *Server) run(args ...string) (string, error) {
	cmd := exec.Command(s.tmux, append([]string{"-L", s.socket, "-f", os.DevNull}, args...)...)
	// tmux needs a TERM even when nothing attaches (CI has none); the
	// programs inside see tmux's own.
	cmd.Env = append(os.Environ(), "TERM=xterm-256color")
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		return out.String(), fmt.Errorf("tmux %s: %w: %s", strings.Join(args, " "), err, errb.String())
	}
	return out.String(), nil
}

func (s *Server) must(args ...string) string {
	s.t.Helper()
	out, err := s.run(args...)
	if err != nil {
		s.t.Fatal(err)
	}
	return out
}

// Start opens a window named name, w×h cells, running the shell command
// line. When the command ends, the window stays (with what it printed)
// until the server is killed.
func (s *Server) Start(name string, w, h int, line string) {
	s.t.Helper()
	s.must("new-session", "-d", "-s", name, "-x", fmt.Sprint(w), "-y", fmt.Sprint(h), line,
		";", "set-option", "-t", target(name), "remain-on-exit", "on")
}

// Keys sends tmux key names (Enter, C-c, M-1, PageUp, …).
func (s *Server) Keys(name string, keys ...string) {
	s.t.Helper()
	s.must(append([]string{"send-keys", "-t", target(name)}, keys...)...)
}

// Type types text literally.
func (s *Server) Type(name, text string) {
	s.t.Helper()
	s.must("send-keys", "-t", target(name), "-l", text)
}

// Paste pastes text as a terminal paste (bracketed when the program asked
// for it).
func (s *Server) Paste(name, text string) {
	s.t.Helper()
	buf := "paste-" + name
	s.must("set-buffer", "-b", buf, text)
	s.must("paste-buffer", "-p", "-d", "-b", buf, "-t", target(name))
}

// Screen returns what the window shows, one string per row.
func (s *Server) Screen(name string) []string {
	s.t.Helper()
	return strings.Split(strings.TrimSuffix(s.must("capture-pane", "-p", "-t", target(name)), "\n"), "\n")
}

// All returns what the window printed, its scrolled-off history first.
func (s *Server) All(name string) string {
	s.t.Helper()
	return s.must("capture-pane", "-p", "-S", "-", "-t", target(name))
}

// Display returns a tmux format about the window, e.g. "#{alternate_on}".
func (s *Server) Display(name, format string) string {
	s.t.Helper()
	return strings.TrimSpace(s.must("display-message", "-p", "-t", target(name), format))
}

// Resize makes the window w×h cells.
func (s *Server) Resize(name string, w, h int) {
	s.t.Helper()
	s.must("resize-window", "-t", target(name), "-x", fmt.Sprint(w), "-y", fmt.Sprint(h))
}

// WaitFor polls the screen until cond holds for it and returns it; it
// fails the test with the last screen after Timeout.
func (s *Server) WaitFor(name, what string, cond func(screen []string) bool) []string {
	s.t.Helper()
	deadline := time.Now().Add(Timeout)
	for {
		scr := s.Screen(name)
		if cond(scr) {
			return scr
		}
		if time.Now().After(deadline) {
			s.t.Fatalf("%s: no %s within %v; the screen:\n%s", name, what, Timeout, strings.Join(scr, "\n"))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// WaitText waits until the screen shows text.
func (s *Server) WaitText(name, text string) []string {
	s.t.Helper()
	return s.WaitFor(name, fmt.Sprintf("%q", text), func(scr []string) bool { return Contains(scr, text) })
}

// Contains reports whether a row of screen contains text.
func Contains(screen []string, text string) bool {
	for _, l := range screen {
		if strings.Contains(l, text) {
			return true
		}
	}
	return false
}

// MissingModes returns the terminal modes (as stty -a names them: icanon,
// echo, …) that are not set in text, the output of stty -a.
func MissingModes(text string, modes ...string) []string {
	var missing []string
	for _, m := range modes {
		if !regexp.MustCompile(`(^|\s)` + regexp.QuoteMeta(m) + `(\s|$)`).MatchString(text) {
			missing = append(missing, m)
		}
	}
	return missing
}

// target names the window of session name exactly: a bare name may
// also match another session's window.
func target(name string) string { return "=" + name + ":" }

// Quote makes s one word for sh.
func Quote(s string) string { return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'" }

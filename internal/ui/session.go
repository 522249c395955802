// Package ui holds Parley's front ends for a terminal or a pipe: lines
// typed (or JSON commands) in, the node's events out as text lines or
// JSON objects. It is a thin adapter over internal/app: commands are
// parsed and executed there, and ui only renders.
package ui

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"

	"github.com/parley-chat/parley/chat"
	"github.com/parley-chat/parley/internal/app"
)

// MaxLineBytes bounds one input line; longer lines are refused whole.
const MaxLineBytes = 64 << 10

// eventBuffer is the line and JSON front ends' queue: deep enough that a
// terminal or a pipe read at human or script speed never falls behind a
// burst; if one does, it resumes from the bus's replay buffer.
const eventBuffer = 1 << 15

// Config describes one front-end session.
type Config struct {
	JSON bool
	// ReadLine returns the next input line, io.EOF at the end; nil for a
	// front end that only renders (input comes from elsewhere).
	ReadLine func() (string, error)
	// Out receives rendered lines; it is written from two goroutines
	// under a lock.
	Out io.Writer
	// SetPrompt is told the current room (terminal mode only).
	SetPrompt func(room string)
	// Ready is printed first.
	Ready Ready
}

type session struct {
	a   *app.App
	s   *app.Session
	cfg Config
	r   Renderer

	outMu sync.Mutex // one line at a time on Out
}

// Run prints the ready line, renders the node's events as they come (those
// since the node started included) and executes input lines until end of
// input, /quit, ctx's end or another front end's quit; it then asks the
// program to end (a.Quit) and returns once the program has shut the node
// down and every event has been printed.
func Run(ctx context.Context, a *app.App, cfg Config) error {
	current := ""
	if len(cfg.Ready.Rooms) > 0 {
		current = cfg.Ready.Rooms[0]
	}
	s := &session{a: a, s: a.NewSession(current), cfg: cfg}
	if cfg.JSON {
		s.r = JSON{}
	} else {
		s.r = Text{Current: s.s.Current}
	}
	s.setPrompt()
	s.print(s.r.Ready(cfg.Ready))

	// From the first event on: what the node did before this front end
	// started (history replayed at join) is shown too.
	sub, err := a.Subscribe(chat.WithBuffer(eventBuffer), chat.After(0))
	if errors.Is(err, chat.ErrGap) {
		sub, err = a.Subscribe(chat.WithBuffer(eventBuffer))
	}
	if err != nil {
		return fmt.Errorf("subscribe to events: %w", err)
	}
	rendered := make(chan struct{})
	go func() {
		defer close(rendered)
		s.render(sub)
	}()

	type result struct {
		line string
		err  error
	}
	lines := make(chan result)
	readerCtx, stopReader := context.WithCancel(ctx)
	defer stopReader()
	go func() {
		if cfg.ReadLine == nil {
			return
		}
		for {
			l, err := cfg.ReadLine()
			select {
			case lines <- result{l, err}:
			case <-readerCtx.Done():
				return
			}
			if err != nil && !errors.Is(err, errLineTooLong) {
				return
			}
		}
	}()

loop:
	for {
		select {
		case <-ctx.Done():
			break loop
		case <-a.Quitting():
			break loop
		case in := <-lines:
			if errors.Is(in.err, errLineTooLong) {
				s.print(s.r.Error(in.err))
				continue
			}
			if in.err != nil {
				if !errors.Is(in.err, io.EOF) {
					s.print(s.r.Error(fmt.Errorf("read input: %w", in.err)))
				}
				break loop
			}
			s.execute(ctx, in.line)
		}
	}
	a.Quit()
	<-rendered
	return nil
}

// render prints events until the node shuts down. A subscription that
// fell behind resumes after its last event from the replay buffer; only if
// that is gone too are events lost, and then it says so.
func (s *session) render(sub *chat.Subscription) {
	var last uint64
	for {
		for st := range sub.C() {
			last = st.Seq
			s.print(s.r.Event(st.Event))
		}
		if !errors.Is(sub.Err(), chat.ErrFellBehind) {
			return
		}
		next, err := s.a.Subscribe(chat.WithBuffer(eventBuffer), chat.After(last))
		if errors.Is(err, chat.ErrGap) {
			s.print(s.r.Error(errors.New("this window fell behind and some events were not shown; /peers and a restart show the current state")))
			next, err = s.a.Subscribe(chat.WithBuffer(eventBuffer))
		}
		if err != nil {
			return
		}
		sub = next
	}
}

func (s *session) setPrompt() {
	if s.cfg.SetPrompt != nil {
		s.cfg.SetPrompt(s.s.Current())
	}
}

func (s *session) print(line string) {
	if line == "" {
		return
	}
	s.outMu.Lock()
	defer s.outMu.Unlock()
	io.WriteString(s.cfg.Out, line+"\n")
}

// execute runs one input line.
func (s *session) execute(ctx context.Context, line string) {
	var cmd app.Command
	var err error
	if s.cfg.JSON && strings.HasPrefix(strings.TrimSpace(line), "{") {
		cmd, err = app.ParseJSON(line)
	} else {
		cmd, err = app.ParseLine(line)
	}
	if app.IsEmpty(err) {
		return
	}
	if err != nil {
		s.print(s.r.Error(err))
		return
	}
	res, err := s.s.Execute(ctx, cmd)
	if err != nil {
		s.print(s.r.Error(err))
		return
	}
	s.setPrompt()
	s.print(s.r.Result(res))
}

var errLineTooLong = fmt.Errorf("input line longer than %d bytes ignored", MaxLineBytes)

// LineReader reads lines of at most MaxLineBytes from r. A longer line is
// skipped whole and reported as an error; reading goes on after it.
func LineReader(r io.Reader) func() (string, error) {
	br := bufio.NewReaderSize(r, 4096)
	return func() (string, error) {
		var buf []byte
		tooLong := false
		for {
			chunk, err := br.ReadSlice('\n')
			if !tooLong {
				buf = append(buf, chunk...)
				if len(buf) > MaxLineBytes+1 {
					tooLong, buf = true, nil
				}
			}
			switch {
			case err == nil:
				if tooLong {
					return "", errLineTooLong
				}
				return strings.TrimRight(string(buf), "\r\n"), nil
			case errors.Is(err, bufio.ErrBufferFull):
				continue
			case errors.Is(err, io.EOF) && len(buf) > 0:
				return strings.TrimRight(string(buf), "\r\n"), nil
			default:
				return "", err
			}
		}
	}
}

// Package tui is Parley's full-screen terminal front end, built on
// bubbletea: a list of rooms and DM conversations, the open conversation
// with scrollback into the stored history, the people in it, a status line
// and an input line. Like the line and JSON front ends it is a thin
// adapter over internal/app: it parses input with app.ParseLine, runs
// commands with a Session, reads history with App.History, and renders the
// node's events from its own subscription.
package tui

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"runtime/debug"
	"sync"
	"time"

	tea "github.com/charmbracelet/bubbletea"

	"github.com/parley-chat/parley/chat"
	"github.com/parley-chat/parley/internal/app"
)

// Tuning of the event feed.
const (
	// eventBuffer is the subscription's queue: a screen that falls
	// further behind resumes from the bus's replay buffer.
	eventBuffer = 1 << 15
	// maxBatch bounds the events handed to the model at once: under a
	// burst, one update and one redraw cover many lines.
	maxBatch = 512
	// peersEvery is how often the peer list is refreshed without an event
	// (a connection that closes has none).
	peersEvery = 5 * time.Second
)

// Config is what Run needs besides the app.
type Config struct {
	// Rooms are the rooms joined at start; the first one is open.
	Rooms []string
	// Addrs are the node's listen addresses, shown at start.
	Addrs []string
	// In and Out are the terminal (os.Stdin and os.Stdout).
	In  io.Reader
	Out io.Writer
	// Err receives a crash report after the screen is restored.
	Err io.Writer
	// Logs, if set, is where the program's logger writes: its lines show
	// inside the UI instead of garbling the screen.
	Logs *Logs
}

// source is where events come from: the App.
type source interface {
	Subscribe(opts ...chat.SubscribeOption) (*chat.Subscription, error)
	Quitting() <-chan struct{}
}

// Run shows the UI on the terminal's alternate screen until the node shuts
// down: /quit, Ctrl+C and Ctrl+D ask the program to end (a.Quit), and the
// UI keeps rendering (what stays queued, say) until the service closes its
// subscription. The terminal is restored on return, after a panic too;
// notices that came while leaving are then printed to Out.
func Run(ctx context.Context, a *app.App, cfg Config) error {
	current := ""
	if len(cfg.Rooms) > 0 {
		current = cfg.Rooms[0]
	}
	return run(ctx, NewBackend(a, current), a, cfg)
}

func run(ctx context.Context, b Backend, src source, cfg Config) error {
	// From the first event on: the history replayed at join is shown too.
	sub, err := src.Subscribe(chat.WithBuffer(eventBuffer), chat.After(0))
	if errors.Is(err, chat.ErrGap) {
		sub, err = src.Subscribe(chat.WithBuffer(eventBuffer))
	}
	if err != nil {
		b.Quit()
		return fmt.Errorf("subscribe to events: %w", err)
	}

	crash := &crashReport{}
	m := New(ctx, b, cfg.Rooms)
	m.welcome(cfg.Addrs)
	p := tea.NewProgram(guard{m, crash},
		tea.WithAltScreen(),
		tea.WithMouseCellMotion(),
		// The program's context ends the node on a signal; the UI ends
		// when the node has shut down.
		tea.WithoutSignalHandler(),
		tea.WithInput(cfg.In),
		tea.WithOutput(cfg.Out),
	)

	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(3)
	go func() {
		defer wg.Done()
		pump(src, sub, p.Send, stop)
	}()
	go func() {
		defer wg.Done()
		t := time.NewTicker(peersEvery)
		defer t.Stop()
		for {
			select {
			case <-t.C:
				p.Send(refreshMsg{})
			case <-stop:
				return
			}
		}
	}()
	go func() {
		defer wg.Done()
		select {
		case <-src.Quitting():
			p.Send(quitMsg{})
		case <-stop:
		}
	}()
	if cfg.Logs != nil {
		cfg.Logs.attach(p.Send)
	}

	_, runErr := p.Run()

	close(stop)
	if cfg.Logs != nil {
		cfg.Logs.detach()
	}
	// However the UI ended, the program ends with it.
	b.Quit()
	wg.Wait()

	if report := crash.String(); report != "" || errors.Is(runErr, tea.ErrProgramPanic) {
		if cfg.Err != nil {
			fmt.Fprintf(cfg.Err, "\r\nparley: the terminal UI crashed; the terminal was restored.\n%s\n", report)
		}
		return errors.New("the terminal UI crashed")
	}
	if runErr != nil {
		return fmt.Errorf("terminal UI: %w", runErr)
	}
	for _, n := range m.ExitNotes() {
		fmt.Fprintln(cfg.Out, "parley: "+clean(n))
	}
	return nil
}

// pump hands the node's events to the program in batches. A subscription
// that fell behind resumes after its last event from the bus's replay
// buffer, as the line mode does; when the service closes it, the UI ends.
func pump(src source, sub *chat.Subscription, send func(tea.Msg), stop <-chan struct{}) {
	var last uint64
	for {
		select {
		case <-stop:
			sub.Close()
			return
		case st, ok := <-sub.C():
			if !ok {
				if !errors.Is(sub.Err(), chat.ErrFellBehind) {
					send(closedMsg{})
					return
				}
				next, err := src.Subscribe(chat.WithBuffer(eventBuffer), chat.After(last))
				if errors.Is(err, chat.ErrGap) {
					send(gapMsg{})
					next, err = src.Subscribe(chat.WithBuffer(eventBuffer))
				}
				if err != nil {
					send(closedMsg{})
					return
				}
				sub = next
				continue
			}
			last = st.Seq
			batch := []chat.Event{st.Event}
		drain:
			for len(batch) < maxBatch {
				select {
				case st, ok := <-sub.C():
					if !ok {
						break drain // seen again by the outer loop
					}
					last = st.Seq
					batch = append(batch, st.Event)
				default:
					break drain
				}
			}
			leaving := false
			select {
			case <-src.Quitting():
				leaving = true
			default:
			}
			send(eventsMsg{events: batch, leaving: leaving})
		}
	}
}

// guard records a panic of the UI with its stack. In Update or View it
// lets the panic go on to bubbletea, which restores the terminal; in a
// command (a goroutine) it ends the program cleanly instead, so the
// terminal is restored before anything is printed. Run prints the record
// once the screen is back.
type guard struct {
	*Model
	crash *crashReport
}

// crashedMsg: a command panicked.
type crashedMsg struct{}

func (g guard) Update(msg tea.Msg) (tea.Model, tea.Cmd) {
	defer g.crash.repanic()
	if _, ok := msg.(crashedMsg); ok {
		return g, tea.Quit
	}
	_, cmd := g.Model.Update(msg)
	if cmd != nil {
		inner := cmd
		cmd = func() (msg tea.Msg) {
			defer func() {
				if r := recover(); r != nil {
					g.crash.record(r)
					msg = crashedMsg{}
				}
			}()
			return inner()
		}
	}
	return g, cmd
}

func (g guard) View() string {
	defer g.crash.repanic()
	return g.Model.View()
}

type crashReport struct {
	mu     sync.Mutex
	report string
}

// repanic, deferred, records a panic under way and lets it go on.
func (c *crashReport) repanic() {
	if r := recover(); r != nil {
		c.record(r)
		panic(r)
	}
}

// record keeps the first panic with the stack of the goroutine that
// recovered it (where it happened, below the recovery).
func (c *crashReport) record(r any) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.report == "" {
		c.report = fmt.Sprintf("panic: %v\n\n%s", r, debug.Stack())
	}
}

func (c *crashReport) String() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.report
}

// maxLogLines bounds the log lines waiting for the screen.
const maxLogLines = 1000

// Logs is an io.Writer for the program's logger while the UI runs: a line
// written to the terminal under it would garble the screen, so the UI
// shows it instead. Before the UI starts and after it ends, lines go
// straight to the fallback writer. Write never waits for the UI.
type Logs struct {
	mu       sync.Mutex
	fallback io.Writer
	send     func(tea.Msg)
	lines    []string
	partial  []byte
	dropped  int
	stop     chan struct{}
	done     chan struct{}
	wake     chan struct{}
}

// NewLogs returns a Logs that writes to fallback while no UI runs.
func NewLogs(fallback io.Writer) *Logs {
	return &Logs{fallback: fallback, wake: make(chan struct{}, 1)}
}

func (l *Logs) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.send == nil {
		return l.fallback.Write(p)
	}
	l.partial = append(l.partial, p...)
	for {
		i := bytes.IndexByte(l.partial, '\n')
		if i < 0 {
			break
		}
		l.lines = append(l.lines, string(l.partial[:i]))
		l.partial = l.partial[i+1:]
	}
	if n := len(l.lines) - maxLogLines; n > 0 {
		l.dropped += n
		l.lines = append([]string(nil), l.lines[n:]...)
	}
	select {
	case l.wake <- struct{}{}:
	default:
	}
	return len(p), nil
}

// attach starts forwarding lines to a running program.
func (l *Logs) attach(send func(tea.Msg)) {
	l.mu.Lock()
	l.send = send
	l.stop, l.done = make(chan struct{}), make(chan struct{})
	stop, done := l.stop, l.done
	l.mu.Unlock()
	go func() {
		defer close(done)
		for {
			select {
			case <-l.wake:
			case <-stop:
				return
			}
			l.mu.Lock()
			lines := l.lines
			if l.dropped > 0 {
				lines = append([]string{fmt.Sprintf("(%d log lines not shown)", l.dropped)}, lines...)
			}
			l.lines, l.dropped = nil, 0
			l.mu.Unlock()
			if len(lines) > 0 {
				send(logMsg(lines))
			}
		}
	}()
}

// detach stops forwarding; what the UI did not get goes to the fallback.
func (l *Logs) detach() {
	l.mu.Lock()
	stop, done := l.stop, l.done
	l.mu.Unlock()
	if stop == nil {
		return
	}
	close(stop)
	<-done
	l.mu.Lock()
	defer l.mu.Unlock()
	l.send = nil
	for _, line := range l.lines {
		fmt.Fprintln(l.fallback, line)
	}
	if len(l.partial) > 0 {
		l.fallback.Write(l.partial)
	}
	l.lines, l.partial, l.stop, l.done = nil, nil, nil, nil
}

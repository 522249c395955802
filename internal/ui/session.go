// Package ui holds Parley's front ends for a terminal or a pipe: typed
// commands in, rendered events out, as text lines or as JSON objects. It
// sees chat's events and peer IDs, never libp2p itself.
package ui

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/parley-chat/parley/chat"
)

// Chat is what a front end needs of chat.Service.
type Chat interface {
	ID() peer.ID
	Events() <-chan chat.Event
	Send(ctx context.Context, room, text string) (string, error)
	SendDM(to, text string) (string, error)
	ResolvePeer(who string) (peer.ID, error)
	Join(room string) error
	Leave(room string) error
	Rooms() []string
	Nick() string
	SetNick(nick string) error
	Peers() []chat.PeerInfo
	Outbox() ([]chat.PendingDM, error)
	Drain(ctx context.Context) error
	Close() error
}

var _ Chat = (*chat.Service)(nil)

var errEmpty = errors.New("empty line")

// MaxLineBytes bounds one input line; longer lines are refused whole.
const MaxLineBytes = 64 << 10

// DrainTimeout bounds how long the end of input waits for pending sends.
const DrainTimeout = 15 * time.Second

// Config describes one front-end session.
type Config struct {
	JSON bool
	// ReadLine returns the next input line, io.EOF at the end.
	ReadLine func() (string, error)
	// Out receives rendered lines; it is written from two goroutines
	// under a lock.
	Out io.Writer
	// SetPrompt is told the current room (terminal mode only).
	SetPrompt func(room string)
	// Ready is printed first.
	Ready Ready
}

// Session runs one front end over a chat service.
type Session struct {
	c   Chat
	cfg Config
	r   Renderer

	mu      sync.Mutex
	current string
	outMu   sync.Mutex // one line at a time on Out
}

// Run prints the ready line, renders events as they come, executes input
// lines until end of input, /quit or ctx ends, waits for pending sends,
// closes c and returns once every event has been printed.
func Run(ctx context.Context, c Chat, cfg Config) error {
	s := &Session{c: c, cfg: cfg}
	if len(cfg.Ready.Rooms) > 0 {
		s.current = cfg.Ready.Rooms[0]
	}
	if cfg.JSON {
		s.r = JSON{}
	} else {
		s.r = Text{Current: s.currentRoom}
	}
	if cfg.SetPrompt != nil {
		cfg.SetPrompt(s.current)
	}
	s.print(s.r.Ready(cfg.Ready))

	rendered := make(chan struct{})
	go func() {
		defer close(rendered)
		for ev := range c.Events() {
			s.print(s.r.Event(ev))
		}
	}()

	type result struct {
		line string
		err  error
	}
	lines := make(chan result)
	readerCtx, stopReader := context.WithCancel(ctx)
	defer stopReader()
	go func() {
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
			if quit := s.execute(ctx, in.line); quit {
				break loop
			}
		}
	}

	dctx, cancel := context.WithTimeout(context.Background(), DrainTimeout)
	err := c.Drain(dctx)
	cancel()
	if err != nil {
		s.print(s.r.Error(fmt.Errorf("some DMs are still being delivered: %w", err)))
	}
	if pending, err := c.Outbox(); err == nil && len(pending) > 0 {
		s.print(s.r.Info(fmt.Sprintf("%d DMs not delivered yet stay queued; they are sent when you run parley again and the peer is reachable", len(pending))))
	}
	c.Close()
	<-rendered
	return nil
}

func (s *Session) currentRoom() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.current
}

func (s *Session) setCurrent(room string) {
	s.mu.Lock()
	s.current = room
	s.mu.Unlock()
	if s.cfg.SetPrompt != nil {
		s.cfg.SetPrompt(room)
	}
}

func (s *Session) print(line string) {
	if line == "" {
		return
	}
	s.outMu.Lock()
	defer s.outMu.Unlock()
	io.WriteString(s.cfg.Out, line+"\n")
}

// execute runs one input line; it reports whether to quit.
func (s *Session) execute(ctx context.Context, line string) bool {
	var cmd Command
	var err error
	if s.cfg.JSON && strings.HasPrefix(strings.TrimSpace(line), "{") {
		cmd, err = ParseJSON(line)
	} else {
		cmd, err = ParseLine(line)
	}
	if errors.Is(err, errEmpty) {
		return false
	}
	if err != nil {
		s.print(s.r.Error(err))
		return false
	}
	if err := s.run(ctx, cmd); err != nil {
		s.print(s.r.Error(err))
	}
	return cmd.Kind == "quit"
}

func (s *Session) run(ctx context.Context, cmd Command) error {
	switch cmd.Kind {
	case "say":
		room := cmd.Room
		if room == "" {
			room = s.currentRoom()
		}
		if room == "" {
			return errors.New("not in a room: /join ROOM first")
		}
		id, err := s.c.Send(ctx, room, cmd.Text)
		if err != nil {
			return err
		}
		s.print(s.r.Sent(id, room, ""))
	case "dm":
		to, err := s.c.ResolvePeer(cmd.To)
		if err != nil {
			return fmt.Errorf("dm: %w", err)
		}
		id, err := s.c.SendDM(to.String(), cmd.Text)
		if err != nil {
			return err
		}
		s.print(s.r.Sent(id, "", to))
	case "join":
		if err := s.c.Join(cmd.Room); err != nil {
			return err
		}
		s.setCurrent(cmd.Room)
		s.print(s.r.Rooms(cmd.Room, s.c.Rooms()))
	case "leave":
		room := cmd.Room
		if room == "" {
			room = s.currentRoom()
		}
		if room == "" {
			return errors.New("not in a room")
		}
		if err := s.c.Leave(room); err != nil {
			return err
		}
		rooms := s.c.Rooms()
		if s.currentRoom() == room {
			next := ""
			if len(rooms) > 0 {
				next = rooms[0]
			}
			s.setCurrent(next)
		}
		s.print(s.r.Rooms(s.currentRoom(), rooms))
	case "room":
		if cmd.Room != "" {
			if !contains(s.c.Rooms(), cmd.Room) {
				return fmt.Errorf("not in room %q: /join %s first", cmd.Room, cmd.Room)
			}
			s.setCurrent(cmd.Room)
		}
		s.print(s.r.Rooms(s.currentRoom(), s.c.Rooms()))
	case "peers":
		s.print(s.r.Peers(s.c.ID(), s.c.Peers()))
	case "outbox":
		pending, err := s.c.Outbox()
		if err != nil {
			return err
		}
		s.print(s.r.Outbox(pending))
	case "nick":
		if err := s.c.SetNick(cmd.Text); err != nil {
			return err
		}
		s.print(s.r.Info("you are now " + cmd.Text))
	case "help":
		s.print(s.r.Info(Help))
	}
	return nil
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
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

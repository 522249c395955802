package tui

import (
	"context"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/parley-chat/parley/chat"
	"github.com/parley-chat/parley/internal/app"
)

// Backend is what the terminal UI asks of the app layer: an *app.App with
// one Session of its own (NewBackend), or a fake in the model's tests.
// Every call but ID and Nick may wait on the network or the store, so the
// model only makes them from commands (goroutines), never in Update.
type Backend interface {
	ID() peer.ID
	Nick() string
	Rooms() []string
	// Execute runs a command of the shared command set (app.ParseLine).
	Execute(ctx context.Context, cmd app.Command) (app.Result, error)
	// History returns up to limit stored messages of room before the
	// message with ID before ("" for the newest), oldest first.
	History(room, before string, limit int) ([]chat.Message, error)
	// Quit asks the program to end; it shuts the node down, and the
	// event subscription ends after the last event.
	Quit()
}

type appBackend struct {
	*app.App
	s *app.Session
}

// NewBackend is the Backend of a running app, with a session whose
// current room is current.
func NewBackend(a *app.App, current string) Backend {
	return appBackend{App: a, s: a.NewSession(current)}
}

func (b appBackend) Execute(ctx context.Context, cmd app.Command) (app.Result, error) {
	return b.s.Execute(ctx, cmd)
}

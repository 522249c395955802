// Package dispatch hands every visitor of a web page their own Parley
// peer: `parley dispatch`. A visitor clicks "Start chatting", gets a peer
// from a pool of started ones (refilled in the background), bound to them
// by a signed HttpOnly cookie, and lands in that peer's own web app, which
// the dispatcher serves under /me/ by reverse-proxying to the peer on a
// private network and adding the peer's API token itself. A visitor never
// sees another peer: the proxy goes only to the cookie's peer, and a
// cookie cannot be forged without the dispatcher's secret.
//
// Idle peers are stopped; their data is kept for a while and the peer
// comes back, same identity and history, when its visitor does. The
// dispatcher keeps no database: peers are containers and volumes (see
// Backend) labelled with the dispatcher's name, and it rebuilds its view
// from them when it starts. It imports no libp2p package: it speaks HTTP
// to visitors and peers, and a Backend's API (package docker) to run them.
package dispatch

import (
	"context"
	"errors"
	"time"
)

// Peer is one visitor's (or the pool's) peer as the backend sees it.
type Peer struct {
	ID      string    // random; also the visitor's ID in the cookie
	Claimed bool      // belongs to a visitor (not in the pool)
	Running bool      // its container runs
	Exited  bool      // its container stopped (by the idle stop, or died)
	Gone    bool      // only its data is left (no container)
	Stopped time.Time // when it stopped, if it did
	Addr    string    // HOST:PORT of its web app on the private network
}

// ErrNoContainer means a peer has no container (its data may remain).
var ErrNoContainer = errors.New("no container")

// Backend runs peers: one small interface, so that a cluster engine
// (Docker Swarm services, Kubernetes pods) can replace the single Docker
// host. Every method is bounded by ctx.
type Backend interface {
	// Ping checks the backend answers and can run peers.
	Ping(ctx context.Context) error
	// List returns every peer of this dispatcher.
	List(ctx context.Context) ([]Peer, error)
	// Create makes and starts a peer whose web API token is token.
	Create(ctx context.Context, id, token string, claimed bool) (Peer, error)
	// Recreate makes a new container for a claimed peer whose data is
	// kept but whose container is gone.
	Recreate(ctx context.Context, id, token string) (Peer, error)
	// Start starts a stopped peer (a running one is fine).
	Start(ctx context.Context, id string) (Peer, error)
	// Claim moves a pool peer to its visitor.
	Claim(ctx context.Context, id string) error
	// Stop stops a peer and keeps its data.
	Stop(ctx context.Context, id string) error
	// Remove removes a peer and its data.
	Remove(ctx context.Context, id string) error
}

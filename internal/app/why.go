package app

import (
	"context"
	"fmt"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
)

// Route explains how a peer is reached: the answer to /why PEER. The
// program fills it from the node (WithRoutes), so front ends stay off
// libp2p.
type Route struct {
	Peer  peer.ID
	Nick  string
	Path  string // chat.PathLAN, PathDirect, PathHolePunched, PathRelayed, or "" (not connected)
	Relay peer.ID
	Conns []RouteConn
	Agent string
	// RTT is the measured round trip (a moving average; 0 if unknown).
	RTT time.Duration
	// DCUtR says whether both ends speak hole punching.
	DCUtR bool
	// LastPunch is the last attempt to reach the peer directly, nil if
	// none since this node started.
	LastPunch *PunchAttempt
}

// RouteConn is one open connection.
type RouteConn struct {
	Remote    string // the peer's address
	Direction string // inbound or outbound
	Relayed   bool
	Age       time.Duration
}

// PunchAttempt is how an attempt to reach a peer directly ended.
type PunchAttempt struct {
	At       time.Time
	Kind     string // "direct dial" or "hole punch"
	Success  bool
	Attempts int
	Elapsed  time.Duration
	Err      string
	Pending  bool // under way
}

func (Route) isResult() {}

// WithRoutes tells the App how to explain a peer's route (/why); f may
// take a moment (it measures the round trip) and must respect ctx.
func WithRoutes(f func(ctx context.Context, p peer.ID) Route) Option {
	return func(a *App) { a.routes = f }
}

// why answers /why PEER.
func (a *App) why(ctx context.Context, who string) (Route, error) {
	p, err := a.svc.ResolvePeer(who)
	if err != nil {
		return Route{}, fmt.Errorf("why: %w", err)
	}
	if a.routes == nil {
		return Route{}, fmt.Errorf("why: this node cannot tell how peers are reached")
	}
	r := a.routes(ctx, p)
	r.Peer = p
	for _, pi := range a.svc.Peers() {
		if pi.ID == p {
			r.Nick = pi.Nick
		}
	}
	return r, nil
}

// Explain says in plain words how the peer is reached and why.
func (r Route) Explain(now time.Time) []string {
	who := r.Nick
	if who == "" {
		who = "the peer"
	}
	var out []string
	switch r.Path {
	case "":
		out = append(out, who+" is not connected now. A DM waits in the outbox until it is; rooms reach it through the relay when both of you use one.")
	case "lan":
		out = append(out, who+" is on your LAN (found by mDNS) and reached there directly.")
	case "direct":
		out = append(out, who+" is reached directly, at an address it announced or you dialed.")
	case "hole-punched":
		out = append(out, who+" is reached directly through a hole punched in both NATs (DCUtR).")
	case "relayed":
		relay := "a relay"
		if r.Relay != "" {
			relay = "the relay [" + tag(r.Relay) + "]"
		}
		out = append(out, who+" is reached only through "+relay+": a circuit, limited in time and bytes. DMs go over it; rooms go through the relay's bridge.")
	}
	for _, c := range r.Conns {
		kind := "direct"
		if c.Relayed {
			kind = "relayed"
		}
		out = append(out, fmt.Sprintf("  %s %s connection to %s, open %v", c.Direction, kind, c.Remote, c.Age.Round(time.Second)))
	}
	if r.RTT > 0 {
		out = append(out, fmt.Sprintf("Round trip: %v.", r.RTT.Round(100*time.Microsecond)))
	} else if r.Path != "" {
		out = append(out, "Round trip: not measured yet.")
	}
	switch p := r.LastPunch; {
	case p == nil && r.Path == "relayed" && !r.DCUtR:
		out = append(out, "No hole punch was tried: the peer does not speak DCUtR (an old or other libp2p program).")
	case p == nil && r.Path == "relayed":
		out = append(out, "No hole punch was tried yet: it starts when a relayed connection opens, and is retried after 0.5, 2, 8, 32 and 60 s.")
	case p == nil:
	case p.Pending:
		out = append(out, fmt.Sprintf("A hole punch is under way (started %v ago).", now.Sub(p.At).Round(time.Second)))
	case p.Success:
		out = append(out, fmt.Sprintf("Last attempt to go direct: a %s %v ago succeeded in %v.", p.Kind, now.Sub(p.At).Round(time.Second), p.Elapsed.Round(time.Millisecond)))
	default:
		why := ""
		if p.Err != "" {
			why = " (" + p.Err + ")"
		}
		rounds := ""
		if p.Attempts > 0 {
			rounds = fmt.Sprintf(" after %d round(s)", p.Attempts)
		}
		out = append(out, fmt.Sprintf("Last attempt to go direct: a %s %v ago failed%s%s.", p.Kind, now.Sub(p.At).Round(time.Second), rounds, why))
		if r.Path == "relayed" {
			out = append(out, "So chat stays on the relay. A NAT that gives every connection a new port (yours or theirs) makes hole punching fail: `parley doctor` tells which kind yours is.")
		}
	}
	return out
}

func tag(p peer.ID) string {
	s := p.String()
	return s[max(0, len(s)-6):]
}

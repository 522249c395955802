package chat

import (
	"errors"

	"github.com/libp2p/go-libp2p/core/peer"
)

// Why a DM waits in the outbox (Queued.Err matches one with errors.Is).
var (
	// ErrOffline: no connection to the peer could be made.
	ErrOffline = errors.New("the peer is offline")
	// ErrNoAck: the DM went out but the peer did not acknowledge it.
	ErrNoAck = errors.New("the peer did not acknowledge the DM")
)

// shortError is what a person is shown: one short sentence (Error), while
// errors.Is and errors.As still reach the kind and the detail, which the
// log has.
type shortError struct {
	msg    string
	kind   error
	detail error
}

func (e *shortError) Error() string { return e.msg }
func (e *shortError) Unwrap() []error {
	var out []error
	for _, err := range []error{e.kind, e.detail} {
		if err != nil {
			out = append(out, err)
		}
	}
	return out
}

// tell logs detail and returns an error that reads msg.
func (s *Service) tell(msg string, kind, detail error, args ...any) error {
	s.log.Warn(msg, append(args, "err", detail)...)
	return &shortError{msg: msg, kind: kind, detail: detail}
}

// short is the end of a peer ID that front ends show: [A1LeKv].
func short(p peer.ID) string {
	s := p.String()
	return "[" + s[max(0, len(s)-6):] + "]"
}

// displayName is how a notice names p: nick[ABCDEF], or [ABCDEF].
func (s *Service) displayName(p peer.ID) string {
	return s.nicks.get(p) + short(p)
}

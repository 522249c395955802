package chat

import (
	"github.com/parley-chat/parley/chat/content"
	roomproto "github.com/parley-chat/parley/chat/protocol/room"
)

// Limits on what Parley accepts, from the network and from the user (see
// package content and the protocol packages).
const (
	MaxTextBytes = content.MaxTextBytes
	MaxNickChars = content.MaxNickChars
	MaxNickBytes = content.MaxNickBytes
	MaxRoomBytes = roomproto.MaxNameBytes
	// MaxEnvelopeBytes bounds a whole encoded room envelope.
	MaxEnvelopeBytes = roomproto.MaxEnvelopeBytes
)

// Validation errors.
var (
	ErrEmpty    = content.ErrEmpty
	ErrTooLong  = content.ErrTooLong
	ErrBadChars = content.ErrBadChars
)

// ValidateRoomName accepts 1–64 letters, digits, '-', '_' and '.'.
func ValidateRoomName(name string) error { return roomproto.ValidateName(name) }

// ValidateNick accepts 1–32 letters, digits, '-', '_' and '.' and says
// why it refuses anything else (see content.ValidateNick).
func ValidateNick(nick string) error { return content.ValidateNick(nick) }

// ValidateText accepts 1–4096 bytes of UTF-8; tabs and newlines are the
// only control characters allowed.
func ValidateText(text string) error { return content.ValidateText(text) }

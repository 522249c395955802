package chat

import (
	"errors"
	"fmt"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/parley-chat/parley/chat/pb"
)

// Limits on what Parley accepts from the network and from the user.
const (
	MaxTextBytes = 4096 // UTF-8 bytes of one message
	MaxNickBytes = 32
	MaxRoomBytes = 64
	// MaxEnvelopeBytes bounds a whole encoded room envelope.
	MaxEnvelopeBytes = 8 << 10
	// MaxClockSkew is how far in the future a sent-at time may be.
	MaxClockSkew = 5 * time.Minute
	// MaxMessageAge is how old a live message may be.
	MaxMessageAge = 24 * time.Hour
	// DMMaxAge is how old a DM may be when it arrives: it can wait in the
	// sender's outbox until then.
	DMMaxAge = OutboxExpiry + time.Hour
	idLen    = 32 // hex characters
)

// Validation errors.
var (
	ErrEmpty    = errors.New("empty")
	ErrTooLong  = errors.New("too long")
	ErrBadChars = errors.New("contains control characters or invalid UTF-8")
)

// ValidateRoomName accepts 1–64 letters, digits, '-', '_' and '.'.
func ValidateRoomName(name string) error {
	if name == "" {
		return fmt.Errorf("room name: %w", ErrEmpty)
	}
	if len(name) > MaxRoomBytes {
		return fmt.Errorf("room name: %w (max %d bytes)", ErrTooLong, MaxRoomBytes)
	}
	for _, r := range name {
		if !(unicode.IsLetter(r) || unicode.IsDigit(r) || r == '-' || r == '_' || r == '.') {
			return fmt.Errorf("room name %q: only letters, digits, '-', '_' and '.' are allowed", name)
		}
	}
	return nil
}

// ValidateNick accepts 1–32 bytes of printable UTF-8 without line breaks.
func ValidateNick(nick string) error {
	if nick == "" {
		return fmt.Errorf("nick: %w", ErrEmpty)
	}
	if len(nick) > MaxNickBytes {
		return fmt.Errorf("nick: %w (max %d bytes)", ErrTooLong, MaxNickBytes)
	}
	if !printable(nick, false) {
		return fmt.Errorf("nick: %w", ErrBadChars)
	}
	return nil
}

// ValidateText accepts 1–4096 bytes of UTF-8; tabs and newlines are the
// only control characters allowed, so no peer can send terminal escapes.
func ValidateText(text string) error {
	if text == "" {
		return fmt.Errorf("text: %w", ErrEmpty)
	}
	if len(text) > MaxTextBytes {
		return fmt.Errorf("text: %w (%d bytes, max %d)", ErrTooLong, len(text), MaxTextBytes)
	}
	if !printable(text, true) {
		return fmt.Errorf("text: %w", ErrBadChars)
	}
	return nil
}

func printable(s string, multiline bool) bool {
	if !utf8.ValidString(s) {
		return false
	}
	for _, r := range s {
		if multiline && (r == '\n' || r == '\t') {
			continue
		}
		if unicode.IsControl(r) {
			return false
		}
	}
	return true
}

func validateID(id string) error {
	if len(id) != idLen {
		return fmt.Errorf("id: want %d hex characters, got %d", idLen, len(id))
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return errors.New("id: not lowercase hex")
		}
	}
	return nil
}

func validateSentAt(ms int64, now time.Time, maxAge time.Duration) error {
	t := time.UnixMilli(ms)
	if t.After(now.Add(MaxClockSkew)) {
		return fmt.Errorf("sent-at %s is in the future", t.UTC().Format(time.RFC3339))
	}
	if maxAge > 0 && t.Before(now.Add(-maxAge)) {
		return fmt.Errorf("sent-at %s is too old", t.UTC().Format(time.RFC3339))
	}
	return nil
}

// ValidateEnvelope checks a live room envelope received on the topic of
// room.
func ValidateEnvelope(env *pb.Envelope, room string, now time.Time) error {
	return validateEnvelope(env, room, now, MaxMessageAge)
}

// validateEnvelope is ValidateEnvelope with a maximum age (0: any age, for
// history).
func validateEnvelope(env *pb.Envelope, room string, now time.Time, maxAge time.Duration) error {
	if err := validateID(env.GetId()); err != nil {
		return err
	}
	if env.GetRoom() != room {
		return fmt.Errorf("envelope for room %q on the topic of room %q", env.GetRoom(), room)
	}
	if err := ValidateNick(env.GetNick()); err != nil {
		return err
	}
	if err := validateSentAt(env.GetSentAtMs(), now, maxAge); err != nil {
		return err
	}
	switch env.GetKind() {
	case pb.Envelope_MESSAGE:
		return ValidateText(env.GetText())
	case pb.Envelope_PRESENCE:
		if env.GetText() != "" {
			return errors.New("presence with text")
		}
		return nil
	default:
		return fmt.Errorf("unknown envelope kind %d", env.GetKind())
	}
}

func validateDM(m *pb.DirectMessage, now time.Time) error {
	if err := validateID(m.GetId()); err != nil {
		return err
	}
	if err := ValidateNick(m.GetNick()); err != nil {
		return err
	}
	if err := validateSentAt(m.GetSentAtMs(), now, DMMaxAge); err != nil {
		return err
	}
	return ValidateText(m.GetText())
}

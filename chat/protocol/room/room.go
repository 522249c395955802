// Package room is Parley's room protocol on GossipSub: topic and
// rendezvous names, the signed envelope, its validator, and the
// join/validate/subscribe sequence that chat and the bridge share.
//
// # Wire
//
// Room NAME is the GossipSub topic "parley/room/1/NAME"; members find each
// other under the DHT rendezvous namespace "parley/rendezvous/room/1/NAME".
// Every message is signed by its author (strict signing) and carries a
// protobuf pb.Envelope: an outer header — kind (message or presence),
// 32-hex-digit id, room, sent-at (Unix ms), a per-room Lamport counter and
// the Lamport of the sender's previous message in the room — around a body
// (pb.Body: nick and text) that only members need to read.
//
// A bridge validates the header and forwards the body unread
// (DecodeEnvelope); members also open the body (OpenBody). A private
// room's body is sealed (Sealer: XChaCha20-Poly1305, 24-byte random nonce
// then ciphertext) and its name on the wire is derived from its secret;
// see sealed.go. The validator
// rejects, and so penalises the forwarder of, anything that is not a valid
// envelope for the topic's room: more than MaxEnvelopeBytes, a sent-at
// more than 5 minutes ahead or MaxMessageAge behind, a room that does not
// match the topic, a previous Lamport not before the Lamport, an unknown
// kind.
package room

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
	"unicode"

	pubsub "github.com/libp2p/go-libp2p-pubsub"
	"github.com/libp2p/go-libp2p/core/peer"
	"google.golang.org/protobuf/proto"

	"github.com/parley-chat/parley/chat/content"
	"github.com/parley-chat/parley/chat/pb"
)

// Names of a room's topic and rendezvous namespace; "1" is the protocol
// version, so an incompatible change moves to new names.
const (
	TopicPrefix      = "parley/room/1/"
	RendezvousPrefix = "parley/rendezvous/room/1/"
)

// Limits of the room protocol.
const (
	MaxNameBytes = 64
	// MaxEnvelopeBytes bounds a whole encoded envelope.
	MaxEnvelopeBytes = 8 << 10
	// MaxMessageAge is how old a live message may be.
	MaxMessageAge = 24 * time.Hour
)

// Topic is the GossipSub topic of room name.
func Topic(name string) string { return TopicPrefix + name }

// Rendezvous is the DHT namespace of room name.
func Rendezvous(name string) string { return RendezvousPrefix + name }

// NameOf returns the room name of a room topic, and false for any other
// topic.
func NameOf(topic string) (string, bool) {
	name, ok := strings.CutPrefix(topic, TopicPrefix)
	return name, ok && name != ""
}

// ValidateName accepts 1–64 letters, digits, '-', '_' and '.'.
func ValidateName(name string) error {
	if name == "" {
		return fmt.Errorf("room name: %w", content.ErrEmpty)
	}
	if len(name) > MaxNameBytes {
		return fmt.Errorf("room name: %w (max %d bytes)", content.ErrTooLong, MaxNameBytes)
	}
	for _, r := range name {
		if !(unicode.IsLetter(r) || unicode.IsDigit(r) || r == '-' || r == '_' || r == '.') {
			return fmt.Errorf("room name %q: only letters, digits, '-', '_' and '.' are allowed", name)
		}
	}
	return nil
}

// DecodeEnvelope decodes a message's payload on the topic of room and
// validates its header, not its body: what a bridge checks.
func DecodeEnvelope(data []byte, room string, now time.Time) (*pb.Envelope, error) {
	return decode(data, room, now, MaxMessageAge)
}

func decode(data []byte, room string, now time.Time, maxAge time.Duration) (*pb.Envelope, error) {
	if len(data) > MaxEnvelopeBytes {
		return nil, fmt.Errorf("envelope of %d bytes: %w (max %d)", len(data), content.ErrTooLong, MaxEnvelopeBytes)
	}
	var env pb.Envelope
	if err := proto.Unmarshal(data, &env); err != nil {
		return nil, fmt.Errorf("decode envelope: %w", err)
	}
	if err := validateHeader(&env, room, now, maxAge); err != nil {
		return nil, err
	}
	return &env, nil
}

// ValidateHeader checks a live envelope's header received on the topic
// of room.
func ValidateHeader(env *pb.Envelope, room string, now time.Time) error {
	return validateHeader(env, room, now, MaxMessageAge)
}

func validateHeader(env *pb.Envelope, room string, now time.Time, maxAge time.Duration) error {
	if err := content.ValidateID(env.GetId()); err != nil {
		return err
	}
	if env.GetRoom() != room {
		return fmt.Errorf("envelope for room %q on the topic of room %q", env.GetRoom(), room)
	}
	if err := content.ValidateSentAt(env.GetSentAtMs(), now, maxAge); err != nil {
		return err
	}
	if prev := env.GetPrevLamport(); prev != 0 && prev >= env.GetLamport() {
		return fmt.Errorf("prev-lamport %d is not before lamport %d", prev, env.GetLamport())
	}
	switch env.GetKind() {
	case pb.Envelope_MESSAGE, pb.Envelope_PRESENCE:
		return nil
	default:
		return fmt.Errorf("unknown envelope kind %d", env.GetKind())
	}
}

// OpenBody decodes and validates a public room's body: a nick, and text
// exactly when the envelope is a MESSAGE. A nick that breaks the nick
// rules (content.ValidateNick) is dropped, not rejected: the message is
// the author's (its signature says so) and is shown under the author's ID
// tag alone; rejecting it would silence a peer whose older Parley allowed
// that nick, and penalise every peer that forwarded it.
func OpenBody(env *pb.Envelope) (*pb.Body, error) {
	var body pb.Body
	if err := proto.Unmarshal(env.GetBody(), &body); err != nil {
		return nil, fmt.Errorf("decode body: %w", err)
	}
	body.Nick = content.PeerNick(body.GetNick())
	switch env.GetKind() {
	case pb.Envelope_MESSAGE:
		if err := content.ValidateText(body.GetText()); err != nil {
			return nil, err
		}
	case pb.Envelope_PRESENCE:
		if body.GetText() != "" {
			return nil, errors.New("presence with text")
		}
	}
	return &body, nil
}

// SealBody encodes a public room's body into env.
func SealBody(env *pb.Envelope, body *pb.Body) error {
	b, err := proto.Marshal(body)
	if err != nil {
		return fmt.Errorf("encode body: %w", err)
	}
	env.Body = b
	return nil
}

// Opened is what the validator leaves in a message's ValidatorData.
type Opened struct {
	Envelope *pb.Envelope
	Body     *pb.Body // nil where the validator did not open the body
}

// Validator checks every message on room's topic before pubsub delivers
// or forwards it: the header always, the body when open is not nil
// (OpenPublic, or a private room's Sealer.Open: a member rejects what does
// not open with the room's key). check, if not nil, may ignore (not
// reject) a valid message, e.g. over a rate.
func Validator(room string, open Opener, check func(*pubsub.Message, *pb.Envelope) pubsub.ValidationResult) pubsub.ValidatorEx {
	return func(_ context.Context, _ peer.ID, msg *pubsub.Message) pubsub.ValidationResult {
		env, err := DecodeEnvelope(msg.Data, room, time.Now())
		if err != nil {
			return pubsub.ValidationReject
		}
		opened := &Opened{Envelope: env}
		if open != nil {
			if opened.Body, err = open(env, msg.GetFrom()); err != nil {
				return pubsub.ValidationReject
			}
		}
		if check != nil {
			if res := check(msg, env); res != pubsub.ValidationAccept {
				return res
			}
		}
		msg.ValidatorData = opened
		return pubsub.ValidationAccept
	}
}

// Joined is a room topic joined, validated and subscribed to.
type Joined struct {
	Name   string
	Topic  *pubsub.Topic
	Sub    *pubsub.Subscription
	Events *pubsub.TopicEventHandler

	ps *pubsub.PubSub
}

// Join registers v as room's validator (inline: v must not block), joins its topic, opens its member
// events and subscribes with a buffer of buf messages; on any failure it
// undoes what it did.
func Join(ps *pubsub.PubSub, name string, v pubsub.ValidatorEx, buf int) (*Joined, error) {
	topic := Topic(name)
	// Inline: the validator decodes, opens and counts, never blocks, so
	// it runs on pubsub's validation workers right after the signature
	// check instead of in a goroutine of its own per message.
	if err := ps.RegisterTopicValidator(topic, v, pubsub.WithValidatorInline(true)); err != nil {
		return nil, fmt.Errorf("register validator: %w", err)
	}
	j := &Joined{Name: name, ps: ps}
	var err error
	if j.Topic, err = ps.Join(topic); err != nil {
		j.Close()
		return nil, err
	}
	if j.Events, err = j.Topic.EventHandler(); err != nil {
		j.Close()
		return nil, err
	}
	if j.Sub, err = j.Topic.Subscribe(pubsub.WithBufferSize(buf)); err != nil {
		j.Close()
		return nil, err
	}
	return j, nil
}

// Close unsubscribes, leaves the topic and removes the validator. It calls
// into pubsub's event loop: never call it holding a lock that a validator
// or an RPC inspector takes.
func (j *Joined) Close() error {
	if j.Sub != nil {
		j.Sub.Cancel()
	}
	if j.Events != nil {
		j.Events.Cancel()
	}
	var err error
	if j.Topic != nil {
		err = j.Topic.Close()
	}
	return errors.Join(err, j.ps.UnregisterTopicValidator(Topic(j.Name)))
}

// WaitMember reports whether p is a known member of the room, waiting up
// to MemberWait for its subscription to arrive: a peer that just saw our
// subscription may ask for something before its own reaches us.
func (j *Joined) WaitMember(ctx context.Context, p peer.ID) bool {
	ctx, cancel := context.WithTimeout(ctx, MemberWait)
	defer cancel()
	tick := time.NewTicker(25 * time.Millisecond)
	defer tick.Stop()
	for {
		if slices.Contains(j.Topic.ListPeers(), p) {
			return true
		}
		select {
		case <-ctx.Done():
			return false
		case <-tick.C:
		}
	}
}

// MemberWait bounds how long WaitMember waits.
const MemberWait = 2 * time.Second

// DecodeStored decodes an envelope kept as history: like DecodeEnvelope,
// but of any age.
func DecodeStored(data []byte, room string, now time.Time) (*pb.Envelope, error) {
	return decode(data, room, now, 0)
}

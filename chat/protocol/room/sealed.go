package room

import (
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"

	"github.com/libp2p/go-libp2p/core/peer"
	"golang.org/x/crypto/chacha20poly1305"
	"google.golang.org/protobuf/proto"

	"github.com/parley-chat/parley/chat/pb"
)

// A private room is known by a 256-bit secret and its epoch (a counter
// that a rekey moves on). From them HKDF-SHA256 derives
//
//   - its wire name, 32 hex digits ("parley room name" info): the room of
//     its envelopes, so its topic and rendezvous namespace; nothing in it
//     says "private", and a public room of the same display name is
//     another topic;
//   - its message key ("parley room key" info), for XChaCha20-Poly1305.
//
// A sealed body is a 24-byte random nonce followed by the AEAD
// ciphertext of an encoded pb.Body. The associated data binds it to the
// topic, the epoch, the author (the signed GossipSub message's From), and
// the envelope's kind and id, so a body cannot be replayed under another
// author, room, epoch or message. The header stays in the clear and
// signed: a bridge validates and stores it without the key.

// SecretBytes is the size of a private room's secret.
const SecretBytes = 32

// ErrUnsealed means a private room's body could not be opened: another
// key, another author or tampering.
var ErrUnsealed = errors.New("sealed body does not open with this room's key")

// NewSecret returns a fresh random room secret.
func NewSecret() []byte {
	b := make([]byte, SecretBytes)
	rand.Read(b) // never fails (crypto/rand)
	return b
}

// Sealer seals and opens the bodies of one private room epoch. It holds
// key material: never log it.
type Sealer struct {
	name  string
	epoch uint64
	aead  interface {
		Seal(dst, nonce, plaintext, ad []byte) []byte
		Open(dst, nonce, ciphertext, ad []byte) ([]byte, error)
		NonceSize() int
		Overhead() int
	}
}

// NewSealer derives a private room epoch's wire name and key from secret.
func NewSealer(secret []byte, epoch uint64) (*Sealer, error) {
	if len(secret) != SecretBytes {
		return nil, fmt.Errorf("room secret of %d bytes, want %d", len(secret), SecretBytes)
	}
	var e [8]byte
	binary.BigEndian.PutUint64(e[:], epoch)
	nameKey, err := hkdf.Key(sha256.New, secret, nil, "parley room name 1 "+string(e[:]), 16)
	if err != nil {
		return nil, fmt.Errorf("derive room name: %w", err)
	}
	key, err := hkdf.Key(sha256.New, secret, nil, "parley room key 1 "+string(e[:]), chacha20poly1305.KeySize)
	if err != nil {
		return nil, fmt.Errorf("derive room key: %w", err)
	}
	aead, err := chacha20poly1305.NewX(key)
	if err != nil {
		return nil, fmt.Errorf("room key: %w", err)
	}
	return &Sealer{name: hex.EncodeToString(nameKey), epoch: epoch, aead: aead}, nil
}

// Name is the room's wire name in this epoch: its envelopes' room, topic
// and rendezvous name.
func (s *Sealer) Name() string { return s.name }

// Epoch is the key epoch.
func (s *Sealer) Epoch() uint64 { return s.epoch }

// String never shows key material.
func (s *Sealer) String() string { return "sealer(" + s.name + ")" }

func (s *Sealer) ad(env *pb.Envelope, from peer.ID) []byte {
	ad := make([]byte, 0, 128)
	for _, f := range [][]byte{[]byte(Topic(s.name)), binary.BigEndian.AppendUint64(nil, s.epoch), []byte(from),
		{byte(env.GetKind())}, []byte(env.GetId())} {
		ad = binary.AppendUvarint(ad, uint64(len(f)))
		ad = append(ad, f...)
	}
	return ad
}

// Seal encodes body into env, encrypted, as written by from (this node).
// env's kind and id must be set.
func (s *Sealer) Seal(env *pb.Envelope, body *pb.Body, from peer.ID) error {
	b, err := proto.Marshal(body)
	if err != nil {
		return fmt.Errorf("encode body: %w", err)
	}
	nonce := make([]byte, s.aead.NonceSize(), s.aead.NonceSize()+len(b)+s.aead.Overhead())
	rand.Read(nonce)
	env.Body = s.aead.Seal(nonce, nonce, b, s.ad(env, from))
	return nil
}

// Open decrypts and validates env's body as written by from.
func (s *Sealer) Open(env *pb.Envelope, from peer.ID) (*pb.Body, error) {
	sealed := env.GetBody()
	if len(sealed) < s.aead.NonceSize()+s.aead.Overhead() {
		return nil, ErrUnsealed
	}
	n := s.aead.NonceSize()
	plain, err := s.aead.Open(nil, sealed[:n], sealed[n:], s.ad(env, from))
	if err != nil {
		return nil, ErrUnsealed
	}
	return OpenBody(&pb.Envelope{Kind: env.GetKind(), Body: plain})
}

// Opener opens an envelope's body written by from: OpenPublic, or a
// Sealer's Open.
type Opener func(env *pb.Envelope, from peer.ID) (*pb.Body, error)

// OpenPublic opens a public room's body.
func OpenPublic(env *pb.Envelope, _ peer.ID) (*pb.Body, error) { return OpenBody(env) }

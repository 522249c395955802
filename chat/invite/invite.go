// Package invite encodes and decodes Parley's invite links:
//
//	parley://join/<base64url, unpadded, of a JSON object>
//
// The object (version 1) carries a room name; for a private room its
// 256-bit secret, key epoch and creator's peer ID; and the inviter's relay
// addresses (multiaddrs ending in /p2p/<relay id>), so that a friend on
// another network needs nothing else to get in:
//
//	{"v":1,"room":"lobby","relays":["/ip4/…/tcp/4001/p2p/12D3Koo…"]}
//	{"v":1,"room":"team","key":"<base64 of 32 bytes>","epoch":2,"by":"12D3Koo…","relays":[…]}
//
// JSON rather than a protobuf: a link is made by hand-readable tools as
// often as by Parley, and its size (a few hundred bytes) does not matter.
// A link from a newer Parley (v > 1) is refused with a plain error rather
// than half understood.
package invite

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"

	"github.com/parley-chat/parley/chat/protocol/room"
)

// Prefix starts every invite link.
const Prefix = "parley://join/"

// Version is the link format this Parley writes and reads.
const Version = 1

// Limits of a link.
const (
	MaxLinkBytes = 4 << 10
	MaxRelays    = 8
	SecretBytes  = 32
)

// ErrNotLink means a string is not an invite link at all (no Prefix).
var ErrNotLink = errors.New("not an invite link (parley://join/…)")

// Link is what an invite link carries.
type Link struct {
	Room    string
	Secret  []byte  // nil for a public room
	Epoch   uint64  // of the secret; 0 for a public room
	Creator peer.ID // who may rekey a private room; "" for a public room
	Relays  []string
}

// Private reports whether l invites to a private room.
func (l Link) Private() bool { return l.Secret != nil }

type wire struct {
	V      int      `json:"v"`
	Room   string   `json:"room"`
	Key    []byte   `json:"key,omitempty"`
	Epoch  uint64   `json:"epoch,omitempty"`
	By     string   `json:"by,omitempty"`
	Relays []string `json:"relays,omitempty"`
}

// IsLink reports whether s looks like an invite link (it may still be a
// bad one).
func IsLink(s string) bool { return strings.HasPrefix(strings.TrimSpace(s), Prefix) }

// Encode writes l as a link.
func Encode(l Link) (string, error) {
	if err := l.validate(); err != nil {
		return "", err
	}
	w := wire{V: Version, Room: l.Room, Key: l.Secret, Epoch: l.Epoch, Relays: l.Relays}
	if l.Private() {
		w.By = l.Creator.String()
	}
	b, err := json.Marshal(w)
	if err != nil {
		return "", fmt.Errorf("encode invite link: %w", err)
	}
	s := Prefix + base64.RawURLEncoding.EncodeToString(b)
	if len(s) > MaxLinkBytes {
		return "", fmt.Errorf("invite link of %d bytes: too long (max %d)", len(s), MaxLinkBytes)
	}
	return s, nil
}

// Decode reads a link, refusing anything malformed, truncated or from a
// newer Parley with an error that says which.
func Decode(s string) (Link, error) {
	s = strings.TrimSpace(s)
	rest, ok := strings.CutPrefix(s, Prefix)
	if !ok {
		return Link{}, ErrNotLink
	}
	if len(s) > MaxLinkBytes {
		return Link{}, fmt.Errorf("invite link of %d bytes: too long (max %d)", len(s), MaxLinkBytes)
	}
	b, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(rest, "="))
	if err != nil {
		return Link{}, errors.New("invite link: damaged (not base64url); was it cut short or changed when copied?")
	}
	var w wire
	if err := json.Unmarshal(b, &w); err != nil {
		return Link{}, errors.New("invite link: damaged (not a link object); was it cut short when copied?")
	}
	switch {
	case w.V > Version:
		return Link{}, fmt.Errorf("invite link: made by a newer Parley (link version %d, this one reads %d); update Parley", w.V, Version)
	case w.V < 1:
		return Link{}, errors.New("invite link: no version; not made by Parley")
	}
	l := Link{Room: w.Room, Secret: w.Key, Epoch: w.Epoch, Relays: w.Relays}
	if w.By != "" {
		if l.Creator, err = peer.Decode(w.By); err != nil {
			return Link{}, fmt.Errorf("invite link: bad creator peer ID: %v", err)
		}
	}
	if err := l.validate(); err != nil {
		return Link{}, err
	}
	return l, nil
}

func (l Link) validate() error {
	if err := room.ValidateName(l.Room); err != nil {
		return fmt.Errorf("invite link: %w", err)
	}
	if l.Secret != nil && len(l.Secret) != SecretBytes {
		return fmt.Errorf("invite link: room key of %d bytes, want %d", len(l.Secret), SecretBytes)
	}
	if l.Secret != nil && l.Creator == "" {
		return errors.New("invite link: private room without its creator")
	}
	if l.Secret == nil && (l.Creator != "" || l.Epoch != 0) {
		return errors.New("invite link: a creator or key epoch without a room key")
	}
	if len(l.Relays) > MaxRelays {
		return fmt.Errorf("invite link: %d relay addresses (max %d)", len(l.Relays), MaxRelays)
	}
	for _, r := range l.Relays {
		a, err := ma.NewMultiaddr(r)
		if err == nil {
			_, err = peer.AddrInfoFromP2pAddr(a)
		}
		if err != nil {
			return fmt.Errorf("invite link: relay address %q: want a multiaddr ending in /p2p/<peer id>", r)
		}
	}
	return nil
}

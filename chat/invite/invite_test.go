package invite_test

import (
	"bytes"
	"encoding/base64"
	"errors"
	"strings"
	"testing"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/parley-chat/parley/chat/invite"
)

const (
	relayID   = "12D3KooWDpJ7As7BWAwRMfu1VU2WCqNjvq387JEYKDBj4kx6nXTN"
	creatorID = "12D3KooWLiuN1Zn3fj2hX8nSeAyR4e2yYsL3hWcoNZHK3NH5Swmt"
)

func link(t *testing.T, l invite.Link) string {
	t.Helper()
	s, err := invite.Encode(l)
	if err != nil {
		t.Fatalf("Encode: %v", err)
	}
	return s
}

func TestRoundTrip(t *testing.T) {
	creator, err := peer.Decode(creatorID)
	if err != nil {
		t.Fatal(err)
	}
	relays := []string{"/ip4/11.0.0.2/tcp/4001/p2p/" + relayID, "/ip4/11.0.0.2/udp/4001/quic-v1/p2p/" + relayID}
	for _, want := range []invite.Link{
		{Room: "lobby"},
		{Room: "lobby", Relays: relays},
		{Room: "team.x", Secret: bytes.Repeat([]byte{7}, 32), Epoch: 3, Creator: creator, Relays: relays},
	} {
		s := link(t, want)
		if !strings.HasPrefix(s, invite.Prefix) || !invite.IsLink(s) {
			t.Fatalf("link %q lacks the prefix", s)
		}
		got, err := invite.Decode(s)
		if err != nil {
			t.Fatalf("Decode(%q): %v", s, err)
		}
		if got.Room != want.Room || !bytes.Equal(got.Secret, want.Secret) || got.Epoch != want.Epoch ||
			got.Creator != want.Creator || strings.Join(got.Relays, " ") != strings.Join(want.Relays, " ") {
			t.Errorf("round trip: got %+v, want %+v", got, want)
		}
		if got.Private() != (want.Secret != nil) {
			t.Errorf("Private() = %v for %+v", got.Private(), want)
		}
	}
}

func TestBadLinksArePlainErrors(t *testing.T) {
	good := link(t, invite.Link{Room: "lobby", Relays: []string{"/ip4/11.0.0.2/tcp/4001/p2p/" + relayID}})
	enc := func(js string) string { return invite.Prefix + base64.RawURLEncoding.EncodeToString([]byte(js)) }
	for _, tc := range []struct {
		name, link, want string
	}{
		{"not a link", "lobby", "not an invite link"},
		{"truncated", good[:len(good)-9], "damaged"},
		{"not base64", invite.Prefix + "%%%", "damaged"},
		{"newer", enc(`{"v":2,"room":"lobby"}`), "newer Parley"},
		{"no version", enc(`{"room":"lobby"}`), "no version"},
		{"bad room", enc(`{"v":1,"room":"a b"}`), "room name"},
		{"short key", enc(`{"v":1,"room":"x","key":"AAAA","by":"` + creatorID + `"}`), "room key of 3 bytes"},
		{"key without creator", enc(`{"v":1,"room":"x","key":"` + base64.StdEncoding.EncodeToString(make([]byte, 32)) + `"}`), "without its creator"},
		{"bad relay", enc(`{"v":1,"room":"x","relays":["/ip4/1.2.3.4/tcp/1"]}`), "relay address"},
		{"too long", invite.Prefix + strings.Repeat("A", invite.MaxLinkBytes), "too long"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := invite.Decode(tc.link)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Decode: got %v, want an error saying %q", err, tc.want)
			}
			if tc.name == "not a link" && !errors.Is(err, invite.ErrNotLink) {
				t.Errorf("got %v, want ErrNotLink", err)
			}
		})
	}
}

// FuzzDecode feeds the decoder whatever a person may paste: it must never
// panic, and whatever it accepts must encode again to a link that decodes
// to the same thing.
func FuzzDecode(f *testing.F) {
	f.Add("parley://join/" + base64.RawURLEncoding.EncodeToString([]byte(`{"v":1,"room":"lobby","relays":["/ip4/11.0.0.2/tcp/4001/p2p/`+relayID+`"]}`)))
	f.Add("parley://join/" + base64.RawURLEncoding.EncodeToString([]byte(`{"v":1,"room":"t","key":"`+base64.StdEncoding.EncodeToString(make([]byte, 32))+`","epoch":1,"by":"`+creatorID+`"}`)))
	f.Add("parley://join/")
	f.Add("parley://join/e30")
	f.Add("lobby")
	f.Fuzz(func(t *testing.T, s string) {
		l, err := invite.Decode(s)
		if err != nil {
			return
		}
		again, err := invite.Encode(l)
		if err != nil {
			t.Fatalf("accepted %q but cannot encode it again: %v", s, err)
		}
		l2, err := invite.Decode(again)
		if err != nil || l2.Room != l.Room || !bytes.Equal(l2.Secret, l.Secret) || l2.Epoch != l.Epoch || l2.Creator != l.Creator {
			t.Fatalf("re-encoded link differs: %+v vs %+v (%v)", l2, l, err)
		}
	})
}

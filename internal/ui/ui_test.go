package ui_test

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/parley-chat/parley/chat"
	"github.com/parley-chat/parley/internal/app"
	"github.com/parley-chat/parley/internal/ui"
)

// The JSON events are a contract with scripts: field for field.
func TestJSONEvents(t *testing.T) {
	alice, _ := peer.Decode("12D3KooWGuKRgnu281d1P2vBY8K6Cy9BodSVaP8JkEEbwCgCax4y")
	at := time.Date(2026, 11, 21, 11, 4, 53, 877e6, time.UTC)
	tests := []struct {
		ev   chat.Event
		want string
	}{
		{chat.Message{Room: "lobby", ID: "ab", From: alice, Nick: "alice", Text: "hi", SentAt: at},
			`{"event":"message","room":"lobby","id":"ab","from":"12D3KooWGuKRgnu281d1P2vBY8K6Cy9BodSVaP8JkEEbwCgCax4y","nick":"alice","text":"hi","sent_at":"2026-11-21T11:04:53.877Z"}`},
		{chat.DirectMessage{ID: "cd", From: alice, Nick: "alice", Text: "psst", SentAt: at},
			`{"event":"dm","id":"cd","from":"12D3KooWGuKRgnu281d1P2vBY8K6Cy9BodSVaP8JkEEbwCgCax4y","nick":"alice","text":"psst","sent_at":"2026-11-21T11:04:53.877Z"}`},
		{chat.Delivered{ID: "cd", To: alice},
			`{"event":"delivered","id":"cd","to":"12D3KooWGuKRgnu281d1P2vBY8K6Cy9BodSVaP8JkEEbwCgCax4y"}`},
		{chat.PeerJoined{Room: "lobby", Peer: alice},
			`{"event":"peer-joined","room":"lobby","peer":"12D3KooWGuKRgnu281d1P2vBY8K6Cy9BodSVaP8JkEEbwCgCax4y"}`},
		{chat.PeerLeft{Room: "lobby", Peer: alice, Nick: "alice"},
			`{"event":"peer-left","room":"lobby","peer":"12D3KooWGuKRgnu281d1P2vBY8K6Cy9BodSVaP8JkEEbwCgCax4y","nick":"alice"}`},
		{chat.Connection{Peer: alice, Path: chat.PathLAN},
			`{"event":"connection","peer":"12D3KooWGuKRgnu281d1P2vBY8K6Cy9BodSVaP8JkEEbwCgCax4y","path":"lan"}`},
		{chat.Connection{Peer: alice, Path: chat.PathHolePunched, Family: chat.FamilyIP6, Transport: chat.TransportQUIC},
			`{"event":"connection","peer":"12D3KooWGuKRgnu281d1P2vBY8K6Cy9BodSVaP8JkEEbwCgCax4y","path":"hole-punched","family":"ip6","transport":"quic"}`},
		{chat.HolePunch{Peer: alice, OK: true, Attempts: 1, Elapsed: 4 * time.Millisecond, Family: chat.FamilyIP4, Transport: chat.TransportTCP},
			`{"event":"hole-punch","peer":"12D3KooWGuKRgnu281d1P2vBY8K6Cy9BodSVaP8JkEEbwCgCax4y","ok":true,"attempts":1,"elapsed_ms":4,"family":"ip4","transport":"tcp"}`},
		{chat.HolePunch{Peer: alice, Attempts: 3, Elapsed: 5 * time.Second, Err: "timeout"},
			`{"event":"hole-punch","peer":"12D3KooWGuKRgnu281d1P2vBY8K6Cy9BodSVaP8JkEEbwCgCax4y","ok":false,"attempts":3,"elapsed_ms":5000,"error":"timeout"}`},
		{chat.Error{ID: "cd", Err: errors.New("boom")},
			`{"event":"error","error":"boom","id":"cd"}`},
	}
	for _, tt := range tests {
		if got := (ui.JSON{}).Event(tt.ev); got != tt.want {
			t.Errorf("got  %s\nwant %s", got, tt.want)
		}
	}
}

func TestTextShowsPeerIDBesideNick(t *testing.T) {
	alice, _ := peer.Decode("12D3KooWGuKRgnu281d1P2vBY8K6Cy9BodSVaP8JkEEbwCgCax4y")
	r := ui.Text{Current: func() string { return "lobby" }, Local: time.UTC}
	at := time.Date(2026, 11, 21, 11, 4, 0, 0, time.UTC)
	got := r.Event(chat.Message{Room: "lobby", From: alice, Nick: "alice", Text: "two\nlines", SentAt: at})
	// The last 6 characters of the peer ID follow the nick.
	want := "[11:04] <alice[gCax4y]> two\n        lines"
	if got != want {
		t.Errorf("got %q, want %q", got, want)
	}
	if got := r.Event(chat.Message{Room: "dev", From: alice, Nick: "alice", Text: "x", SentAt: at}); !strings.Contains(got, "#dev") {
		t.Errorf("message in another room %q does not name the room", got)
	}
}

func TestLineReaderSkipsOverlongLines(t *testing.T) {
	in := "short\n" + strings.Repeat("x", ui.MaxLineBytes+10) + "\nnext\nlast-without-newline"
	read := ui.LineReader(strings.NewReader(in))
	var got []string
	var errs int
	for {
		l, err := read()
		if err != nil {
			if strings.Contains(err.Error(), "longer than") {
				errs++
				continue
			}
			break
		}
		got = append(got, l)
	}
	if strings.Join(got, "|") != "short|next|last-without-newline" || errs != 1 {
		t.Errorf("got lines %q and %d errors, want short|next|last-without-newline and 1 error", got, errs)
	}
}

// The relay is named as the relay (a form no nick can take), not as a
// nameless member of the rooms it carries.
func TestTextNamesTheRelay(t *testing.T) {
	relay, _ := peer.Decode("12D3KooWGuKRgnu281d1P2vBY8K6Cy9BodSVaP8JkEEbwCgCax4y")
	r := ui.Text{Current: func() string { return "lobby" }, Local: time.UTC}
	for ev, want := range map[chat.Event]string{
		chat.PeerJoined{Room: "lobby", Peer: relay, Role: chat.RoleRelay}:                                                                "* the relay [gCax4y] carries #lobby",
		chat.PeerLeft{Room: "lobby", Peer: relay, Role: chat.RoleRelay}:                                                                  "* the relay [gCax4y] no longer carries #lobby",
		chat.Connection{Peer: relay, Path: chat.PathDirect, Role: chat.RoleRelay}:                                                        "* the relay [gCax4y] reached: direct",
		chat.Connection{Peer: relay, Path: chat.PathDirect, Role: chat.RoleRelay, Family: chat.FamilyIP6, Transport: chat.TransportQUIC}: "* the relay [gCax4y] reached: direct over ip6/quic",
		chat.HolePunch{Peer: relay, OK: true, Attempts: 2, Family: chat.FamilyIP4, Transport: chat.TransportTCP}:                         "* hole punching to [gCax4y] worked: direct over ip4/tcp after 2 tries",
		chat.HolePunch{Peer: relay, Attempts: 3, Err: "all dials failed"}:                                                                "* hole punching to [gCax4y] failed after 3 tries (all dials failed): still relayed, will try again",
	} {
		if got := r.Event(ev); got != want {
			t.Errorf("got %q, want %q", got, want)
		}
	}
	if got := (ui.JSON{}).Event(chat.PeerJoined{Room: "lobby", Peer: relay, Role: chat.RoleRelay}); !strings.Contains(got, `"role":"relay"`) {
		t.Errorf("JSON peer-joined of the relay %s has no role", got)
	}
}

// /peers shows who is in your rooms now apart from who was only seen
// recently, and a peer that is not connected says so, in JSON too.
func TestPeersNowAndRecently(t *testing.T) {
	ids := []string{"12D3KooWGuKRgnu281d1P2vBY8K6Cy9BodSVaP8JkEEbwCgCax4y", "12D3KooWMdpUG3TTdoLemdq5bkGTLDbfvsDgXpUr7gAuFiaDykzC"}
	bob, _ := peer.Decode(ids[0])
	carol, _ := peer.Decode(ids[1])
	seen := time.Date(2026, 11, 21, 9, 30, 0, 0, time.UTC)
	ps := []chat.PeerInfo{
		{ID: bob, Nick: "bob", Rooms: []string{"lobby"}, Path: chat.PathHolePunched, Family: chat.FamilyIP6, Transport: chat.TransportTCP, LastSeen: seen},
		{ID: carol, Nick: "carol", Path: chat.PathNone, LastSeen: seen},
	}
	got := ui.Text{Local: time.UTC}.Peers("", ps)
	want := "in your rooms now:\n  bob[gCax4y]        #lobby  hole-punched over ip6/tcp\n" +
		"seen recently, not in your rooms now:\n  carol[aDykzC]      last seen Nov 21 09:30  not connected"
	if got != want {
		t.Errorf("got\n%s\nwant\n%s", got, want)
	}
	js := ui.JSON{}.Peers("", ps)
	if !strings.Contains(js, `"path":"not connected"`) || !strings.Contains(js, `"last_seen":"2026-11-21T09:30:00Z"`) {
		t.Errorf("JSON peers %s: want path \"not connected\" and last_seen", js)
	}
	if !strings.Contains(js, `"path":"hole-punched","family":"ip6","transport":"tcp"`) {
		t.Errorf("JSON peers %s: want bob's family and transport", js)
	}
}

func TestNickChangeLine(t *testing.T) {
	alice, _ := peer.Decode("12D3KooWGuKRgnu281d1P2vBY8K6Cy9BodSVaP8JkEEbwCgCax4y")
	r := ui.Text{Current: func() string { return "lobby" }, Local: time.UTC}
	ev := chat.NickChanged{Room: "lobby", Peer: alice, Old: "alice", New: "alicia"}
	if got, want := r.Event(ev), "* alice is now alicia[gCax4y]"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
	ev.Room = "dev"
	if got, want := r.Event(ev), "* #dev alice is now alicia[gCax4y]"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
	want := `{"event":"nick","room":"dev","peer":"12D3KooWGuKRgnu281d1P2vBY8K6Cy9BodSVaP8JkEEbwCgCax4y","old":"alice","nick":"alicia"}`
	if got := (ui.JSON{}).Event(ev); got != want {
		t.Errorf("got  %s\nwant %s", got, want)
	}
}

func TestHistoryLines(t *testing.T) {
	r := ui.Text{Current: func() string { return "lobby" }, Local: time.UTC}
	for ev, want := range map[chat.Event]string{
		chat.HistoryShown{Room: "lobby", Shown: 2, Hidden: 40}:                 "──── new since you left ────",
		chat.HistoryShown{Room: "dev", Shown: 2}:                               "──── #dev: new since you left ────",
		chat.HistoryShown{Room: "lobby", Shown: 2, Hidden: 24, CaughtUp: true}: "  (26 missed messages caught up, the newest 2 shown above; the rest are stored)",
		chat.HistoryShown{Room: "lobby", Shown: 0, Hidden: 1, CaughtUp: true}:  "  (1 missed message caught up and stored, not shown)",
		chat.HistoryShown{Room: "lobby", Shown: 3, CaughtUp: true}:             "",
	} {
		if got := r.Event(ev); got != want {
			t.Errorf("%+v: got %q, want %q", ev, got, want)
		}
	}
}

// A message no one could receive says so, and so does its reaching someone.
func TestUnreceivedLines(t *testing.T) {
	alice, _ := peer.Decode("12D3KooWGuKRgnu281d1P2vBY8K6Cy9BodSVaP8JkEEbwCgCax4y")
	r := ui.Text{Current: func() string { return "lobby" }, Local: time.UTC}
	at := time.Date(2026, 11, 21, 11, 4, 0, 0, time.UTC)
	got := r.Event(chat.Message{Room: "lobby", From: alice, Nick: "alice", Text: "anyone?", SentAt: at, Unreceived: true})
	if want := "[11:04] <alice[gCax4y]> anyone?\n  (no one in #lobby has received this yet)"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
	got = r.Event(chat.Received{Room: "lobby", IDs: []string{"a", "b"}, By: alice, Nick: "bob"})
	if want := "  ✓ your 2 messages in #lobby that no one had received reached bob[gCax4y]"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
	js := (ui.JSON{}).Event(chat.Received{Room: "lobby", IDs: []string{"a"}, By: alice, Role: chat.RoleRelay})
	if want := `{"event":"received","room":"lobby","ids":["a"],"by":"12D3KooWGuKRgnu281d1P2vBY8K6Cy9BodSVaP8JkEEbwCgCax4y","role":"relay"}`; js != want {
		t.Errorf("got  %s\nwant %s", js, want)
	}
}

// A person reads one short sentence about a DM that waits, never a
// library's (multi-line) error.
func TestQueuedAndErrorsAreOneSentence(t *testing.T) {
	bob, _ := peer.Decode("12D3KooWGuKRgnu281d1P2vBY8K6Cy9BodSVaP8JkEEbwCgCax4y")
	r := ui.Text{Local: time.UTC}
	dial := errors.New("failed to dial 12D3KooWGuKRgnu281d1P2vBY8K6Cy9BodSVaP8JkEEbwCgCax4y:\n  * [/ip4/127.0.0.1/tcp/1] dial tcp4 127.0.0.1:1: connect: connection refused")
	got := r.Event(chat.Queued{ID: "abcdef0123", To: bob, Nick: "bob", Err: fmt.Errorf("%w: %w", chat.ErrOffline, dial)})
	if want := "  … bob[gCax4y] is offline: the DM is queued and will be retried"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
	if got := r.Event(chat.Error{Err: dial}); strings.Contains(got, "\n") {
		t.Errorf("error shown on several lines: %q", got)
	}
}

func TestOutboxOfOneDM(t *testing.T) {
	bob, _ := peer.Decode("12D3KooWGuKRgnu281d1P2vBY8K6Cy9BodSVaP8JkEEbwCgCax4y")
	got := ui.Text{Local: time.UTC}.Outbox([]chat.PendingDM{{ID: "abcdef0123", To: bob, Text: "hi"}})
	if !strings.HasPrefix(got, "1 DM waiting for delivery:") {
		t.Errorf("got %q, want it to start with \"1 DM waiting\"", got)
	}
}

func TestSplitTextSaysSo(t *testing.T) {
	res := app.Sent{ID: "a", Room: "lobby", IDs: []string{"a", "b"}}
	if got := (ui.Text{}).Result(res); !strings.Contains(got, "sent as 2 messages") {
		t.Errorf("got %q, want it to say the text was sent as 2 messages", got)
	}
	if got := (ui.JSON{}).Result(res); got != `{"event":"sent","id":"a","room":"lobby","ids":["a","b"]}` {
		t.Errorf("got %s", got)
	}
	if got := (ui.Text{}).Result(app.Sent{ID: "a", Room: "lobby"}); got != "" {
		t.Errorf("one message sent says %q, want nothing (it comes back as the message)", got)
	}
}

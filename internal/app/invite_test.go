package app_test

import (
	"context"
	"strings"
	"testing"

	"github.com/parley-chat/parley/chat"
	"github.com/parley-chat/parley/chat/invite"
	"github.com/parley-chat/parley/internal/app"
	"github.com/parley-chat/parley/internal/testutil"
)

func execJSON(t *testing.T, s *app.Session, line string) (app.Result, error) {
	t.Helper()
	cmd, err := app.ParseJSON(line)
	if err != nil {
		return nil, err
	}
	return s.Execute(context.Background(), cmd)
}

// /private makes a room and answers its invite; the link, pasted after
// /join (or as JSON), brings another node in, connecting to the relays it
// names; /invite in a public room gives a link without a key.
func TestInviteLinks(t *testing.T) {
	relay := testutil.NewNode(t)
	relayAddr := testutil.Info(relay).Addrs[0].String() + "/p2p/" + relay.ID().String()
	aliceNode := testutil.NewNode(t)
	alice := testutil.NewChat(t, aliceNode, chat.WithNick("alice"))
	a := app.New(alice.Service, app.WithRelays(func() []string { return []string{relayAddr} }))
	as := a.NewSession("")
	res, err := run(t, as, "/private team")
	if err != nil {
		t.Fatal(err)
	}
	inv, ok := res.(app.Invite)
	if !ok || inv.Room != "team" || !inv.Private || as.Current() != "team" {
		t.Fatalf("/private team: %+v (current %q), want a private invite to team", res, as.Current())
	}
	l, err := invite.Decode(inv.Link)
	if err != nil {
		t.Fatal(err)
	}
	if l.Room != "team" || len(l.Secret) != 32 || l.Creator != alice.ID() || len(l.Relays) != 1 || l.Relays[0] != relayAddr {
		t.Fatalf("link carries %+v", l)
	}
	again, err := run(t, as, "/invite")
	if err != nil || again.(app.Invite).Link != inv.Link {
		t.Fatalf("/invite: %+v, %v; want the same link", again, err)
	}

	// Bob knows no one: the link's relay is where he connects first.
	bob := testutil.NewChat(t, testutil.NewNode(t), chat.WithNick("bob"))
	var connected []string
	b := app.New(bob.Service, app.WithConnect(func(ctx context.Context, addrs []string) error {
		connected = addrs
		return bob.Node.Host().Connect(ctx, testutil.Info(aliceNode)) // the relay stands in for the path to alice
	}))
	bs := b.NewSession("")
	if _, err := execJSON(t, bs, `{"cmd":"join","room":"`+inv.Link+`"}`); err != nil {
		t.Fatal(err)
	}
	if bs.Current() != "team" || len(connected) != 1 || connected[0] != relayAddr {
		t.Fatalf("after joining by link: current %q, connected to %v", bs.Current(), connected)
	}
	bob.WaitPeerJoined(t, "team", alice.ID())
	if _, err := run(t, as, "hello team"); err != nil {
		t.Fatal(err)
	}
	bob.WaitMessage(t, "team", "hello team")

	if _, err := run(t, as, "/join lobby"); err != nil {
		t.Fatal(err)
	}
	res, err = execJSON(t, as, `{"cmd":"invite","room":"lobby"}`)
	if err != nil {
		t.Fatal(err)
	}
	if pub, _ := invite.Decode(res.(app.Invite).Link); pub.Private() || pub.Room != "lobby" {
		t.Errorf("public invite carries %+v", pub)
	}

	for line, want := range map[string]string{
		"/join parley://join/eyJ2Ijo5LCJyb29tIjoieCJ9": "newer Parley",
		"/join parley://join/eyJ2Ijox":                 "damaged",
		"/invite nowhere":                              "not in room",
		"/kick bob":                                    "public", // lobby is current and public
	} {
		if _, err := run(t, as, line); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: %v, want an error saying %q", line, err, want)
		}
	}
}

package app_test

import (
	"strings"
	"testing"

	"github.com/parley-chat/parley/internal/app"
)

func TestParseLine(t *testing.T) {
	tests := []struct {
		line    string
		want    app.Command
		wantErr string
	}{
		{"hello there", app.Command{Kind: app.Say, Text: "hello there"}, ""},
		{"//etc/passwd is a path", app.Command{Kind: app.Say, Text: "/etc/passwd is a path"}, ""},
		{"/dm alice hi there", app.Command{Kind: app.DM, To: "alice", Text: "hi there"}, ""},
		{"/dm alice", app.Command{}, "usage: /dm"},
		{"/join dev", app.Command{Kind: app.Join, Room: "dev"}, ""},
		{"/join", app.Command{}, "usage: /join ROOM"},
		{"/join a b", app.Command{}, "usage"},
		{"/leave", app.Command{Kind: app.Leave}, ""},
		{"/leave dev", app.Command{Kind: app.Leave, Room: "dev"}, ""},
		{"/room", app.Command{Kind: app.Switch}, ""},
		{"/room dev", app.Command{Kind: app.Switch, Room: "dev"}, ""},
		{"/nick bob", app.Command{Kind: app.Nick, Text: "bob"}, ""},
		{"/nick", app.Command{}, "usage: /nick NAME"},
		{"/peers", app.Command{Kind: app.Peers}, ""},
		{"/invite", app.Command{Kind: app.InviteLink}, ""},
		{"/invite #dev", app.Command{Kind: app.InviteLink, Room: "dev"}, ""},
		{"/private team", app.Command{Kind: app.Private, Room: "team"}, ""},
		{"/private", app.Command{}, "usage: /private NAME"},
		{"/kick bob", app.Command{Kind: app.Kick, To: "bob"}, ""},
		{"/kick", app.Command{}, "usage: /kick PEER"},
		{"/join parley://join/eyJ2IjoxfQ", app.Command{Kind: app.Join, Room: "parley://join/eyJ2IjoxfQ"}, ""},
		{"/quit", app.Command{Kind: app.Quit}, ""},
		{"/frob", app.Command{}, "unknown command /frob"},
	}
	for _, tt := range tests {
		t.Run(tt.line, func(t *testing.T) {
			got, err := app.ParseLine(tt.line)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("got %v, %v; want error %q", got, err, tt.wantErr)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("got %+v, %v; want %+v", got, err, tt.want)
			}
		})
	}
}

func TestParseJSON(t *testing.T) {
	got, err := app.ParseJSON(`{"cmd":"dm","to":"bob","text":"/not a command"}`)
	if err != nil || got != (app.Command{Kind: app.DM, To: "bob", Text: "/not a command"}) {
		t.Errorf("got %+v, %v", got, err)
	}
	for _, bad := range []string{`{"cmd":"dm","text":"x"}`, `{"cmd":"launch"}`, `{"cmd":"send","txt":"typo"}`, `{not json`} {
		if _, err := app.ParseJSON(bad); err == nil {
			t.Errorf("ParseJSON(%s) succeeded, want an error", bad)
		}
	}
}

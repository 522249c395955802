package ui_test

import (
	"strings"
	"testing"

	"github.com/parley-chat/parley/internal/app"
	"github.com/parley-chat/parley/internal/ui"
)

func TestInviteRendering(t *testing.T) {
	inv := app.Invite{Room: "team", Link: "parley://join/abc", Private: true}
	want := `{"event":"invite","room":"team","link":"parley://join/abc","private":true}`
	if got := (ui.JSON{}).Result(inv); strings.TrimSpace(got) != want {
		t.Errorf("JSON: got %s, want %s", got, want)
	}
	text := (ui.Text{}).Result(inv)
	if lines := strings.Split(text, "\n"); len(lines) != 2 || lines[1] != inv.Link || !strings.Contains(lines[0], "private") {
		t.Errorf("text: got %q, want a line saying private, then the link alone", text)
	}
}

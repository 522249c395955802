package app_test

import (
	"testing"

	"github.com/parley-chat/parley/internal/app"
)

// FuzzParseLine: whatever a person types parses to a command or an error.
func FuzzParseLine(f *testing.F) {
	for _, s := range []string{"hello", "/join lobby", "/dm alice hi there", "/nick bob", "/", "//not a command", "/peers", "/leave #x", "/history 5"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, line string) {
		app.ParseLine(line)
	})
}

// FuzzParseJSON: whatever a program writes on stdin parses to a command
// or an error.
func FuzzParseJSON(f *testing.F) {
	for _, s := range []string{`{"cmd":"say","room":"lobby","text":"hi"}`, `{"cmd":"dm","to":"alice","text":"x"}`, `{"cmd":"join","room":"x"}`, `{}`, `[]`, `{"cmd":"say","text":1}`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, line string) {
		app.ParseJSON(line)
	})
}

package app_test

import (
	"strings"
	"testing"
	"time"

	"github.com/parley-chat/parley/internal/app"
)

// /why's words for each way a peer is reached.
func TestRouteExplain(t *testing.T) {
	now := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	tests := []struct {
		name  string
		route app.Route
		want  []string
	}{
		{"not connected", app.Route{Nick: "bob"}, []string{"bob is not connected now"}},
		{"direct", app.Route{Nick: "bob", Path: "direct", RTT: 1500 * time.Microsecond}, []string{"bob is reached directly", "Round trip: 1.5ms"}},
		{"relayed, punch failed", app.Route{Nick: "bob", Path: "relayed", DCUtR: true,
			LastPunch: &app.PunchAttempt{At: now.Add(-8 * time.Second), Kind: "hole punch", Attempts: 3, Err: "all retries for hole punch with peer failed"}},
			[]string{"reached only through a relay", "a hole punch 8s ago failed after 3 round(s) (all retries", "chat stays on the relay", "parley doctor"}},
		{"relayed, no DCUtR", app.Route{Nick: "bob", Path: "relayed"}, []string{"does not speak DCUtR"}},
		{"hole-punched", app.Route{Path: "hole-punched", LastPunch: &app.PunchAttempt{At: now.Add(-time.Minute), Kind: "hole punch", Success: true, Elapsed: 42 * time.Millisecond}},
			[]string{"the peer is reached directly through a hole punched", "succeeded in 42ms"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := strings.Join(tt.route.Explain(now), "\n")
			for _, w := range tt.want {
				if !strings.Contains(got, w) {
					t.Errorf("explanation %q lacks %q", got, w)
				}
			}
		})
	}
}

package main_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/parley-chat/parley/internal/doctor"
	"github.com/parley-chat/parley/internal/netlab"
)

// doctorIn runs `parley doctor --json` on a lab host against the relays
// and returns its report.
func doctorIn(t *testing.T, h *netlab.Host, relays ...string) (doctor.Report, error) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	args := []string{"doctor", "--json", "--wait", "20s", "--data", t.TempDir(),
		"--listen", "/ip4/0.0.0.0/tcp/4001", "--listen", "/ip4/0.0.0.0/udp/4001/quic-v1"}
	for _, r := range relays {
		args = append(args, "--bootstrap", r)
	}
	cmd := h.Command(ctx, binary, args...)
	cmd.Env = cleanEnv()
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return doctor.Report{}, fmt.Errorf("doctor on %s: %v\n%s", h, err, stderr.String())
	}
	var r doctor.Report
	if err := json.Unmarshal(out, &r); err != nil {
		return r, fmt.Errorf("doctor on %s: %v\n%s", h, err, out)
	}
	return r, nil
}

func finding(r doctor.Report, check string) doctor.Finding {
	for _, f := range r.Findings {
		if f.Check == check {
			return f
		}
	}
	return doctor.Finding{}
}

// Behind a port-preserving NAT the doctor says hole punching should work;
// behind a NAT that picks a random port for every connection it says
// chat will go through the relay, and why. Two relays observe each host,
// as a user with two --bootstrap relays would have.
func TestLabDoctorTellsWhetherHolePunchingCanWork(t *testing.T) {
	lab := netlab.Setup(t, netlab.Config{NATA: netlab.PortPreserving, NATB: netlab.FullyRandom})
	r1, addr1 := startRelayOn(t, lab.Relay, t.TempDir())
	r2, addr2 := startRelayOn(t, lab.Relay2, t.TempDir())

	// Both doctors at once: each run is bounded by --wait.
	errs := make(chan error, 1)
	var a1 doctor.Report
	go func() {
		var err error
		a1, err = doctorIn(t, lab.A1, addr1, addr2)
		errs <- err
	}()
	b1, errB := doctorIn(t, lab.B1, addr1, addr2)
	if err := errors.Join(<-errs, errB); err != nil {
		t.Fatal(err)
	}

	for _, c := range []struct {
		host       string
		r          doctor.Report
		kind, word string
		verdict    string
	}{
		{"a1 (port-preserving NAT)", a1, doctor.NATPortPreserving, "hole punching should work", "then directly"},
		{"b1 (fully random NAT)", b1, doctor.NATRandom, "chat will go through the relay", "through the relay"},
	} {
		t.Logf("%s: %.0f ms; NAT %s %v; %s", c.host, c.r.TookMs, c.r.NAT.Kind, c.r.NAT.Observations, c.r.Summary)
		for _, p := range c.r.Bootstrap {
			if !p.Reached || !p.Relay || p.ClockOffsetMs == nil {
				t.Errorf("%s: bootstrap %+v: want reached, a relay, clock compared", c.host, p)
			}
		}
		if !c.r.Relay.Reserved {
			t.Errorf("%s: no relay reservation: %+v", c.host, finding(c.r, "relay"))
		}
		if c.r.NAT.Kind != c.kind {
			t.Errorf("%s: NAT %q, want %q (observations %+v)", c.host, c.r.NAT.Kind, c.kind, c.r.NAT.Observations)
		}
		if f := finding(c.r, "nat"); !strings.Contains(f.Text, c.word) {
			t.Errorf("%s: NAT finding %q, want it to say %q", c.host, f.Text, c.word)
		}
		if !strings.Contains(c.r.Summary, c.verdict) {
			t.Errorf("%s: verdict %q, want %q", c.host, c.r.Summary, c.verdict)
		}
	}
	if f := finding(b1, "nat"); !strings.Contains(f.Text, "new random port") || f.Advice == "" {
		t.Errorf("b1: the doctor does not say why, or what to do: %+v", f)
	}
	// What a person reads says the same.
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := lab.B1.Command(ctx, binary, "doctor", "--data", t.TempDir(), "--bootstrap", addr1, "--bootstrap", addr2,
		"--listen", "/ip4/0.0.0.0/tcp/4001")
	cmd.Env = cleanEnv()
	text, err := cmd.Output()
	t.Logf("parley doctor on b1:\n%s", text)
	if err != nil || !strings.Contains(string(text), "chat will go through the relay") || !strings.Contains(string(text), "→ for direct connections") {
		t.Errorf("doctor's text on b1 (%v) does not say that chat goes through the relay and what to do", err)
	}
	r1.Signal(os.Interrupt)
	r2.Signal(os.Interrupt)
	r1.WaitExit()
	r2.WaitExit()
}

// /why PEER in a chat says how the peer is reached and how fast.
func TestWhyExplainsADirectPeer(t *testing.T) {
	a := start(t, "alice", loopbackArgs(t, "join", "lobby", "--nick", "alice")...)
	_, aAddr := a.Ready()
	b := start(t, "bob", loopbackArgs(t, "join", "lobby", "--nick", "bob", "--bootstrap", aAddr)...)
	bID, _ := b.Ready()
	a.Event("peer-joined", "peer", bID)
	a.Send("/why " + bID)
	why := a.Event("why", "peer", bID)
	if why["path"] != "direct" || len(why["connections"].([]any)) == 0 || why["rtt_ms"] == nil {
		t.Errorf("why: %v; want direct, with its connection and round trip", why)
	}
	if text := fmt.Sprint(why["explanation"]); !strings.Contains(text, "is reached directly") || !strings.Contains(text, "Round trip") {
		t.Errorf("why explains %q, want it to say bob is reached directly, and how fast", text)
	}
	a.Send(`{"cmd":"why","to":"nobody-here"}`)
	if e := a.Event("error"); !strings.Contains(fmt.Sprint(e["error"]), "nobody-here") {
		t.Errorf("why for an unknown peer: %v", e)
	}
	a.CloseAndWait()
	b.CloseAndWait()
}

// Across two port-preserving NATs, /why names the hole-punched path and
// the punch that made it.
func TestLabWhyAfterHolePunch(t *testing.T) {
	lab := netlab.Setup(t, netlab.Config{NATA: netlab.PortPreserving, NATB: netlab.PortPreserving})
	_, a1, _, _, _, b1ID := crossNAT(t, lab, t.TempDir())
	a1.Event("connection", "peer", b1ID, "path", "hole-punched")
	a1.Send(`{"cmd":"why","to":"` + b1ID + `"}`)
	why := a1.Event("why", "peer", b1ID)
	t.Logf("why: %v", why["explanation"])
	last, _ := why["last_punch"].(map[string]any)
	if why["path"] != "hole-punched" || last == nil || last["success"] != true {
		t.Errorf("why: path %v, last punch %v; want hole-punched after a successful punch", why["path"], last)
	}
	if !strings.Contains(fmt.Sprint(why["explanation"]), "hole punched in both NATs") {
		t.Errorf("why explains %v", why["explanation"])
	}
}

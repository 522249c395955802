package bench

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"time"

	"github.com/parley-chat/parley/internal/netlab"
	"github.com/parley-chat/parley/internal/proctest"
)

// LabConfig bounds the test-bed benchmarks.
type LabConfig struct {
	Binary  string
	Runs    int
	Timeout time.Duration // bounds each wait
}

// LabResult is what the test bed (internal/netlab) measured.
//
// MDNS is, for two nodes started together on LAN A with default flags
// (mDNS on, default listen addresses), the time from a node's process
// start to its `peer-joined` event for the other (one sample per node and
// run); MDNSConn the same to its `connection` event. Bridge is, for a1
// (LAN A) and b1 (LAN B) started together behind port-preserving NATs
// with --bootstrap pointing at a running `parley relay` on the public
// segment, the time from b1's process start to the first room message
// from a1 arriving at b1; a1 sends a message every 100 ms from its ready
// event on. Process start includes `ip netns exec`.
type LabResult struct {
	LabConfig
	Unavailable string // why the test bed could not be used
	MDNS        Dist
	MDNSConn    Dist
	Bridge      Dist
}

func labCmd(ctx context.Context, h *netlab.Host, bin string, args ...string) *exec.Cmd {
	cmd := h.Command(ctx, bin, args...)
	cmd.Env = append(os.Environ(), "GOLOG_LOG_LEVEL=error")
	return cmd
}

// RunLab builds a test bed and measures mDNS discovery and the bridge.
func RunLab(ctx context.Context, cfg LabConfig) (LabResult, error) {
	res := LabResult{LabConfig: cfg}
	if err := netlab.Available(); err != nil {
		res.Unavailable = err.Error()
		return res, nil
	}
	lctx, cancel := context.WithTimeout(ctx, time.Minute)
	lab, err := netlab.New(lctx, netlab.Config{NATA: netlab.PortPreserving, NATB: netlab.PortPreserving})
	cancel()
	if err != nil {
		return res, err
	}
	defer lab.Close()
	tmp, err := os.MkdirTemp("", "parley-bench-lab")
	if err != nil {
		return res, err
	}
	defer os.RemoveAll(tmp)
	pctx, stop := context.WithCancel(ctx)
	defer stop()

	// mDNS: a1 and a2 together on LAN A.
	var found, conn []time.Duration
	for run := range cfg.Runs {
		dir := filepath.Join(tmp, "mdns"+strconv.Itoa(run))
		a1, err := startProc("a1", labCmd(pctx, lab.A1, cfg.Binary, "join", "lobby", "--json", "--data", dir+"-a1"), cfg.Timeout)
		if err != nil {
			return res, err
		}
		a2, err := startProc("a2", labCmd(pctx, lab.A2, cfg.Binary, "join", "lobby", "--json", "--data", dir+"-a2"), cfg.Timeout)
		if err != nil {
			a1.Stop(5 * time.Second)
			return res, err
		}
		err = func() error {
			defer a1.Stop(10 * time.Second)
			defer a2.Stop(10 * time.Second)
			ids := make([]string, 2)
			for i, p := range []*proctest.Proc{a1, a2} {
				ev, _, err := p.Ready(pctx)
				if err != nil {
					return err
				}
				ids[i] = fmt.Sprint(ev["peer"])
			}
			for i, p := range []*proctest.Proc{a1, a2} {
				other := ids[1-i]
				_, at, err := p.Wait(pctx, "connection to the other", proctest.Match("connection", "peer", other))
				if err != nil {
					return err
				}
				conn = append(conn, at)
				if _, at, err = p.Wait(pctx, "peer-joined of the other", proctest.Match("peer-joined", "peer", other)); err != nil {
					return err
				}
				found = append(found, at)
			}
			return nil
		}()
		if err != nil {
			return res, fmt.Errorf("mdns run %d: %w", run, err)
		}
	}
	res.MDNS, res.MDNSConn = NewDist(found), NewDist(conn)

	// Bridge: relay on the public segment, a1 and b1 behind their NATs.
	ip := lab.Relay.IP.String()
	relay, err := startProc("relay", labCmd(pctx, lab.Relay, cfg.Binary, "relay", "--json", "--data", filepath.Join(tmp, "relay"),
		"--listen", "/ip4/"+ip+"/tcp/4001", "--listen", "/ip4/"+ip+"/udp/4001/quic-v1"), cfg.Timeout)
	if err != nil {
		return res, err
	}
	defer relay.Stop(10 * time.Second)
	rReady, _, err := relay.Ready(pctx)
	if err != nil {
		return res, err
	}
	relayAddr, err := proctest.AddrOf(rReady, "/tcp/")
	if err != nil {
		return res, err
	}
	var bridge []time.Duration
	for run := range cfg.Runs {
		dir := filepath.Join(tmp, "bridge"+strconv.Itoa(run))
		args := func(d string) []string {
			return []string{"join", "lobby", "--json", "--data", d, "--bootstrap", relayAddr,
				"--listen", "/ip4/0.0.0.0/tcp/4001", "--listen", "/ip4/0.0.0.0/udp/4001/quic-v1"}
		}
		a1, err := startProc("a1", labCmd(pctx, lab.A1, cfg.Binary, args(dir+"-a1")...), cfg.Timeout)
		if err != nil {
			return res, err
		}
		b1, err := startProc("b1", labCmd(pctx, lab.B1, cfg.Binary, args(dir+"-b1")...), cfg.Timeout)
		if err != nil {
			a1.Stop(5 * time.Second)
			return res, err
		}
		at, err := func() (time.Duration, error) {
			defer a1.Stop(10 * time.Second)
			defer b1.Stop(10 * time.Second)
			aReady, _, err := a1.Ready(pctx)
			if err != nil {
				return 0, err
			}
			aID := fmt.Sprint(aReady["peer"])
			return firstMessage(pctx, a1, b1, aID, cfg.Timeout)
		}()
		if err != nil {
			return res, fmt.Errorf("bridge run %d: %w", run, err)
		}
		bridge = append(bridge, at)
		cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		lab.FlushConntrack(cctx) // forget the NAT mappings of this run; best effort
		cancel()
	}
	res.Bridge = NewDist(bridge)
	return res, nil
}

// firstMessage has a send a numbered probe to the room every 100 ms (a
// node that has not met anyone yet keeps the first ones) until b shows
// one from a (whose peer ID is aID), and returns when b had it.
func firstMessage(ctx context.Context, a, b *proctest.Proc, aID string, timeout time.Duration) (time.Duration, error) {
	done := make(chan struct{})
	defer close(done)
	go func() {
		tick := time.NewTicker(100 * time.Millisecond)
		defer tick.Stop()
		for i := 0; i < int(timeout/(100*time.Millisecond)); i++ {
			if a.SendJSON(map[string]string{"cmd": "send", "text": "probe " + strconv.Itoa(i)}) != nil {
				return
			}
			select {
			case <-done:
				return
			case <-tick.C:
			}
		}
	}()
	_, at, err := b.Wait(ctx, "a message from a1", proctest.Match("message", "from", aID))
	return at, err
}

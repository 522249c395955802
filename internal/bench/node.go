package bench

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"

	roomproto "github.com/parley-chat/parley/chat/protocol/room"
	"github.com/parley-chat/parley/internal/proctest"
)

// NodeConfig bounds the benchmarks of the parley binary.
type NodeConfig struct {
	Binary       string        // built by proctest.Build
	Runs         int           // starts timed (the first creates the identity)
	Idle         time.Duration // wait before reading RSS
	Peers        int           // in-process peers connected for the second RSS figure
	DMRoundTrips int           // DMs between two binaries (0: skip)
	Timeout      time.Duration // bounds each wait
}

// NodeResult is what the binary benchmarks measured.
//
// Ready is the time from just before the process is started to the line of
// its `ready` event on stdout, for `parley join bench --json --data DIR
// --listen /ip4/127.0.0.1/tcp/0 --no-mdns`, over the runs after the first
// (FirstReady, which also creates the identity and the store). IdleRSS is
// VmRSS from /proc/PID/status after Idle with no peer; PeersRSS the same
// once Peers in-process hosts (light hosts running GossipSub with chat's
// options, subscribed to the room) are connected and the node has reported
// each as peer-joined, after Idle again. BinaryDM is the DM round trip
// between two binaries, what a user gets: from writing
// {"cmd":"dm",...} on the sender's stdin to reading its "delivered" event
// (JSON front end, on-disk store, both processes on loopback). BinaryRoom
// is, between the same two, from writing {"cmd":"send",...} on one's stdin
// to reading the message event on the other's stdout.
type NodeResult struct {
	NodeConfig
	FirstReady     time.Duration
	Ready          Dist
	IdleRSS        int64
	PeersRSS       int64
	IdleMem        ProcMem // IdleRSS split: anonymous, file-backed, the executable's own
	PeersMem       ProcMem
	PeersConnected int
	BinaryDM       Dist
	BinaryRoom     Dist // room message between the same two binaries
}

// joinArgs are the arguments of a loopback-only node.
func joinArgs(data string, extra ...string) []string {
	return append(append([]string{"join", roomName}, proctest.LoopbackFlags(data)...), extra...)
}

// startProc starts cmd, each of its waits bounded by timeout.
func startProc(name string, cmd *exec.Cmd, timeout time.Duration) (*proctest.Proc, error) {
	p, err := proctest.Start(name, cmd)
	if err != nil {
		return nil, err
	}
	p.Timeout = timeout
	return p, nil
}

func quietCmd(ctx context.Context, bin string, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Env = append(os.Environ(), "GOLOG_LOG_LEVEL=error")
	return cmd
}

// RunNode measures start-to-ready, RSS idle and with peers, and the DM
// round trip between two binaries.
func RunNode(ctx context.Context, cfg NodeConfig) (NodeResult, error) {
	res := NodeResult{NodeConfig: cfg}
	tmp, err := os.MkdirTemp("", "parley-bench-node")
	if err != nil {
		return res, err
	}
	defer os.RemoveAll(tmp)
	data := filepath.Join(tmp, "a")

	var ready []time.Duration
	var p *proctest.Proc
	var readyEv proctest.Event
	for run := range max(cfg.Runs, 1) {
		p, err = startProc("parley", quietCmd(ctx, cfg.Binary, joinArgs(data)...), cfg.Timeout)
		if err != nil {
			return res, err
		}
		ev, at, err := p.Ready(ctx)
		if err != nil {
			p.Stop(5 * time.Second)
			return res, err
		}
		if run == 0 {
			res.FirstReady = at
		} else {
			ready = append(ready, at)
		}
		if run < max(cfg.Runs, 1)-1 {
			p.Stop(10 * time.Second)
		}
		readyEv = ev
	}
	res.Ready = NewDist(ready)
	defer p.Stop(10 * time.Second)

	if err := sleepCtx(ctx, cfg.Idle); err != nil {
		return res, err
	}
	if res.IdleMem, err = ReadProcMem(p.Cmd.Process.Pid); err != nil {
		return res, err
	}
	res.IdleRSS = res.IdleMem.RSS

	if cfg.Peers > 0 {
		addr, err := proctest.AddrOf(readyEv, "/ip4/127.0.0.1/tcp/")
		if err != nil {
			return res, err
		}
		info, err := peer.AddrInfoFromP2pAddr(ma.StringCast(addr))
		if err != nil {
			return res, err
		}
		hs, err := NewHosts(cfg.Peers)
		if err != nil {
			return res, err
		}
		defer hs.Close()
		pctx, cancel := context.WithCancel(ctx)
		defer cancel()
		for _, h := range hs.H {
			ps, err := newPubSub(pctx, h, GossipSub, new(psTracer), nil)
			if err != nil {
				return res, err
			}
			t, err := ps.Join(roomproto.Topic(roomName))
			if err != nil {
				return res, err
			}
			if _, err := t.Subscribe(); err != nil {
				return res, err
			}
		}
		for i, h := range hs.H {
			cctx, ccancel := context.WithTimeout(ctx, cfg.Timeout)
			err := h.Connect(cctx, *info)
			ccancel()
			if err != nil {
				return res, fmt.Errorf("peer %d: connect to the node: %w", i, err)
			}
		}
		joined := func() int {
			return p.CountMatching(proctest.Match("peer-joined", "room", roomName))
		}
		waitUntil(ctx, cfg.Timeout, func() bool { return joined() >= cfg.Peers })
		res.PeersConnected = joined()
		if err := sleepCtx(ctx, cfg.Idle); err != nil {
			return res, err
		}
		if res.PeersMem, err = ReadProcMem(p.Cmd.Process.Pid); err != nil {
			return res, err
		}
		res.PeersRSS = res.PeersMem.RSS
	}

	if cfg.DMRoundTrips > 0 {
		d, room, err := binaryPair(ctx, cfg, tmp)
		if err != nil {
			return res, fmt.Errorf("two binaries: %w", err)
		}
		res.BinaryDM, res.BinaryRoom = d, room
	}
	return res, nil
}

// binaryPair starts two binaries, the sender bootstrapped from the
// receiver, and times DMs, then room messages, one at a time.
func binaryPair(ctx context.Context, cfg NodeConfig, tmp string) (dm, room Dist, err error) {
	b, err := startProc("receiver", quietCmd(ctx, cfg.Binary, joinArgs(filepath.Join(tmp, "dm-b"))...), cfg.Timeout)
	if err != nil {
		return Dist{}, Dist{}, err
	}
	defer b.Stop(10 * time.Second)
	bReady, _, err := b.Ready(ctx)
	if err != nil {
		return Dist{}, Dist{}, err
	}
	bAddr, err := proctest.AddrOf(bReady, "/ip4/127.0.0.1/tcp/")
	if err != nil {
		return Dist{}, Dist{}, err
	}
	bID := fmt.Sprint(bReady["peer"])
	a, err := startProc("sender", quietCmd(ctx, cfg.Binary, joinArgs(filepath.Join(tmp, "dm-a"), "--bootstrap", bAddr)...), cfg.Timeout)
	if err != nil {
		return Dist{}, Dist{}, err
	}
	defer a.Stop(10 * time.Second)
	if _, _, err := a.Wait(ctx, "peer-joined of the receiver", proctest.Match("peer-joined", "peer", bID)); err != nil {
		return Dist{}, Dist{}, err
	}
	text := strings.Repeat("x", 100)
	var samples []time.Duration
	warmup := 5
	for i := range warmup + cfg.DMRoundTrips {
		from := a.Count()
		t0 := time.Since(a.Started())
		if err := a.SendJSON(map[string]string{"cmd": "dm", "to": bID, "text": text}); err != nil {
			return Dist{}, Dist{}, err
		}
		_, _, at, err := a.WaitFrom(ctx, from, "delivered", func(ev proctest.Event) bool {
			return ev["event"] == "delivered" || ev["event"] == "error"
		})
		if err != nil {
			return Dist{}, Dist{}, err
		}
		if i >= warmup {
			samples = append(samples, at-t0)
		}
	}
	dm = NewDist(samples)

	// Room messages, a to b.
	samples = samples[:0]
	for i := range warmup + cfg.DMRoundTrips/2 {
		msg := fmt.Sprintf("room %d %s", i, text)
		from := b.Count()
		t0 := time.Now()
		if err := a.SendJSON(map[string]string{"cmd": "send", "text": msg}); err != nil {
			return Dist{}, Dist{}, err
		}
		_, _, at, err := b.WaitFrom(ctx, from, "room message", proctest.Match("message", "text", msg))
		if err != nil {
			return Dist{}, Dist{}, err
		}
		if i >= warmup {
			samples = append(samples, b.Started().Add(at).Sub(t0))
		}
	}
	return dm, NewDist(samples), nil
}

// RSS returns the resident set size of process pid (VmRSS), in bytes.
func RSS(pid int) (int64, error) {
	m, err := ReadProcMem(pid)
	return m.RSS, err
}

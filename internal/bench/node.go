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
	Floor        string        // the floor program (FloorPackage), built the same way; "" skips the baseline
	Runs         int           // starts timed (the first creates the identity)
	Idle         time.Duration // wait before reading RSS
	Peers        int           // in-process peers connected for the second RSS figure
	DMRoundTrips int           // DMs between two binaries (0: skip)
	Timeout      time.Duration // bounds each wait
}

// FloorPackage is the floor program: a bare go-libp2p host (TCP, QUIC,
// Noise, yamux, Parley's resource and connection managers) with kad-dht in
// server mode and GossipSub joined to one topic, and nothing of Parley's.
const FloorPackage = "./internal/bench/floor"

// NodeResult is what the binary benchmarks measured.
//
// Ready is the time from just before the process is started to the line of
// its `ready` event on stdout, for `parley join bench --json --data DIR
// --listen /ip4/127.0.0.1/tcp/0 --no-mdns`, over the runs after the first
// (FirstReady, which also creates the identity and the store). Mem is the
// node's memory (see ProgramMem). BinaryDM is the DM round trip between
// two binaries, what a user gets: from writing {"cmd":"dm",...} on the
// sender's stdin to reading its "delivered" event (JSON front end, on-disk
// store, both processes on loopback). BinaryRoom is, between the same two,
// from writing {"cmd":"send",...} on one's stdin to reading the message
// event on the other's stdout.
//
// Floor is the baseline: the same memory figures and room messages for
// the floor program (FloorPackage), measured in the same run and the same
// way, one program at a time. It is the floor that go-libp2p, GossipSub and
// kad-dht set, under Parley's store, chat layer, envelopes and front end.
// BinarySize and Floor.BinarySize are the sizes of the two executables.
type NodeResult struct {
	NodeConfig
	FirstReady time.Duration
	Ready      Dist
	ProgramMem
	BinarySize int64
	BinaryDM   Dist
	BinaryRoom Dist // room message between the same two binaries
	Floor      *FloorResult
}

// ProgramMem is one program's memory. IdleRSS is VmRSS from
// /proc/PID/status after Idle with no peer; PeersRSS the same once Peers
// in-process hosts (light hosts running GossipSub with chat's options,
// subscribed to the room) are connected and the program has reported each
// as peer-joined, after Idle again.
type ProgramMem struct {
	IdleRSS        int64
	PeersRSS       int64
	IdleMem        ProcMem // IdleRSS split: anonymous, file-backed, the executable's own
	PeersMem       ProcMem
	PeersConnected int
}

// FloorResult is the floor program's side of NodeResult.
type FloorResult struct {
	ProgramMem
	BinarySize int64
	Room       Dist // send → message event between two floor processes
}

// program is one of the executables the node benchmarks drive, and how to
// start it as a loopback-only member of room roomName.
type program struct {
	name string
	bin  string
	args func(data string, extra ...string) []string
	dm   bool // speaks the dm command
}

func parleyProgram(bin string) program { return program{"parley", bin, joinArgs, true} }

func floorProgram(bin string) program {
	return program{"floor", bin, func(_ string, extra ...string) []string {
		return append([]string{"--listen", "/ip4/127.0.0.1/tcp/0", "--topic", roomproto.Topic(roomName), "--room", roomName}, extra...)
	}, false}
}

// start starts pr as name, keeping its data (if it keeps any) in data.
func (pr program) start(ctx context.Context, name, data string, timeout time.Duration, extra ...string) (*proctest.Proc, error) {
	return startProc(name, quietCmd(ctx, pr.bin, pr.args(data, extra...)...), timeout)
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
// round trip between two binaries; then, with cfg.Floor, RSS and the room
// message for the floor program. Each program runs alone: its node and
// peers are gone before the next measurement starts.
func RunNode(ctx context.Context, cfg NodeConfig) (NodeResult, error) {
	res := NodeResult{NodeConfig: cfg}
	tmp, err := os.MkdirTemp("", "parley-bench-node")
	if err != nil {
		return res, err
	}
	defer os.RemoveAll(tmp)
	data := filepath.Join(tmp, "a")
	parley := parleyProgram(cfg.Binary)
	if res.BinarySize, err = fileSize(cfg.Binary); err != nil {
		return res, err
	}

	var ready []time.Duration
	var p *proctest.Proc
	var readyEv proctest.Event
	for run := range max(cfg.Runs, 1) {
		p, err = parley.start(ctx, "parley", data, cfg.Timeout)
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
	res.ProgramMem, err = programMem(ctx, cfg, p, readyEv)
	p.Stop(10 * time.Second)
	if err != nil {
		return res, err
	}

	if cfg.DMRoundTrips > 0 {
		d, room, err := binaryPair(ctx, cfg, parley, tmp)
		if err != nil {
			return res, fmt.Errorf("two binaries: %w", err)
		}
		res.BinaryDM, res.BinaryRoom = d, room
	}

	if cfg.Floor != "" {
		f, err := runFloor(ctx, cfg, tmp)
		if err != nil {
			return res, fmt.Errorf("floor: %w", err)
		}
		res.Floor = &f
	}
	return res, nil
}

// runFloor measures the floor program's memory and room messages as
// RunNode does parley's.
func runFloor(ctx context.Context, cfg NodeConfig, tmp string) (FloorResult, error) {
	var res FloorResult
	var err error
	if res.BinarySize, err = fileSize(cfg.Floor); err != nil {
		return res, err
	}
	floor := floorProgram(cfg.Floor)
	p, err := floor.start(ctx, "floor", "", cfg.Timeout)
	if err != nil {
		return res, err
	}
	readyEv, _, err := p.Ready(ctx)
	if err == nil {
		res.ProgramMem, err = programMem(ctx, cfg, p, readyEv)
	}
	p.Stop(10 * time.Second)
	if err != nil {
		return res, err
	}
	if cfg.DMRoundTrips > 0 {
		if _, res.Room, err = binaryPair(ctx, cfg, floor, tmp); err != nil {
			return res, fmt.Errorf("two processes: %w", err)
		}
	}
	return res, nil
}

func fileSize(path string) (int64, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return 0, fmt.Errorf("size of the binary: %w", err)
	}
	return fi.Size(), nil
}

// programMem reads p's memory after cfg.Idle, then again once cfg.Peers
// in-process hosts subscribed to the room are connected to it (see
// ProgramMem). The hosts are closed when it returns.
func programMem(ctx context.Context, cfg NodeConfig, p *proctest.Proc, readyEv proctest.Event) (ProgramMem, error) {
	var res ProgramMem
	var err error
	if err := sleepCtx(ctx, cfg.Idle); err != nil {
		return res, err
	}
	if res.IdleMem, err = ReadProcMem(p.Cmd.Process.Pid); err != nil {
		return res, err
	}
	res.IdleRSS = res.IdleMem.RSS
	if cfg.Peers <= 0 {
		return res, nil
	}

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
			return res, fmt.Errorf("peer %d: connect to the %s: %w", i, p.Name, err)
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
	return res, nil
}

// binaryPair starts two processes of pr, the sender bootstrapped from the
// receiver, and times DMs (if pr speaks them), then room messages, one at
// a time.
func binaryPair(ctx context.Context, cfg NodeConfig, pr program, tmp string) (dm, room Dist, err error) {
	b, err := pr.start(ctx, "receiver", filepath.Join(tmp, pr.name+"-b"), cfg.Timeout)
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
	a, err := pr.start(ctx, "sender", filepath.Join(tmp, pr.name+"-a"), cfg.Timeout, "--bootstrap", bAddr)
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
	if pr.dm {
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
	}

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

// Command floor is the baseline of the node benchmarks (internal/bench,
// node section): a bare go-libp2p host with what a Parley node links and
// runs underneath its own code — TCP and QUIC, Noise, yamux, the resource
// and connection managers with Parley's limits, kad-dht in server mode and
// GossipSub (go-libp2p-pubsub's defaults, StrictSign, with chat's flood
// publishing) joined to one topic —
// and nothing of Parley's: no store, no chat layer, no envelope, no
// signing beyond GossipSub's own, no NAT port mapping, no mDNS, no relay
// client or service, no hole punching, no AutoNAT. Its memory and its
// message latency are the floor that Parley's dependencies set.
//
// It speaks the subset of `parley join --json` that the benchmarks drive,
// so the same proctest helpers run both: it prints
// {"event":"ready","peer":ID,"addrs":[...]} once listening, reads
// {"cmd":"send","text":...} lines on stdin and publishes each text, prints
// {"event":"message","room":R,"from":ID,"text":...} for each message from
// another peer and {"event":"peer-joined","room":R,"peer":ID} when a peer
// joins the topic. It exits on stdin EOF, SIGINT or SIGTERM.
//
//	floor --listen /ip4/127.0.0.1/tcp/0 --topic parley/room/1/bench --room bench [--bootstrap ADDR]
//
// It lives under internal so that nothing imports it.
package main

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"sync"
	"syscall"
	"time"

	dht "github.com/libp2p/go-libp2p-kad-dht"
	pubsub "github.com/libp2p/go-libp2p-pubsub"
	p2pconfig "github.com/libp2p/go-libp2p/config"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/routing"
	tpt "github.com/libp2p/go-libp2p/core/transport"
	"github.com/libp2p/go-libp2p/p2p/host/peerstore/pstoremem"
	rcmgr "github.com/libp2p/go-libp2p/p2p/host/resource-manager"
	yamux "github.com/libp2p/go-libp2p/p2p/muxer/yamux"
	"github.com/libp2p/go-libp2p/p2p/net/connmgr"
	"github.com/libp2p/go-libp2p/p2p/net/swarm"
	tptu "github.com/libp2p/go-libp2p/p2p/net/upgrader"
	"github.com/libp2p/go-libp2p/p2p/security/noise"
	libp2pquic "github.com/libp2p/go-libp2p/p2p/transport/quic"
	"github.com/libp2p/go-libp2p/p2p/transport/tcp"
	ma "github.com/multiformats/go-multiaddr"
	"go.uber.org/fx"
)

// Parley's limits (node/options.go defaults, node.connGrace): the resource
// manager's caps size its bookkeeping, the connection manager's watermarks
// decide what is trimmed.
const (
	maxConns  = 512
	connLow   = 96
	connHigh  = 192
	connGrace = 10 * time.Second
	dialLimit = 15 * time.Second
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdin, os.Stdout)
	stop()
	if err != nil {
		slog.Error("floor", "err", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, stdin io.Reader, stdout io.Writer) error {
	fs := flag.NewFlagSet("floor", flag.ContinueOnError)
	listen := fs.String("listen", "/ip4/127.0.0.1/tcp/0", "listen multiaddr")
	topicName := fs.String("topic", "parley/room/1/bench", "GossipSub topic to join")
	room := fs.String("room", "bench", "room name printed in events (the topic's label)")
	bootstrap := fs.String("bootstrap", "", "multiaddr (with /p2p/ID) of a peer to connect to")
	if err := fs.Parse(args); err != nil {
		return err
	}
	laddr, err := ma.NewMultiaddr(*listen)
	if err != nil {
		return fmt.Errorf("--listen: %w", err)
	}
	var boot *peer.AddrInfo
	if *bootstrap != "" {
		if boot, err = peer.AddrInfoFromString(*bootstrap); err != nil {
			return fmt.Errorf("--bootstrap: %w", err)
		}
	}

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	h, d, err := newHost(ctx, laddr)
	if err != nil {
		return err
	}
	defer h.Close()
	defer d.Close()

	// go-libp2p-pubsub's defaults (StrictSign, its queue sizes, no peer
	// scoring), plus flood publishing as chat sets it: by default a
	// message published before the next heartbeat grafts a new member
	// into the mesh is sent to nobody, and the benchmark's first messages
	// would be lost. Between two processes both send straight to the peer.
	ps, err := pubsub.NewGossipSub(ctx, h, pubsub.WithFloodPublish(true))
	if err != nil {
		return fmt.Errorf("gossipsub: %w", err)
	}
	topic, err := ps.Join(*topicName)
	if err != nil {
		return fmt.Errorf("join %s: %w", *topicName, err)
	}
	defer topic.Close()
	sub, err := topic.Subscribe()
	if err != nil {
		return fmt.Errorf("subscribe %s: %w", *topicName, err)
	}
	defer sub.Cancel()
	peers, err := topic.EventHandler()
	if err != nil {
		return fmt.Errorf("topic events: %w", err)
	}
	defer peers.Cancel()

	out := &emitter{w: bufio.NewWriter(stdout)}
	var wg sync.WaitGroup
	defer wg.Wait() // after cancel (deferred later, runs first)
	defer cancel()
	wg.Add(2)
	go func() {
		defer wg.Done()
		for {
			m, err := sub.Next(ctx)
			if err != nil {
				return
			}
			if m.ReceivedFrom == h.ID() {
				continue
			}
			out.emit(map[string]any{"event": "message", "room": *room, "from": m.GetFrom().String(), "text": string(m.Data)})
		}
	}()
	go func() {
		defer wg.Done()
		for {
			ev, err := peers.NextPeerEvent(ctx)
			if err != nil {
				return
			}
			if ev.Type == pubsub.PeerJoin {
				out.emit(map[string]any{"event": "peer-joined", "room": *room, "peer": ev.Peer.String()})
			}
		}
	}()

	addrs, err := peer.AddrInfoToP2pAddrs(&peer.AddrInfo{ID: h.ID(), Addrs: h.Addrs()})
	if err != nil {
		return fmt.Errorf("own addresses: %w", err)
	}
	strs := make([]string, len(addrs))
	for i, a := range addrs {
		strs[i] = a.String()
	}
	out.emit(map[string]any{"event": "ready", "peer": h.ID().String(), "addrs": strs})

	if boot != nil {
		// After listening, as node.keepConnected does; the DHT adds the
		// peer to its routing table once connected.
		h.ConnManager().Protect(boot.ID, "bootstrap")
		cctx, ccancel := context.WithTimeout(ctx, dialLimit)
		err := h.Connect(cctx, *boot)
		ccancel()
		if err != nil {
			return fmt.Errorf("connect to the bootstrap peer: %w", err)
		}
	}

	// stdin: one JSON command a line, until EOF; a signal ends the wait.
	lines := make(chan []byte)
	readErr := make(chan error, 1)
	go func() { // ends at EOF, which the caller's Stop or exit provides
		sc := bufio.NewScanner(stdin)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			select {
			case lines <- append([]byte(nil), sc.Bytes()...):
			case <-ctx.Done():
				return
			}
		}
		readErr <- sc.Err()
	}()
	for {
		select {
		case <-ctx.Done():
			return nil
		case err := <-readErr:
			if err != nil {
				return fmt.Errorf("read stdin: %w", err)
			}
			return nil
		case line := <-lines:
			var c struct{ Cmd, Text string }
			if err := json.Unmarshal(line, &c); err != nil || c.Cmd != "send" {
				out.emit(map[string]any{"event": "error", "error": fmt.Sprintf("unknown command %q", line)})
				continue
			}
			if err := topic.Publish(ctx, []byte(c.Text)); err != nil {
				out.emit(map[string]any{"event": "error", "error": err.Error()})
			}
		}
	}
}

// newHost builds the libp2p host from go-libp2p's config package, field by
// field, as node.hostConfig does: libp2p.New would link the WebSocket,
// WebTransport and WebRTC transports that Parley leaves out.
func newHost(ctx context.Context, listen ma.Multiaddr) (host.Host, *dht.IpfsDHT, error) {
	key, _, err := crypto.GenerateEd25519Key(rand.Reader)
	if err != nil {
		return nil, nil, fmt.Errorf("identity: %w", err)
	}
	limits := rcmgr.PartialLimitConfig{
		System: rcmgr.ResourceLimits{
			Conns:         rcmgr.LimitVal(maxConns),
			ConnsInbound:  rcmgr.LimitVal(maxConns / 2),
			ConnsOutbound: rcmgr.LimitVal(maxConns / 2),
			Streams:       rcmgr.LimitVal(maxConns * 16),
		},
	}.Build(rcmgr.DefaultLimits.AutoScale())
	rm, err := rcmgr.NewResourceManager(rcmgr.NewFixedLimiter(limits))
	if err != nil {
		return nil, nil, fmt.Errorf("resource manager: %w", err)
	}
	cm, err := connmgr.NewConnManager(connLow, connHigh, connmgr.WithGracePeriod(connGrace))
	if err != nil {
		rm.Close()
		return nil, nil, fmt.Errorf("connection manager: %w", err)
	}
	ps, err := pstoremem.NewPeerstore()
	if err != nil {
		rm.Close()
		cm.Close()
		return nil, nil, fmt.Errorf("peerstore: %w", err)
	}
	var d *dht.IpfsDHT
	hc := &p2pconfig.Config{
		PeerKey:            key,
		ListenAddrs:        []ma.Multiaddr{listen},
		Transports:         []fx.Option{transport(tcp.NewTCPTransport), transport(libp2pquic.NewTransport)},
		SecurityTransports: []p2pconfig.Security{{ID: noise.ID, Constructor: noise.New}},
		Muxers:             []tptu.StreamMuxer{{ID: yamux.ID, Muxer: yamux.DefaultTransport}},
		Peerstore:          ps,
		ConnManager:        cm,
		ResourceManager:    rm,
		DialTimeout:        dialLimit,
		RelayCustom:        true, // Relay false: no circuit transport
		DisableMetrics:     true,
		Routing: func(h host.Host) (routing.PeerRouting, error) {
			var err error
			// Server mode, Parley's protocol prefix, no bootstrap peers:
			// --bootstrap is dialed once the host listens.
			d, err = dht.New(ctx, h, dht.Mode(dht.ModeServer), dht.ProtocolPrefix("/parley"))
			return d, err
		},
		UDPBlackHoleSuccessCounter:        &swarm.BlackHoleSuccessCounter{N: 100, MinSuccesses: 5, Name: "UDP"},
		CustomUDPBlackHoleSuccessCounter:  true,
		IPv6BlackHoleSuccessCounter:       &swarm.BlackHoleSuccessCounter{N: 100, MinSuccesses: 5, Name: "IPv6"},
		CustomIPv6BlackHoleSuccessCounter: true,
	}
	h, err := hc.NewNode()
	if err != nil {
		return nil, nil, fmt.Errorf("libp2p host: %w", err)
	}
	if d == nil {
		h.Close()
		return nil, nil, errors.New("libp2p host: DHT was not constructed")
	}
	return h, d, nil
}

// transport hands a transport constructor to go-libp2p's dependency
// injection (node.transport).
func transport(constructor any) fx.Option {
	return fx.Provide(fx.Annotate(constructor,
		fx.As(new(tpt.Transport)),
		fx.ResultTags(`group:"transport"`)))
}

// emitter writes one JSON object a line, from any goroutine.
type emitter struct {
	mu sync.Mutex
	w  *bufio.Writer
}

func (e *emitter) emit(v map[string]any) {
	b, err := json.Marshal(v)
	if err != nil {
		return
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	e.w.Write(append(b, '\n'))
	e.w.Flush()
}

package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/network"
	relayproto "github.com/libp2p/go-libp2p/p2p/protocol/circuitv2/proto"
	ma "github.com/multiformats/go-multiaddr"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/parley-chat/parley/bridge"
	"github.com/parley-chat/parley/chat"
	"github.com/parley-chat/parley/internal/app"
	"github.com/parley-chat/parley/internal/datadir"
	"github.com/parley-chat/parley/internal/metrics"
	"github.com/parley-chat/parley/internal/ui"
	"github.com/parley-chat/parley/node"
)

// relayListen are the default listen addresses of `parley relay`.
var relayListen = []string{
	"/ip4/0.0.0.0/tcp/4001",
	"/ip4/0.0.0.0/udp/4001/quic-v1",
	"/ip6/::/tcp/4001",
	"/ip6/::/udp/4001/quic-v1",
}

func runRelay(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("relay", "relay [flags]", stderr)
	var c common
	c.register(fs, filepath.Join(datadir.Default(), "relay"))
	var announce listFlag
	fs.Var(&announce, "announce", "multiaddr to advertise instead of the observed ones, e.g. behind a port forward (repeatable)")
	res := bridge.DefaultResources()
	fs.IntVar(&res.MaxReservations, "max-reservations", res.MaxReservations, "relay slots held at once")
	fs.IntVar(&res.MaxCircuits, "max-circuits", res.MaxCircuits, "relayed connections at once per peer")
	fs.DurationVar(&res.Limit.Duration, "circuit-duration", res.Limit.Duration, "lifetime of one relayed connection")
	fs.Int64Var(&res.Limit.Data, "circuit-bytes", res.Limit.Data, "bytes one relayed connection may carry in each direction")
	fs.DurationVar(&res.ReservationTTL, "reservation-ttl", res.ReservationTTL, "how long a relay slot lasts before it must be renewed")
	var rooms listFlag
	fs.Var(&rooms, "rooms", "carry only these rooms (comma-separated, repeatable; default: every room its peers use)")
	maxRooms := fs.Int("max-rooms", bridge.DefaultMaxRooms, "rooms carried at once")
	maxRoomsPerPeer := fs.Int("max-rooms-per-peer", bridge.DefaultMaxRoomsPerPeer, "rooms one peer can make the relay carry")
	rate := fs.Float64("rate", bridge.DefaultRate, "room messages per second one author may send through the relay, on average")
	burst := fs.Int("burst", bridge.DefaultBurst, "room messages one author may send through the relay at once")
	maxMsg := fs.Int("max-message-bytes", chat.MaxEnvelopeBytes, "largest room message carried, in bytes")
	keep := bridge.DefaultRetention
	fs.IntVar(&keep.MaxMessages, "history-messages", keep.MaxMessages, "messages kept per carried room for members catching up (0: no limit)")
	fs.DurationVar(&keep.MaxAge, "history-age", keep.MaxAge, "how long carried messages are kept (0: no limit)")
	var mf metricsFlags
	mf.register(fs)
	// The relay takes no commands: it prints events and runs until stopped.
	fs.Lookup("json").Usage = "one JSON event per line on stdout (stdin is not read; stop the relay with a signal)"
	if err := parseNoArgs(fs, args); err != nil {
		return err
	}
	if err := mf.check(); err != nil {
		return err
	}
	if err := checkRelayLimits(fs, res.MaxReservations, res.MaxCircuits, res.Limit.Duration, res.Limit.Data); err != nil {
		return err
	}
	if *maxRooms <= 0 || *maxRoomsPerPeer <= 0 || !(*rate > 0) || *burst <= 0 || *maxMsg <= 0 { // !(>): NaN too
		fs.Usage()
		return fmt.Errorf("%w: --max-rooms, --max-rooms-per-peer, --rate, --burst and --max-message-bytes must be positive", errUsage)
	}
	if *maxMsg > chat.MaxEnvelopeBytes {
		fs.Usage()
		return fmt.Errorf("%w: --max-message-bytes must be at most %d, the largest room message any node accepts", errUsage, chat.MaxEnvelopeBytes)
	}
	if keep.MaxMessages < 0 || keep.MaxAge < 0 {
		fs.Usage()
		return fmt.Errorf("%w: --history-messages and --history-age must not be negative", errUsage)
	}
	bopts := []bridge.Option{
		bridge.WithResources(res),
		bridge.WithMaxRooms(*maxRooms),
		bridge.WithMaxRoomsPerPeer(*maxRoomsPerPeer),
		bridge.WithRateLimit(*rate, *burst),
		bridge.WithMaxMessageBytes(*maxMsg),
		bridge.WithRetention(keep),
	}
	for _, list := range rooms {
		for _, r := range strings.Split(list, ",") {
			if r = app.RoomName(strings.TrimSpace(r)); r == "" {
				continue
			}
			if err := chat.ValidateRoomName(r); err != nil {
				return fmt.Errorf("%w: --rooms: %v", errUsage, err)
			}
			bopts = append(bopts, bridge.WithRooms(r))
		}
	}
	if len(c.listen) == 0 {
		c.listen = relayListen
	}
	opts, err := c.nodeOptions()
	if err != nil {
		return err
	}
	for _, s := range announce {
		a, err := ma.NewMultiaddr(s)
		if err != nil {
			return fmt.Errorf("%w: --announce %q: %v", errUsage, s, err)
		}
		opts = append(opts, node.WithAnnounceAddrs(a))
	}
	run, err := c.start(stderr, false)
	if err != nil {
		return err
	}
	defer run.close()
	log, identity, st := run.log, run.identity, run.store
	bopts = append(bopts, bridge.WithStore(st))
	mr, stopMetrics, err := mf.run(ctx, log)
	if err != nil {
		return err
	}
	defer stopMetrics()
	// The relay's own counters are kept without --metrics too: the
	// minute's summary line reads them.
	var reg prometheus.Registerer = prometheus.NewRegistry()
	if mr != nil {
		reg = mr.reg
	}
	rm := metrics.NewRelay(reg)
	opts = append(opts, mr.nodeOptions()...)
	bopts = append(bopts, bridge.WithPubSubTracer(rm.Tracer()))

	var outMu sync.Mutex // observer calls come from several goroutines
	var render ui.Renderer = ui.Text{}
	if c.json {
		render = ui.JSON{}
	}
	bopts = append(bopts,
		bridge.WithLogger(log),
		bridge.WithNodeOptions(append(opts, identity, node.WithLogger(log))...),
		bridge.WithObserver(func(ev chat.Event) {
			outMu.Lock()
			defer outMu.Unlock()
			fmt.Fprintln(stdout, render.Event(ev))
		}))
	b, err := bridge.New(bopts...)
	if err != nil {
		return err
	}
	defer b.Close()
	rm.WatchBridge(reg, b)
	ready := ui.Ready{Peer: b.Node().ID(), Addrs: multiaddrStrings(b.Node()), Metrics: mr.url()}
	outMu.Lock()
	if c.json {
		fmt.Fprintln(stdout, ui.JSON{}.Ready(ready))
	} else {
		fmt.Fprintf(stdout, "parley relay %s\nlisten addresses (give one to peers as --bootstrap):\n", b.Node().ID())
		for _, a := range ready.Addrs {
			fmt.Fprintln(stdout, "  "+a)
		}
		if ready.Metrics != "" {
			fmt.Fprintln(stdout, "metrics: "+ready.Metrics)
		}
	}
	outMu.Unlock()
	summarize(ctx, log, b, rm, time.Minute)
	log.Info("relay stopping")
	return nil
}

func checkRelayLimits(fs *flag.FlagSet, reservations, circuits int, d time.Duration, data int64) error {
	if reservations <= 0 || circuits <= 0 || d <= 0 || data <= 0 {
		fs.Usage()
		return fmt.Errorf("%w: relay limits must be positive", errUsage)
	}
	return nil
}

// summarize logs one line of what the relay did every interval, until
// ctx ends.
func summarize(ctx context.Context, log *slog.Logger, b *bridge.Bridge, rm *metrics.Relay, every time.Duration) {
	tick := time.NewTicker(every)
	defer tick.Stop()
	var lastFwd, lastLimited uint64
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		fwd, limited := rm.Totals()
		rooms := b.Rooms()
		members := 0
		for _, r := range rooms {
			members += len(b.Members(r))
		}
		h := b.Node().Host()
		log.Info("relay summary",
			"peers", len(h.Network().Peers()),
			"relayed_conns", relayedConns(h.Network()),
			"rooms", len(rooms), "members", members,
			"forwarded", fwd-lastFwd, "rate_limited", limited-lastLimited,
			"per", every)
		lastFwd, lastLimited = fwd, limited
	}
}

// relayedConns counts the circuits the relay carries now: its open hop
// streams (each relayed connection is one, from the peer that dialed it).
func relayedConns(net network.Network) int {
	n := 0
	for _, c := range net.Conns() {
		for _, s := range c.GetStreams() {
			if s.Protocol() == relayproto.ProtoIDv2Hop {
				n++
			}
		}
	}
	return n
}

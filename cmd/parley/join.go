package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"
	"golang.org/x/term"

	"github.com/parley-chat/parley/chat"
	"github.com/parley-chat/parley/chat/invite"
	"github.com/parley-chat/parley/chat/storage"
	"github.com/parley-chat/parley/internal/app"
	"github.com/parley-chat/parley/internal/datadir"
	"github.com/parley-chat/parley/internal/metrics"
	"github.com/parley-chat/parley/internal/tui"
	"github.com/parley-chat/parley/internal/ui"
	"github.com/parley-chat/parley/node"
)

func runJoin(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	return runChat(ctx, "join", args, stdin, stdout, stderr)
}

func runWeb(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	return runChat(ctx, "web", args, stdin, stdout, stderr)
}

// runChat runs a chat node: `parley join` (a terminal or JSON front end,
// and the web app with --web) or `parley web` (the web app, JSON events
// with --json).
func runChat(ctx context.Context, command string, args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	webMode := command == "web"
	synopsis := "join ROOM [ROOM...] [flags]"
	if webMode {
		synopsis = "web [ROOM...] [flags]"
	}
	fs := newFlagSet(command, synopsis, stderr)
	var c common
	c.register(fs, datadir.Default())
	var wf webFlags
	wf.register(fs, webMode)
	var mf metricsFlags
	mf.register(fs)
	nick := fs.String("nick", "", "your nick (default: peer-<end of your peer ID>)")
	noMDNS := fs.Bool("no-mdns", false, "do not look for peers on the LAN with mDNS")
	upnp := fs.Bool("upnp", false, "ask the router for a port mapping (UPnP/NAT-PMP)")
	history := fs.Int("history", chat.DefaultHistory, "history shown per room: the newest N stored at start, and of what each catch-up brings")
	plain := fs.Bool("plain", false, "in a terminal, chat in lines instead of the full-screen UI")
	rooms, err := parseFlags(fs, args)
	if err != nil {
		return err
	}
	if len(rooms) == 0 && webMode {
		rooms = []string{"lobby"}
	}
	if len(rooms) == 0 {
		fs.Usage()
		return fmt.Errorf("%w: name at least one room or invite link", errUsage)
	}
	if err := wf.check(); err != nil {
		fs.Usage()
		return err
	}
	if err := mf.check(); err != nil {
		return err
	}
	// An invite link names its room and relays: the relays become
	// bootstrap peers (static relays), so the link is the whole setup.
	var links []invite.Link
	for i := 0; i < len(rooms); i++ {
		if !invite.IsLink(rooms[i]) {
			continue
		}
		l, err := invite.Decode(rooms[i])
		if err != nil {
			return fmt.Errorf("%w: %v", errUsage, err)
		}
		links = append(links, l)
		for _, r := range l.Relays {
			if !slices.Contains(c.bootstrap, r) {
				c.bootstrap = append(c.bootstrap, r)
			}
		}
		rooms = slices.Delete(rooms, i, i+1)
		i--
	}
	for i, r := range rooms {
		rooms[i] = app.RoomName(r) // "#lobby" as front ends show it
		if err := chat.ValidateRoomName(rooms[i]); err != nil {
			return fmt.Errorf("%w: %v", errUsage, err)
		}
	}
	if *nick != "" {
		if err := chat.ValidateNick(*nick); err != nil {
			return fmt.Errorf("%w: --nick: %v", errUsage, err)
		}
	}
	if *history < 0 {
		return fmt.Errorf("%w: --history must not be negative", errUsage)
	}
	opts, err := c.nodeOptions()
	if err != nil {
		return err
	}

	// In a terminal, the full-screen UI; with --plain, a line editor that
	// keeps the line being typed intact when messages arrive. Either way
	// logs go to a file in the data directory, or, with --log-level, into
	// the UI (or through the line editor) when stderr is that terminal.
	fullScreen := !webMode && !c.json && !*plain && isTerminal(stdin) && isTerminal(stdout)
	var logs *tui.Logs
	crashOut := stderr
	if fullScreen && isTerminal(stderr) {
		logs = tui.NewLogs(stderr)
		stderr = logs
	}
	var tty *lineTerminal
	inFile, inOK := stdin.(*os.File)
	outFile, outOK := stdout.(*os.File)
	if !fullScreen && !webMode && !c.json && inOK && outOK && term.IsTerminal(int(inFile.Fd())) && term.IsTerminal(int(outFile.Fd())) {
		old, err := term.MakeRaw(int(inFile.Fd()))
		if err != nil {
			return fmt.Errorf("terminal: %w", err)
		}
		defer func() {
			term.Restore(int(inFile.Fd()), old)
			fmt.Fprintln(outFile) // leave the shell prompt on a line of its own
		}()
		tty = newLineTerminal(inFile, outFile)
		defer followSize(tty, outFile)() // x/term assumes 80 columns
		if f, ok := stderr.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
			stderr = tty
		}
	}
	run, err := c.start(stderr, (tty != nil || fullScreen) && !logLevelGiven(fs))
	if err != nil {
		return err
	}
	defer run.close()
	log, identity, st := run.log, run.identity, run.store
	mr, stopMetrics, err := mf.run(ctx, log)
	if err != nil {
		return err
	}
	defer stopMetrics()
	opts = append(opts, mr.nodeOptions()...)

	// The relay hook may fire before the chat service exists, and must
	// never block the node: it keeps the latest addresses, and a goroutine
	// hands them to the service.
	var reserved latest[[]string]
	// Hole punching outcomes likewise: queued (a few per peer at most),
	// dropped rather than waited for when the queue is full.
	punches := make(chan node.HolePunchResult, 64)
	opts = append(opts, identity, node.WithLogger(log), node.WithMDNS(!*noMDNS), node.WithUPnP(*upnp),
		node.WithRelayHook(func(addrs []ma.Multiaddr) { reserved.set(multiaddrs(addrs)) }),
		node.WithHolePunchHook(func(r node.HolePunchResult) {
			select {
			case punches <- r:
			default:
			}
		}))
	n, err := node.New(opts...)
	if err != nil {
		return err
	}
	defer n.Close()

	var cm *metrics.Chat
	chatStore := storage.Store(st)
	if mr != nil {
		cm = metrics.NewChat(mr.reg, n.ID())
		chatStore = cm.Store(st)
	}
	chatOpts := []chat.Option{chat.WithDiscovery(n), chat.WithLogger(log), chat.WithPathClassifier(n.RouteOf),
		chat.WithStore(chatStore), chat.WithHistory(*history)}
	if cm != nil {
		chatOpts = append(chatOpts, chat.WithHooks(cm.Hooks()))
	}
	if *nick != "" {
		chatOpts = append(chatOpts, chat.WithNick(*nick))
	}
	svc, err := chat.New(n.Host(), chatOpts...)
	if err != nil {
		return err
	}
	if cm != nil {
		if err := cm.Watch(ctx, svc); err != nil {
			return errors.Join(err, svc.Close())
		}
	}
	for _, r := range rooms {
		if err := svc.Join(r); err != nil {
			return errors.Join(err, svc.Close())
		}
	}
	for _, l := range links {
		var err error
		if l.Private() {
			err = svc.JoinPrivate(chat.PrivateRoom{Name: l.Room, Secret: l.Secret, Epoch: l.Epoch, Creator: l.Creator})
		} else {
			err = svc.Join(l.Room)
		}
		if err != nil && !errors.Is(err, chat.ErrAlreadyInRoom) {
			return errors.Join(err, svc.Close())
		}
		rooms = append(rooms, l.Room)
	}
	// Private rooms joined at an earlier run (and not left) come back:
	// their keys are in the store.
	if prs, err := svc.PrivateRooms(); err != nil {
		log.Warn("private rooms", "err", err)
	} else {
		for _, pr := range prs {
			if slices.Contains(rooms, pr.Name) {
				continue
			}
			if err := svc.JoinPrivate(pr); err != nil {
				log.Warn("rejoin private room", "room", pr.Name, "err", err)
				continue
			}
			rooms = append(rooms, pr.Name)
		}
	}

	go func() {
		for {
			select {
			case <-reserved.changed():
				svc.Notify(chat.RelayReservation{Addrs: reserved.get()})
			case r := <-punches:
				svc.Notify(chat.HolePunch{Peer: r.Peer, OK: r.OK, Attempts: r.Attempts, Elapsed: r.Elapsed,
					Family: r.Family, Transport: r.Transport, Err: r.Err})
			case <-ctx.Done():
				return
			}
		}
	}()

	a := app.New(svc, app.WithAddrs(func() []string { return multiaddrStrings(n) }),
		app.WithExport(exporter(c.data, c.identity, st)), app.WithRoutes(routeOf(n)),
		app.WithRelays(func() []string { return slices.Clone(c.bootstrap) }), app.WithConnect(connectTo(n)))
	var frontEnds []func(*app.App) error
	web, err := wf.start(a, c.data, log)
	if err != nil {
		return errors.Join(err, a.Shutdown(context.Background()))
	}
	cfg := ui.Config{
		JSON:     c.json,
		ReadLine: ui.LineReader(stdin),
		Out:      stdout,
		Ready: ui.Ready{
			Peer:    n.ID(),
			Nick:    svc.Nick(),
			Addrs:   multiaddrStrings(n),
			Rooms:   rooms,
			Log:     run.logFile,
			Metrics: mr.url(),
		},
	}
	if web != nil {
		cfg.Ready.Web = web.url
		frontEnds = append(frontEnds, web.serve)
		if c.json || tty != nil {
			fmt.Fprintln(stderr, web.openLine())
		} else {
			fmt.Fprintln(stdout, web.openLine())
		}
		if webMode && !wf.noBrowser {
			openBrowser(web.loginURL(), log)
		}
	}
	switch {
	case webMode && !c.json:
		// The browser is the front end; the terminal only said where.
	case webMode:
		cfg.ReadLine = nil // events out only: the web app is where you type
		frontEnds = append(frontEnds, func(a *app.App) error { return ui.Run(ctx, a, cfg) })
	case fullScreen:
		tcfg := tui.Config{Rooms: rooms, Addrs: multiaddrStrings(n), In: stdin, Out: stdout, Err: crashOut, Logs: logs}
		frontEnds = append(frontEnds, func(a *app.App) error { return tui.Run(ctx, a, tcfg) })
	default:
		if tty != nil {
			cfg.ReadLine = tty.ReadLine
			cfg.Out = tty
			cfg.SetPrompt = func(room string) { tty.SetPrompt("#" + room + "> ") }
		}
		frontEnds = append(frontEnds, func(a *app.App) error { return ui.Run(ctx, a, cfg) })
	}
	return serve(ctx, a, frontEnds...)
}

// isTerminal reports whether f is an *os.File on a terminal.
func isTerminal(f any) bool {
	file, ok := f.(*os.File)
	return ok && term.IsTerminal(int(file.Fd()))
}

// serve lends a to its front ends until one of them quits or ctx ends,
// then shuts the node's chat down (pending DMs get their chance first) and
// waits for every front end to finish rendering.
func serve(ctx context.Context, a *app.App, frontEnds ...func(*app.App) error) error {
	errs := make(chan error, len(frontEnds))
	for _, fe := range frontEnds {
		go func() { errs <- fe(a) }()
	}
	select {
	case <-a.Quitting():
	case <-ctx.Done():
	}
	err := a.Shutdown(context.Background())
	for range frontEnds {
		err = errors.Join(err, <-errs)
	}
	return err
}

func multiaddrStrings(n *node.Node) []string { return multiaddrs(n.Addrs()) }

func multiaddrs(addrs []ma.Multiaddr) []string {
	out := make([]string, 0, len(addrs))
	for _, a := range addrs {
		out = append(out, a.String())
	}
	return out
}

func peerIDFromKey(key crypto.PrivKey) (peer.ID, error) {
	return peer.IDFromPrivateKey(key)
}

// latest holds the last value set and signals each change; changes made
// between two reads are seen as one.
type latest[T any] struct {
	mu  sync.Mutex
	v   T
	sig chan struct{} // 1-buffered
}

func (l *latest[T]) signal() chan struct{} {
	if l.sig == nil {
		l.sig = make(chan struct{}, 1)
	}
	return l.sig
}

func (l *latest[T]) set(v T) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.v = v
	select {
	case l.signal() <- struct{}{}:
	default:
	}
}

func (l *latest[T]) get() T {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.v
}

// changed returns a channel that receives after each set.
func (l *latest[T]) changed() <-chan struct{} {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.signal()
}

// routeOf turns the node's view of a peer into the app's (/why), so that
// front ends never see libp2p types.
func routeOf(n *node.Node) func(context.Context, peer.ID) app.Route {
	return func(ctx context.Context, p peer.ID) app.Route {
		e := n.Explain(ctx, p)
		r := app.Route{Peer: p, Path: e.Path, Relay: e.Relay, Agent: e.Agent, RTT: e.RTT, DCUtR: e.DCUtR}
		now := time.Now()
		for _, c := range e.Conns {
			r.Conns = append(r.Conns, app.RouteConn{Remote: c.Remote.String(), Direction: c.Direction, Relayed: c.Relayed, Age: now.Sub(c.Opened)})
		}
		if e.Punched {
			o := e.LastPunch
			r.LastPunch = &app.PunchAttempt{At: o.At, Kind: o.Kind, Success: o.Success, Attempts: o.Attempts, Elapsed: o.Elapsed, Err: o.Err, Pending: o.Pending}
		}
		return r
	}
}

// connectTo connects n to the relays of an invite link (multiaddrs with
// /p2p/ID), all at once; it fails only when none answers.
func connectTo(n *node.Node) func(ctx context.Context, addrs []string) error {
	return func(ctx context.Context, addrs []string) error {
		ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		errs := make(chan error, len(addrs))
		for _, a := range addrs {
			go func() {
				info, err := node.ParseBootstrap(a)
				if err == nil {
					err = n.Host().Connect(ctx, info)
				}
				errs <- err
			}()
		}
		var all []error
		for range addrs {
			err := <-errs
			if err == nil {
				return nil
			}
			all = append(all, err)
		}
		return errors.Join(all...)
	}
}

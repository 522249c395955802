package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"time"

	"github.com/libp2p/go-libp2p/core/crypto"

	"github.com/parley-chat/parley/internal/datadir"
	"github.com/parley-chat/parley/internal/doctor"
	"github.com/parley-chat/parley/node"
)

// runDoctor starts a temporary node (a fresh identity, no store: the
// user's own node may be running) and reports what works and what to do.
func runDoctor(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("doctor", "doctor [--bootstrap MULTIADDR]... [flags]", stderr)
	var c common
	fs.StringVar(&c.data, "data", datadir.Default(), "data directory: only its "+ConfigFile+" is read (bootstrap peers, listen addresses)")
	fs.Var(&c.listen, "listen", "multiaddr to listen on (repeatable; default: TCP and QUIC on every interface, random port)")
	fs.Var(&c.bootstrap, "bootstrap", "relay or peer to check, as given to join (repeatable)")
	fs.BoolVar(&c.json, "json", false, "print the report as one JSON object")
	fs.StringVar(&c.logLevel, "log-level", "error", "log level on stderr: debug, info, warn or error")
	wait := fs.Duration("wait", 15*time.Second, "give up on what has not answered after this long")
	noMDNS := fs.Bool("no-mdns", false, "do not look for peers on the LAN with mDNS")
	if err := parseNoArgs(fs, args); err != nil {
		return err
	}
	if *wait <= 0 {
		return fmt.Errorf("%w: --wait must be positive", errUsage)
	}
	log, err := c.logger(stderr)
	if err != nil {
		return err
	}
	opts, err := c.nodeOptions()
	if err != nil {
		return err
	}
	key, _, err := crypto.GenerateEd25519Key(nil)
	if err != nil {
		return fmt.Errorf("doctor: identity: %w", err)
	}
	var cfg doctor.Config
	cfg.Wait = *wait
	for _, s := range c.bootstrap {
		info, err := node.ParseBootstrap(s)
		if err != nil {
			return fmt.Errorf("%w: --bootstrap %q: %v", errUsage, s, err)
		}
		cfg.Bootstrap = append(cfg.Bootstrap, info)
	}
	if !c.json {
		fmt.Fprintf(stdout, "checking (at most %v)…\n", *wait)
	}
	n, err := node.New(append(opts, node.WithIdentity(key), node.WithLogger(log), node.WithMDNS(!*noMDNS))...)
	if err != nil {
		return err
	}
	defer n.Close()
	r := doctor.Run(ctx, n, cfg)
	if c.json {
		b, err := json.Marshal(r)
		if err != nil {
			return err
		}
		fmt.Fprintln(stdout, string(b))
		return nil
	}
	fmt.Fprint(stdout, r.Text())
	return nil
}

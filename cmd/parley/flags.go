package main

import (
	"errors"
	"flag"
	"fmt"
	"github.com/libp2p/go-libp2p/core/crypto"
	"io"
	"log/slog"
	"strings"

	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"

	"github.com/parley-chat/parley/internal/datadir"
	"github.com/parley-chat/parley/internal/store"
	"github.com/parley-chat/parley/node"
)

// errUsage marks a bad command line: usage goes to stderr, exit status 2.
var errUsage = errors.New("usage")

// listFlag collects a repeatable flag.
type listFlag []string

func (l *listFlag) String() string     { return strings.Join(*l, ",") }
func (l *listFlag) Set(s string) error { *l = append(*l, s); return nil }

// common holds the flags every subcommand shares.
type common struct {
	data      string
	identity  string
	listen    listFlag
	bootstrap listFlag
	json      bool
	logLevel  string
}

func (c *common) register(fs *flag.FlagSet, dataDefault string) {
	fs.StringVar(&c.data, "data", dataDefault, "directory for the identity and state")
	fs.StringVar(&c.identity, "identity", "", "read the identity key from FILE instead of <data>/identity.key (it is not created)")
	fs.Var(&c.listen, "listen", "multiaddr to listen on (repeatable)")
	fs.Var(&c.bootstrap, "bootstrap", "multiaddr with /p2p/<id> of a peer to connect to at start, keep connected and use as a relay (repeatable; addresses of one peer are merged)")
	fs.BoolVar(&c.json, "json", false, "one JSON event per line on stdout, commands on stdin")
	fs.StringVar(&c.logLevel, "log-level", "warn", "log level on stderr: debug, info, warn or error (a terminal chat without it logs at info to "+LogFile+" in --data)")
}

// logger builds the stderr logger named by --log-level.
func (c *common) logger(w io.Writer) (*slog.Logger, error) {
	var lvl slog.Level
	if err := lvl.UnmarshalText([]byte(c.logLevel)); err != nil {
		return nil, fmt.Errorf("%w: --log-level %q: want debug, info, warn or error", errUsage, c.logLevel)
	}
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: lvl})), nil
}

// nodeOptions turns the shared flags into node options.
func (c *common) nodeOptions() ([]node.Option, error) {
	var opts []node.Option
	for _, s := range c.listen {
		a, err := ma.NewMultiaddr(s)
		if err != nil {
			return nil, fmt.Errorf("%w: --listen %q: %v", errUsage, s, err)
		}
		opts = append(opts, node.WithListenAddrs(a))
	}
	var peers []peer.AddrInfo
	for _, s := range c.bootstrap {
		info, err := node.ParseBootstrap(s)
		if err != nil {
			return nil, fmt.Errorf("%w: --bootstrap %q: want a multiaddr ending in /p2p/<peer id>: %v", errUsage, s, err)
		}
		peers = append(peers, info)
	}
	if len(peers) > 0 {
		opts = append(opts, node.WithBootstrap(peers...))
	}
	return opts, nil
}

// started is what every long-running command opens first.
type started struct {
	log      *slog.Logger
	logFile  string // where the log goes, when not to stderr
	identity node.Option
	store    *store.Store
	close    func()
}

// start builds the logger, locks the data directory, loads (or creates)
// the identity and opens the store; close releases them. With toFile
// (a terminal chat without --log-level), the log goes to LogFile in the
// data directory at level info, the libraries' logs too.
func (c *common) start(stderr io.Writer, toFile bool) (*started, error) {
	log, err := c.logger(stderr)
	if err != nil {
		return nil, err
	}
	identity, unlock, err := c.openData()
	if err != nil {
		return nil, err
	}
	var logFile string
	var closeLog func() error = func() error { return nil }
	if toFile {
		f, path, err := openLogFile(c.data)
		if err != nil {
			unlock()
			return nil, err
		}
		h := slog.NewTextHandler(f, &slog.HandlerOptions{Level: slog.LevelInfo})
		log, logFile, closeLog = slog.New(h), path, f.Close
		libraryLogsTo(f, h, path)
	}
	st, err := store.Open(c.data)
	if err != nil {
		closeLog()
		unlock()
		return nil, err
	}
	return &started{log: log, logFile: logFile, identity: identity, store: st, close: func() { st.Close(); closeLog(); unlock() }}, nil
}

// openData locks the data directory and loads (or creates) the identity.
func (c *common) openData() (node.Option, func(), error) {
	lock, err := datadir.Lock(c.data)
	if err != nil {
		return nil, nil, err
	}
	var key crypto.PrivKey
	if c.identity != "" {
		key, err = node.LoadIdentityFile(c.identity)
	} else {
		key, err = node.LoadOrCreateIdentity(c.data)
	}
	if err != nil {
		lock.Unlock()
		return nil, nil, err
	}
	return node.WithIdentity(key), func() { lock.Unlock() }, nil
}

// parseInterspersed parses flags that may come before, between or after
// positional arguments (Go's flag package stops at the first positional).
// Everything after "--" is positional.
func parseInterspersed(fs *flag.FlagSet, args []string) ([]string, error) {
	var positional []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		rest := fs.Args()
		if len(rest) == 0 {
			return positional, nil
		}
		if consumed := len(args) - len(rest); consumed > 0 && args[consumed-1] == "--" {
			return append(positional, rest...), nil
		}
		positional = append(positional, rest[0])
		args = rest[1:]
	}
}

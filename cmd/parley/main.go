// Command parley is a decentralized messenger on libp2p.
//
//	parley join ROOM [ROOM...]   chat in one or more rooms
//	parley web [ROOM...]         chat in a browser: the node serves its web app
//	parley relay                 run a public relay/bridge node
//	parley dispatch              give every web visitor their own peer in a container
//	parley id                    print this node's peer ID
//	parley version               print the version
//
// This file only dispatches; the work is in node, chat, bridge and
// internal/ui.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime"
	"runtime/debug"
	"strings"
	"syscall"

	"github.com/parley-chat/parley/internal/datadir"
	"github.com/parley-chat/parley/node"
)

// version and commit are set at build time with
// -ldflags "-X main.version=… -X main.commit=…" (docker/release.sh);
// without them, the module version and VCS revision Go recorded are used.
var (
	version = ""
	commit  = ""
)

const usage = `usage: parley COMMAND [flags]

commands:
  join ROOM [ROOM...]   chat in one or more rooms (first one is current)
  web [ROOM...]         chat in your browser: the node serves its web app (default room lobby)
  relay                 run a relay/bridge node for peers behind NATs
  dispatch              a web page that gives every visitor their own peer in a container
  id                    print this node's peer ID
  doctor                check how this machine reaches others, and say what to do
  config [COMMAND]      print a command's effective configuration and where each value came from
  version               print the version

Run 'parley COMMAND -h' for the flags of a command. Every flag can also be set
as PARLEY_<FLAG> in the environment (--log-level: PARLEY_LOG_LEVEL) or in
<data>/parley.toml (log-level = "info"); a flag beats the environment, which
beats the file.
`

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	var err error
	switch args[0] {
	case "join":
		err = runJoin(ctx, args[1:], stdin, stdout, stderr)
	case "web":
		err = runWeb(ctx, args[1:], stdin, stdout, stderr)
	case "relay":
		err = runRelay(ctx, args[1:], stdout, stderr)
	case "dispatch":
		err = runDispatch(ctx, args[1:], stdout, stderr)
	case "id":
		err = runID(args[1:], stdout, stderr)
	case "config":
		err = runConfig(args[1:], stdout, stderr)
	case "doctor":
		err = runDoctor(ctx, args[1:], stdout, stderr)
	case "version", "--version", "-version":
		fmt.Fprintf(stdout, "parley %s (commit %s, %s, %s/%s)\n", versionString(), commitString(), runtime.Version(), runtime.GOOS, runtime.GOARCH)
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
	default:
		fmt.Fprintf(stderr, "parley: unknown command %q\n\n%s", args[0], usage)
		return 2
	}
	switch {
	case err == nil:
		return 0
	case errors.Is(err, flag.ErrHelp), errors.Is(err, errCollected):
		return 0
	case errors.Is(err, errUsage):
		fmt.Fprintf(stderr, "parley %s: %v\n", args[0], err)
		return 2
	default:
		fmt.Fprintf(stderr, "parley %s: %v\n", args[0], err)
		return 1
	}
}

// newFlagSet returns a flag set whose errors and usage go to stderr and
// are reported as usage errors.
func newFlagSet(name, synopsis string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet("parley "+name, flag.ContinueOnError)
	// The flag package would print a parse error before the usage and run
	// prints it again after: only run's copy is kept.
	fs.SetOutput(io.Discard)
	fs.Usage = func() {
		fmt.Fprintf(stderr, "usage: parley %s\n\nflags:\n", synopsis)
		fs.SetOutput(stderr)
		fs.PrintDefaults()
		fs.SetOutput(io.Discard)
	}
	return fs
}

// parseFlags parses the command line, then sets the flags it did not
// give from the environment and the configuration file (config.go). It
// wraps flag errors (already printed with usage) as errUsage.
func parseFlags(fs *flag.FlagSet, args []string) ([]string, error) {
	if fs.Lookup("config") == nil {
		fs.String("config", "", "configuration file (default <data>/"+ConfigFile+"); every flag can also be set there or as "+EnvPrefix+"<FLAG>")
	}
	if noteCollected(fs, args) {
		return nil, errCollected
	}
	pos, err := parseInterspersed(fs, args)
	if errors.Is(err, flag.ErrHelp) {
		return nil, err
	}
	if err != nil {
		return nil, fmt.Errorf("%w: %v", errUsage, err)
	}
	if _, err := configure(fs, strings.TrimPrefix(fs.Name(), "parley "), os.LookupEnv); err != nil {
		return nil, err
	}
	return pos, nil
}

// parseNoArgs parses flags of a command that takes no arguments.
func parseNoArgs(fs *flag.FlagSet, args []string) error {
	pos, err := parseFlags(fs, args)
	if err != nil {
		return err
	}
	if len(pos) > 0 {
		fs.Usage()
		return fmt.Errorf("%w: unexpected argument %q", errUsage, pos[0])
	}
	return nil
}

func runID(args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("id", "id [--data DIR]", stderr)
	data := fs.String("data", datadir.Default(), "directory for the identity and state")
	if err := parseNoArgs(fs, args); err != nil {
		return err
	}
	key, err := node.LoadOrCreateIdentity(*data)
	if err != nil {
		return err
	}
	id, err := peerIDFromKey(key)
	if err != nil {
		return err
	}
	fmt.Fprintln(stdout, id)
	return nil
}

// commitString is the commit the binary was built from: stamped, else
// Go's VCS stamp (go build in a checkout), else "unknown" (go install of
// a module version records none).
func commitString() string {
	if commit != "" {
		return commit
	}
	if bi, ok := debug.ReadBuildInfo(); ok {
		rev, dirty := "", false
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				rev = s.Value
			case "vcs.modified":
				dirty = s.Value == "true"
			}
		}
		if rev != "" {
			if dirty {
				rev += "-dirty"
			}
			return rev
		}
	}
	return "unknown"
}

func versionString() string {
	if version != "" {
		return version
	}
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		return bi.Main.Version
	}
	return "dev"
}

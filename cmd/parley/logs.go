package main

import (
	"flag"
	"fmt"
	"io"
	stdlog "log"
	"log/slog"
	"os"
	"path/filepath"

	golog "github.com/ipfs/go-log/v2"
	"github.com/libp2p/go-libp2p/gologshim"
)

// LogFile is where a terminal chat logs when --log-level is not given: in
// the data directory, not between the messages on the screen.
const LogFile = "parley.log"

// maxLogBytes bounds the log file: a bigger one is moved to LogFile.old
// at start.
const maxLogBytes = 10 << 20

// logLevelGiven reports whether --log-level was on the command line.
func logLevelGiven(fs *flag.FlagSet) bool {
	given := false
	fs.Visit(func(f *flag.Flag) { given = given || f.Name == "log-level" })
	return given
}

// openLogFile opens (appending) the log file in dir.
func openLogFile(dir string) (*os.File, string, error) {
	path := filepath.Join(dir, LogFile)
	if fi, err := os.Stat(path); err == nil && fi.Size() > maxLogBytes {
		os.Rename(path, path+".old")
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		return nil, "", fmt.Errorf("open log file: %w", err)
	}
	return f, path, nil
}

// libraryLogsTo sends what the libraries log on their own to h and w:
// go-libp2p (slog), kad-dht and pubsub (go-log), quic-go (the standard
// logger). Otherwise they write to stderr, between the chat lines.
func libraryLogsTo(w io.Writer, h slog.Handler, path string) {
	gologshim.SetDefaultHandler(h)
	stdlog.SetOutput(w)
	cfg := golog.GetConfig()
	cfg.Stderr, cfg.Stdout, cfg.File, cfg.URL = false, false, path, ""
	cfg.Format = golog.PlaintextOutput
	golog.SetupLogging(cfg)
}

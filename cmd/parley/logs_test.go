package main

import (
	"bytes"
	"flag"
	stdlog "log"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// A terminal chat logs to a file in the data directory, the libraries'
// logs too, and nothing reaches the screen; --log-level brings the log
// back to stderr.
func TestTerminalLogsGoToAFile(t *testing.T) {
	defer stdlog.SetOutput(os.Stderr)
	data := t.TempDir()
	c := common{data: data, logLevel: "warn"}
	var screen bytes.Buffer
	run, err := c.start(&screen, true)
	if err != nil {
		t.Fatal(err)
	}
	run.log.Warn("bootstrap peer unreachable; retrying with backoff")
	stdlog.Print("failed to sufficiently increase receive buffer size")
	run.close()
	if screen.Len() > 0 {
		t.Errorf("the screen got log lines: %q", screen.String())
	}
	if want := filepath.Join(data, LogFile); run.logFile != want {
		t.Errorf("log file %q, want %q", run.logFile, want)
	}
	b, err := os.ReadFile(filepath.Join(data, LogFile))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"bootstrap peer unreachable", "receive buffer size"} {
		if !strings.Contains(string(b), want) {
			t.Errorf("log file lacks %q:\n%s", want, b)
		}
	}

	fs := flag.NewFlagSet("join", flag.ContinueOnError)
	c.register(fs, data)
	if logLevelGiven(fs) {
		t.Error("--log-level counted as given")
	}
	if err := fs.Parse([]string{"--log-level", "info"}); err != nil {
		t.Fatal(err)
	}
	if !logLevelGiven(fs) {
		t.Error("--log-level not counted as given")
	}
}

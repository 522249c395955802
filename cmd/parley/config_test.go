package main_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// A flag beats PARLEY_<FLAG>, which beats <data>/parley.toml (or the
// --config file), which beats the default; `parley config` says which
// won, and a bad file is an error naming the file and line.
func TestConfigPrecedence(t *testing.T) {
	tests := []struct {
		name    string
		command []string // after "config"
		env     []string
		file    string   // <data>/parley.toml, if not empty
		want    []string // regexps of output lines ("FILE" is the file's path)
		wantErr string   // with "FILE" too; exit status 2
	}{
		{name: "default", command: []string{"join"},
			want: []string{`^log-level += "warn" +# default$`}},
		{name: "file", command: []string{"join"}, file: "nick = \"alice\"\nlog-level = \"info\"\n",
			want: []string{`^log-level += "info" +# FILE:2$`, `^nick += "alice" +# FILE:1$`}},
		{name: "env beats file", command: []string{"join"}, env: []string{"PARLEY_LOG_LEVEL=error"}, file: "log-level = \"info\"\n",
			want: []string{`^log-level += "error" +# env PARLEY_LOG_LEVEL$`}},
		{name: "flag beats env and file", command: []string{"join", "--log-level", "debug"}, env: []string{"PARLEY_LOG_LEVEL=error"}, file: "log-level = \"info\"\n",
			want: []string{`^log-level += "debug" +# flag$`}},
		{name: "command table beats top level", command: []string{"relay"}, file: "max-rooms = 5\nlog-level = \"info\"\n[relay]\nmax-rooms = 7\n",
			want: []string{`^max-rooms += 7 +# FILE:4$`, `^log-level += "info" +# FILE:2$`}},
		{name: "another command's key is no error", command: []string{"join"}, file: "max-rooms = 5\nno-mdns = true\n",
			want: []string{`^no-mdns += true +# FILE:2$`}},
		{name: "lists", command: []string{"relay"}, env: []string{"PARLEY_BOOTSTRAP=/ip4/11.0.0.1/tcp/1/p2p/A, /ip4/11.0.0.2/tcp/1/p2p/B"},
			file: "announce = [\"/ip4/1.2.3.4/tcp/4001\", \"/ip6/2001:db8::1/tcp/4001\"]\n",
			want: []string{`^bootstrap += \["/ip4/11.0.0.1/tcp/1/p2p/A", "/ip4/11.0.0.2/tcp/1/p2p/B"\] +# env PARLEY_BOOTSTRAP$`,
				`^announce += \["/ip4/1.2.3.4/tcp/4001", "/ip6/2001:db8::1/tcp/4001"\] +# FILE:1$`}},
		{name: "durations and bools", command: []string{"relay"}, file: "circuit-duration = \"2m\"\njson = true\n",
			want: []string{`^circuit-duration += "2m0s" +# FILE:1$`, `^json += true +# FILE:2$`}},
		{name: "unknown key", command: []string{"join"}, file: "nick = \"alice\"\n\nlgo-level = \"info\"\n",
			wantErr: `FILE:3: unknown key "lgo-level"`},
		{name: "unknown key in a table", command: []string{"relay"}, file: "[relay]\nmax-room = 3\n",
			wantErr: `FILE:2: unknown key "max-room" in [relay]`},
		{name: "unknown table", command: []string{"join"}, file: "[jion]\nnick = \"a\"\n",
			wantErr: `FILE:1: unknown table [jion]`},
		{name: "bad value", command: []string{"relay"}, file: "\nmax-rooms = \"many\"\n",
			wantErr: `FILE:2: max-rooms: bad value`},
		{name: "bad type", command: []string{"relay"}, file: "rate = { a = 1 }\n",
			wantErr: `FILE:1: unknown table [rate]`},
		{name: "syntax error", command: []string{"join"}, file: "nick = \"alice\"\nlog-level = \n",
			wantErr: `FILE:2: `},
		{name: "bad environment value", command: []string{"relay"}, env: []string{"PARLEY_MAX_ROOMS=lots"},
			wantErr: `PARLEY_MAX_ROOMS="lots"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			data := t.TempDir()
			file := filepath.Join(data, "parley.toml")
			if tt.file != "" {
				if err := os.WriteFile(file, []byte(tt.file), 0o600); err != nil {
					t.Fatal(err)
				}
			}
			cmd := exec.Command(binary, append(append([]string{"config"}, tt.command...), "--data", data)...)
			cmd.Env = append(cleanEnv(), tt.env...)
			var stdout, stderr strings.Builder
			cmd.Stdout, cmd.Stderr = &stdout, &stderr
			cmd.Run()
			code := cmd.ProcessState.ExitCode()
			if tt.wantErr != "" {
				want := strings.ReplaceAll(tt.wantErr, "FILE", file)
				if code != 2 || !strings.Contains(stderr.String(), want) {
					t.Errorf("exit status %d, stderr %q; want 2 and %q", code, stderr.String(), want)
				}
				return
			}
			if code != 0 {
				t.Fatalf("exit status %d: %s", code, stderr.String())
			}
			for _, w := range tt.want {
				re := regexp.MustCompile("(?m)" + strings.ReplaceAll(w, "FILE", regexp.QuoteMeta(file)))
				if !re.MatchString(stdout.String()) {
					t.Errorf("no line matching %s in:\n%s", re, stdout.String())
				}
			}
		})
	}
}

// --config (or PARLEY_CONFIG) names the file instead of <data>/parley.toml;
// a file named that way must exist.
func TestConfigFileFlag(t *testing.T) {
	file := filepath.Join(t.TempDir(), "relay.toml")
	os.WriteFile(file, []byte("max-rooms = 9\n"), 0o600)
	for _, args := range [][]string{{"--config", file}, nil} {
		cmd := exec.Command(binary, append([]string{"config", "relay", "--data", t.TempDir()}, args...)...)
		cmd.Env = cleanEnv()
		if args == nil {
			cmd.Env = append(cmd.Env, "PARLEY_CONFIG="+file)
		}
		out, err := cmd.Output()
		if err != nil || !regexp.MustCompile(`(?m)^max-rooms += 9 +# `+regexp.QuoteMeta(file)+`:1$`).Match(out) {
			t.Errorf("%v: %v\n%s", args, err, out)
		}
	}
	cmd := exec.Command(binary, "config", "relay", "--config", file+".missing")
	cmd.Env = cleanEnv()
	if out, _ := cmd.CombinedOutput(); cmd.ProcessState.ExitCode() != 2 || !strings.Contains(string(out), "relay.toml.missing") {
		t.Errorf("a missing --config file: %s (status %d), want an error naming it", out, cmd.ProcessState.ExitCode())
	}
}

// cleanEnv is the test's environment without PARLEY_ variables.
func cleanEnv() []string {
	var out []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "PARLEY_") {
			out = append(out, kv)
		}
	}
	return out
}

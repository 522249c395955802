package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"

	"github.com/BurntSushi/toml"
)

// Configuration: every flag of every command can also be set in the
// environment as PARLEY_<FLAG> (upper case, '-' as '_': --log-level is
// PARLEY_LOG_LEVEL) and in a TOML file, <data>/parley.toml or the one
// --config (PARLEY_CONFIG) names. A flag on the command line beats the
// environment, which beats the file, which beats the default.
//
// In the file, keys are flag names. Top-level keys apply to every
// command that has that flag (a relay's keys do not bother `join`);
// a table per command ([join], [web], [relay], [dispatch], [doctor],
// [id]) holds values for that command alone and beats the top level.
// A repeatable flag takes an array (or one string); in the environment,
// a comma-separated list.

// ConfigFile is the configuration file's name in the data directory.
const ConfigFile = "parley.toml"

// EnvPrefix starts the environment variable of every flag.
const EnvPrefix = "PARLEY_"

// configurable are the commands whose flags the file and the environment
// set, in the order `parley config` lists them.
var configurable = []string{"join", "web", "relay", "dispatch", "doctor", "id"}

// Where a value came from.
const (
	fromDefault = "default"
	fromFlag    = "flag"
)

// setting is a flag's effective value and where it came from.
type setting struct {
	Name   string
	Value  string
	Source string // fromDefault, fromFlag, "env PARLEY_X", "FILE:LINE"
}

// envName is the environment variable of flag name.
func envName(name string) string {
	return EnvPrefix + strings.ToUpper(strings.ReplaceAll(name, "-", "_"))
}

// configure sets every flag of fs not given on the command line from the
// environment, then from the configuration file, and reports where each
// value came from. command is the command's name ("join").
func configure(fs *flag.FlagSet, command string, lookupEnv func(string) (string, bool)) ([]setting, error) {
	src := make(map[string]string)
	fs.Visit(func(f *flag.Flag) { src[f.Name] = fromFlag })
	var errs []error
	fs.VisitAll(func(f *flag.Flag) {
		if src[f.Name] != "" {
			return
		}
		env := envName(f.Name)
		v, ok := lookupEnv(env)
		if !ok {
			return
		}
		if err := setValue(fs, f.Name, splitList(f, v)); err != nil {
			errs = append(errs, fmt.Errorf("%w: environment %s=%q: %v", errUsage, env, v, err))
			return
		}
		src[f.Name] = "env " + env
	})
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}

	path, explicit := configPath(fs, lookupEnv)
	if path != "" {
		file, err := readConfig(path, explicit)
		if err != nil {
			return nil, err
		}
		if file != nil {
			if err := file.apply(fs, command, src); err != nil {
				return nil, err
			}
		}
	}

	var out []setting
	fs.VisitAll(func(f *flag.Flag) {
		s := src[f.Name]
		if s == "" {
			s = fromDefault
		}
		out = append(out, setting{Name: f.Name, Value: f.Value.String(), Source: s})
	})
	return out, nil
}

// configPath is the file --config names (explicit), else
// <data>/parley.toml of the data directory as set so far.
func configPath(fs *flag.FlagSet, lookupEnv func(string) (string, bool)) (path string, explicit bool) {
	if f := fs.Lookup("config"); f != nil && f.Value.String() != "" {
		return f.Value.String(), true
	}
	if f := fs.Lookup("data"); f != nil && f.Value.String() != "" {
		return filepath.Join(f.Value.String(), ConfigFile), false
	}
	return "", false
}

// splitList splits an environment value of a repeatable flag at commas.
func splitList(f *flag.Flag, v string) []string {
	if _, ok := f.Value.(*listFlag); !ok {
		return []string{v}
	}
	var out []string
	for _, s := range strings.Split(v, ",") {
		if s = strings.TrimSpace(s); s != "" {
			out = append(out, s)
		}
	}
	return out
}

// setValue sets a flag to values: one for a plain flag, any number for a
// repeatable one.
func setValue(fs *flag.FlagSet, name string, values []string) error {
	for _, v := range values {
		if err := fs.Set(name, v); err != nil {
			return err
		}
	}
	return nil
}

// configFile is a parsed configuration file.
type configFile struct {
	path  string
	data  map[string]any
	lines map[string]int // "key" or "table.key" → line
}

// readConfig parses the file at path. A missing file is no error unless
// it was named explicitly.
func readConfig(path string, explicit bool) (*configFile, error) {
	raw, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) && !explicit {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("%w: config file: %v", errUsage, err)
	}
	data := make(map[string]any)
	if _, err := toml.Decode(string(raw), &data); err != nil {
		var pe toml.ParseError
		if errors.As(err, &pe) {
			return nil, fmt.Errorf("%w: %s:%d: %s", errUsage, path, pe.Position.Line, pe.Message)
		}
		return nil, fmt.Errorf("%w: %s: %v", errUsage, path, err)
	}
	return &configFile{path: path, data: data, lines: keyLines(raw)}, nil
}

var (
	tableLine = regexp.MustCompile(`^\s*\[\s*"?([A-Za-z0-9_.-]+)"?\s*\]`)
	keyLine   = regexp.MustCompile(`^\s*"?([A-Za-z0-9_-]+)"?\s*=`)
)

// keyLines finds the line of each key, for error messages (the TOML
// library reports lines of syntax errors only).
func keyLines(raw []byte) map[string]int {
	lines := make(map[string]int)
	table := ""
	sc := bufio.NewScanner(strings.NewReader(string(raw)))
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		if m := tableLine.FindStringSubmatch(line); m != nil {
			table = m[1]
			lines[table] = n
			continue
		}
		if m := keyLine.FindStringSubmatch(line); m != nil {
			key := m[1]
			if table != "" {
				key = table + "." + key
			}
			if _, ok := lines[key]; !ok {
				lines[key] = n
			}
		}
	}
	return lines
}

func (c *configFile) at(key string) string {
	if n, ok := c.lines[key]; ok {
		return fmt.Sprintf("%s:%d", c.path, n)
	}
	return c.path
}

// apply sets the flags not set yet (src) from the file: the command's
// table first, then the top level. It checks every key of the file, not
// only this command's: a typo is found whichever command runs.
func (c *configFile) apply(fs *flag.FlagSet, command string, src map[string]string) error {
	known := allFlags()
	var errs []error
	keys := sortedKeys(c.data)
	// Check first, so that errors come in file order of keys.
	for _, k := range keys {
		v := c.data[k]
		if sub, ok := v.(map[string]any); ok {
			cmdFlags, isCmd := known[k]
			if !isCmd {
				errs = append(errs, fmt.Errorf("%s: unknown table [%s]: tables are commands (%s)", c.at(k), k, strings.Join(configurable, ", ")))
				continue
			}
			for _, kk := range sortedKeys(sub) {
				if _, ok := sub[kk].(map[string]any); ok || !slices.Contains(cmdFlags, kk) {
					errs = append(errs, fmt.Errorf("%s: unknown key %q in [%s]: `parley %s -h` lists its flags", c.at(k+"."+kk), kk, k, k))
				}
			}
			continue
		}
		if !anyCommandHas(known, k) {
			errs = append(errs, fmt.Errorf("%s: unknown key %q: keys are flag names without the dashes, e.g. log-level = \"info\"", c.at(k), k))
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("%w: %w", errUsage, errors.Join(errs...))
	}
	set := func(name string, v any, key string) {
		if src[name] != "" || fs.Lookup(name) == nil {
			return
		}
		values, err := tomlValues(v)
		if err == nil {
			err = setValue(fs, name, values)
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %s: bad value: %v", c.at(key), name, err))
			return
		}
		src[name] = c.at(key)
	}
	if sub, ok := c.data[command].(map[string]any); ok {
		for _, k := range sortedKeys(sub) {
			set(k, sub[k], command+"."+k)
		}
	}
	for _, k := range keys {
		if _, ok := c.data[k].(map[string]any); !ok {
			set(k, c.data[k], k)
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("%w: %w", errUsage, errors.Join(errs...))
	}
	return nil
}

// tomlValues turns a TOML value into flag values.
func tomlValues(v any) ([]string, error) {
	switch v := v.(type) {
	case string:
		return []string{v}, nil
	case bool:
		return []string{strconv.FormatBool(v)}, nil
	case int64:
		return []string{strconv.FormatInt(v, 10)}, nil
	case float64:
		return []string{strconv.FormatFloat(v, 'g', -1, 64)}, nil
	case []any:
		var out []string
		for _, e := range v {
			s, err := tomlValues(e)
			if err != nil {
				return nil, err
			}
			if len(s) != 1 {
				return nil, errors.New("nested arrays are not flag values")
			}
			out = append(out, s...)
		}
		return out, nil
	}
	return nil, fmt.Errorf("a %T is not a flag value (want a string, number, boolean or an array of them)", v)
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

func anyCommandHas(known map[string][]string, name string) bool {
	for _, flags := range known {
		if slices.Contains(flags, name) {
			return true
		}
	}
	return false
}

// collectFlags is an argument list no user types: a command given it
// hands its flag set to parseFlags' collector instead of running.
const collectFlags = "\x00collect-flags"

// errCollected ends a command run only to collect its flags.
var errCollected = errors.New("flags collected")

var (
	collectMu sync.Mutex
	collected map[string]*flag.FlagSet
)

// flagSetOf returns a fresh flag set of command, with its defaults.
func flagSetOf(command string) *flag.FlagSet {
	collectMu.Lock()
	defer collectMu.Unlock()
	if collected == nil {
		collected = make(map[string]*flag.FlagSet)
	}
	delete(collected, command)
	run(context.Background(), []string{command, collectFlags}, nil, io.Discard, io.Discard)
	return collected[command]
}

var (
	allFlagsOnce sync.Once
	allFlagNames map[string][]string
)

// allFlags maps each configurable command to its flag names.
func allFlags() map[string][]string {
	allFlagsOnce.Do(func() {
		out := make(map[string][]string)
		for _, cmd := range configurable {
			if fs := flagSetOf(cmd); fs != nil {
				fs.VisitAll(func(f *flag.Flag) { out[cmd] = append(out[cmd], f.Name) })
			}
		}
		allFlagNames = out
	})
	return allFlagNames
}

// noteCollected is parseFlags' half of the collector: it reports whether
// args asked for the flag set only.
func noteCollected(fs *flag.FlagSet, args []string) bool {
	if len(args) != 1 || args[0] != collectFlags {
		return false
	}
	// Called from flagSetOf, which holds collectMu.
	collected[strings.TrimPrefix(fs.Name(), "parley ")] = fs
	return true
}

// runConfig prints the effective configuration of a command and where
// each value comes from: `parley config [COMMAND] [flags of COMMAND]`.
func runConfig(args []string, stdout, stderr io.Writer) error {
	command := "join"
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		command, args = args[0], args[1:]
	}
	if !slices.Contains(configurable, command) {
		return fmt.Errorf("%w: parley config [%s] [flags]: %q has no configuration", errUsage, strings.Join(configurable, "|"), command)
	}
	if len(args) == 1 && (args[0] == "-h" || args[0] == "--help") {
		fmt.Fprintf(stderr, "usage: parley config [%s] [flags of that command]\n\nprints the command's effective configuration (flag > %s<FLAG> > %s > default) and where each value came from\n", strings.Join(configurable, "|"), EnvPrefix, ConfigFile)
		return flag.ErrHelp
	}
	fs := flagSetOf(command)
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	if _, err := parseInterspersed(fs, args); err != nil {
		return fmt.Errorf("%w: %v", errUsage, err)
	}
	settings, err := configure(fs, command, os.LookupEnv)
	if err != nil {
		return err
	}
	path, _ := configPath(fs, os.LookupEnv)
	fmt.Fprintf(stdout, "# parley %s: effective configuration (flag > environment > %s > default)\n", command, path)
	for _, s := range settings {
		fmt.Fprintf(stdout, "%-22s = %-40s # %s\n", s.Name, tomlQuote(fs.Lookup(s.Name), s.Value), s.Source)
	}
	return nil
}

// tomlQuote writes a value as the file would hold it.
func tomlQuote(f *flag.Flag, v string) string {
	if l, ok := f.Value.(*listFlag); ok {
		q := make([]string, len(*l))
		for i, s := range *l {
			q[i] = strconv.Quote(s)
		}
		return "[" + strings.Join(q, ", ") + "]"
	}
	if bf, ok := f.Value.(interface{ IsBoolFlag() bool }); ok && bf.IsBoolFlag() {
		return v
	}
	if _, err := strconv.ParseFloat(v, 64); err == nil {
		return v
	}
	return strconv.Quote(v)
}

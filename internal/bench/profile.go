package bench

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"runtime/pprof"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// CPUTime returns the CPU time (user + system) this process has used.
func CPUTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// busy is cpu ÷ (wall × cores).
func busy(cpu, wall time.Duration) float64 {
	if wall <= 0 {
		return 0
	}
	return float64(cpu) / float64(wall) / float64(runtime.NumCPU())
}

// Profiler writes a CPU profile of the time between Window(true) and
// Window(false), once.
type Profiler struct {
	Path       string
	f          *os.File
	start      time.Time
	Wall       time.Duration
	err        error
	begun, end bool
}

// Window starts (begin) or stops the profile.
func (p *Profiler) Window(begin bool) {
	switch {
	case begin && !p.begun:
		p.begun = true
		if p.f, p.err = os.Create(p.Path); p.err != nil {
			return
		}
		if p.err = pprof.StartCPUProfile(p.f); p.err != nil {
			p.f.Close()
			p.f = nil
			return
		}
		p.start = time.Now()
	case !begin && p.begun && !p.end && p.f != nil:
		p.end = true
		pprof.StopCPUProfile()
		p.Wall = time.Since(p.start)
		p.err = p.f.Close()
	}
}

// Done reports whether a profile was written, or why not.
func (p *Profiler) Done() error {
	if p.err != nil {
		return p.err
	}
	if !p.end {
		return errors.New("the measured window never ended")
	}
	return nil
}

// Bucket is a share of a CPU profile's samples spent under some frames.
type Bucket struct {
	Name string
	Pct  float64 // of all samples
}

// bucketDefs name where the time goes: the share of samples with a frame
// matching the regular expression anywhere on the stack (pprof -focus), so
// nothing is counted twice within a bucket. Buckets overlap: allocation
// and system calls happen inside the others.
var bucketDefs = []struct{ name, focus string }{
	{"Ed25519 signature checks (pubsub StrictSign; parsing the key from the peer ID included)", `ed25519\.Verify`},
	{"Ed25519 signing", `ed25519\.[Ss]ign`},
	{"SQLite store (internal/store: history, DM inbox and outbox)", `parley/internal/store\.|modernc\.org/sqlite`},
	{"system calls (socket reads and writes, fsync)", `linux\.Syscall6$`},
	{"Noise encryption (ChaCha20-Poly1305)", `noise\.\(\*CipherState\)\.(En|De)crypt`},
	{"protobuf encoding and decoding", `google\.golang\.org/protobuf/`},
	{"memory allocation (mallocgc)", `runtime\.mallocgc$`},
	{"garbage collector (background marking)", `runtime\.gcBgMarkWorker$`},
	{"goroutine scheduling (runtime.schedule)", `runtime\.schedule$`},
}

// focusShare returns the share (in %) of samples with a frame matching re.
func focusShare(ctx context.Context, path, re string) (float64, error) {
	out, err := exec.CommandContext(ctx, "go", "tool", "pprof", "-top", "-focus="+re, "-nodecount=100000",
		"-nodefraction=0", "-edgefraction=0", path).Output()
	if err != nil {
		return 0, fmt.Errorf("go tool pprof: %w", err)
	}
	for _, l := range strings.Split(string(out), "\n") {
		// "Showing nodes accounting for 2.63s, 22.73% of 11.57s total"
		if _, after, ok := strings.Cut(l, "Showing nodes accounting for "); ok {
			f := strings.Fields(strings.ReplaceAll(after, ",", ""))
			if len(f) >= 2 {
				return strconv.ParseFloat(strings.TrimSuffix(f[1], "%"), 64)
			}
		}
	}
	return 0, nil // no sample matched
}

// ProfileSummary is what a CPU profile says about a measurement.
type ProfileSummary struct {
	Title   string
	File    string
	Wall    time.Duration // the profiled run
	CPU     time.Duration // samples in the profile
	Buckets []Bucket
	Top     string // go tool pprof -top, first lines
	Ops     int    // operations the profiled run made (0: unknown)
	OpName  string // e.g. "DM round trip"
}

// PerOp is CPU time per operation, if known.
func (s ProfileSummary) PerOp() time.Duration {
	if s.Ops <= 0 {
		return 0
	}
	return s.CPU / time.Duration(s.Ops)
}

// Summarize reads a CPU profile with `go tool pprof`.
func Summarize(ctx context.Context, title, path string, wall time.Duration) (ProfileSummary, error) {
	s := ProfileSummary{Title: title, File: path, Wall: wall}
	out, err := exec.CommandContext(ctx, "go", "tool", "pprof", "-top", "-cum", "-nodecount=3000", path).Output()
	if err != nil {
		return s, fmt.Errorf("go tool pprof: %w", err)
	}
	sc := bufio.NewScanner(bytes.NewReader(out))
	var storeFns []Bucket
	for sc.Scan() {
		line := sc.Text()
		if t, ok := strings.CutPrefix(strings.TrimSpace(line), "Duration:"); ok {
			// "Duration: 5.62s, Total samples = 5.66s (100.72%)"
			if _, after, ok := strings.Cut(t, "Total samples = "); ok {
				if d, err := time.ParseDuration(strings.Fields(after)[0]); err == nil {
					s.CPU = d
				}
			}
			continue
		}
		// Cumulative shares of the store's methods, e.g.
		// "0 0% 0.69% 0.94s 8.12% github.com/parley-chat/parley/internal/store.(*Store).Prune"
		f := strings.Fields(line)
		if len(f) >= 6 && strings.Contains(f[5], "parley/internal/store.(*Store).") {
			if cum, err := strconv.ParseFloat(strings.TrimSuffix(f[4], "%"), 64); err == nil && cum >= 0.5 {
				_, name, _ := strings.Cut(f[5], "internal/store.")
				name = strings.Replace(name, "(*Store).", "Store.", 1)
				storeFns = append(storeFns, Bucket{"… of which " + name, cum})
			}
		}
	}
	for _, b := range bucketDefs {
		pct, err := focusShare(ctx, path, b.focus)
		if err != nil {
			return s, err
		}
		if pct >= 0.5 {
			s.Buckets = append(s.Buckets, Bucket{b.name, pct})
			if strings.HasPrefix(b.name, "SQLite") {
				s.Buckets = append(s.Buckets, storeFns...)
			}
		}
	}
	if top, err := exec.CommandContext(ctx, "go", "tool", "pprof", "-top", "-nodecount=15", path).Output(); err == nil {
		lines := strings.Split(string(top), "\n")
		for i, l := range lines {
			if strings.HasPrefix(strings.TrimSpace(l), "flat") {
				lines = lines[i:]
				break
			}
		}
		s.Top = strings.TrimSpace(strings.Join(lines, "\n"))
	}
	return s, nil
}

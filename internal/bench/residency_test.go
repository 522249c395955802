package bench

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/parley-chat/parley/internal/proctest"
)

func TestSymbolPackage(t *testing.T) {
	for _, tc := range []struct{ name, want string }{
		{"runtime.mallocgc", "runtime"},
		{"github.com/parley-chat/parley/chat.(*Service).Send", "github.com/parley-chat/parley/chat"},
		{"github.com/parley-chat/parley/chat.New.func1", "github.com/parley-chat/parley/chat"},
		{"type:*net/http.Request", "net/http"},
		{"type:[]github.com/libp2p/go-libp2p/core/peer.ID", "github.com/libp2p/go-libp2p/core/peer"},
		{"go:itab.*os.File,io.Reader", "os"},
		{"slices.SortFunc[go.shape.[]string,go.shape.string]", "slices"},
		{"github.com/x/y/v2.Map[go.shape.int].Get", "github.com/x/y/v2"},
		{"map[string]int", "<composite>"},
		{"func(int) error", "<composite>"},
		{"main.main", "main"},
	} {
		if got := symbolPackage(tc.name); got != tc.want {
			t.Errorf("symbolPackage(%q) = %q, want %q", tc.name, got, tc.want)
		}
	}
}

// The test binary's own resident pages: every byte is given to someone,
// the figures agree with smaps, and the packages that ran are there.
func TestReadResidencyOfItself(t *testing.T) {
	res, err := ReadResidency(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	var pkgs, secs int64
	for _, n := range res.Packages {
		pkgs += n
	}
	for _, n := range res.Sections {
		secs += n
	}
	if res.Total <= 0 || pkgs != res.Total || secs > res.Total || secs < res.Total/2 {
		t.Errorf("total %d, packages sum to %d, sections to %d", res.Total, pkgs, secs)
	}
	smaps, err := exeRSS(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	if d := smaps - res.Total; d < -res.Total/20 || d > res.Total/20 {
		t.Errorf("pagemap says %d resident bytes, smaps %d", res.Total, smaps)
	}
	for _, pkg := range []string{"runtime", "testing", "github.com/parley-chat/parley/internal/bench"} {
		if res.Packages[pkg] <= 0 {
			t.Errorf("nothing of %s resident: %v", pkg, res.Packages)
		}
	}
	for _, sec := range []string{".text", ".rodata", ".gopclntab"} {
		if res.Sections[sec] <= 0 {
			t.Errorf("nothing of %s resident: %v", sec, res.Sections)
		}
	}
}

// TestResidencyReport prints, for an idle parley (started as the node
// section starts it) and the floor program, the resident executable bytes
// by section and the packages that differ most. It builds both, so it
// runs only when asked:
//
//	PARLEY_RESIDENCY=1 go test -run TestResidencyReport -v ./internal/bench
func TestResidencyReport(t *testing.T) {
	if os.Getenv("PARLEY_RESIDENCY") == "" {
		t.Skip("set PARLEY_RESIDENCY=1 to build parley and the floor program and compare their resident pages")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	root, err := proctest.ModuleRoot()
	if err != nil {
		t.Fatal(err)
	}
	tmp := t.TempDir()
	const runs = 3
	idle := func(pr program, data string) Residency {
		var sum Residency
		for run := range runs + 1 { // the first creates parley's identity and store, as in RunNode
			p, err := pr.start(ctx, pr.name, data, 30*time.Second)
			if err != nil {
				t.Fatal(err)
			}
			if _, _, err := p.Ready(ctx); err != nil {
				p.Kill()
				t.Fatal(err)
			}
			if run == 0 {
				p.Stop(10 * time.Second)
				continue
			}
			time.Sleep(3 * time.Second)
			res, err := ReadResidency(p.Cmd.Process.Pid)
			p.Stop(10 * time.Second)
			if err != nil {
				t.Fatal(err)
			}
			sum = addResidency(sum, res, runs)
		}
		return sum
	}
	var got [2]Residency
	for i, pkg := range []string{"./cmd/parley", FloorPackage} {
		bin, err := proctest.BuildPackage(ctx, root, tmp, pkg)
		if err != nil {
			t.Fatal(err)
		}
		pr := floorProgram(bin)
		if i == 0 {
			pr = parleyProgram(bin)
		}
		got[i] = idle(pr, filepath.Join(tmp, "data"))
	}
	t.Logf("resident executable, mean of %d idle runs: parley %s, floor %s", runs, FmtMB(got[0].Total), FmtMB(got[1].Total))
	t.Log("by section, parley − floor:\n" + diffTable(got[0].Sections, got[1].Sections, 12))
	t.Log("by package, parley − floor:\n" + diffTable(got[0].Packages, got[1].Packages, 40))
}

// addResidency adds r/n to sum.
func addResidency(sum, r Residency, n int) Residency {
	if sum.Sections == nil {
		sum.Sections, sum.Packages = map[string]int64{}, map[string]int64{}
	}
	sum.Total += r.Total / int64(n)
	for k, v := range r.Sections {
		sum.Sections[k] += v / int64(n)
	}
	for k, v := range r.Packages {
		sum.Packages[k] += v / int64(n)
	}
	return sum
}

// diffTable lists the rows keys of a − b largest first, in KB.
func diffTable(a, b map[string]int64, rows int) string {
	d := map[string]int64{}
	for k, v := range a {
		d[k] += v
	}
	for k, v := range b {
		d[k] -= v
	}
	keys := make([]string, 0, len(d))
	for k := range d {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool { return d[keys[i]] > d[keys[j]] })
	var sb strings.Builder
	for i, k := range keys {
		if i == rows {
			break
		}
		fmt.Fprintf(&sb, "%+7d KB  %-60s (%d KB of parley's)\n", d[k]>>10, k, a[k]>>10)
	}
	return sb.String()
}

package bench

import (
	"fmt"
	"os"
	"strconv"
	"strings"
)

// ProcMem is a process's resident memory (from /proc/PID/status): RSS in
// all, Anon what it allocated (heap, stacks), File the pages of files it
// maps, its own binary above all. Kernels with large page-cache folios map
// a binary's code nearly whole at its first faults, so File is close to
// the binary's size whatever the process does: 30 MB of a 37 MB idle node
// here.
type ProcMem struct {
	RSS, Anon, File int64
}

// ReadProcMem reads pid's VmRSS, RssAnon and RssFile.
func ReadProcMem(pid int) (ProcMem, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return ProcMem{}, err
	}
	var m ProcMem
	fields := map[string]*int64{"VmRSS:": &m.RSS, "RssAnon:": &m.Anon, "RssFile:": &m.File}
	found := 0
	for _, line := range strings.Split(string(b), "\n") {
		for name, dst := range fields {
			v, ok := strings.CutPrefix(line, name)
			if !ok {
				continue
			}
			f := strings.Fields(v)
			if len(f) < 1 {
				return m, fmt.Errorf("/proc/%d/status: %q", pid, line)
			}
			kb, err := strconv.ParseInt(f[0], 10, 64)
			if err != nil {
				return m, fmt.Errorf("/proc/%d/status: %q: %w", pid, line, err)
			}
			*dst = kb << 10
			found++
		}
	}
	if found < len(fields) {
		return m, fmt.Errorf("/proc/%d/status has no VmRSS, RssAnon or RssFile", pid)
	}
	return m, nil
}

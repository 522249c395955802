package bench

import (
	"fmt"
	"os"
	"strconv"
	"strings"
)

// ProcMem is a process's resident memory (from /proc/PID/status): RSS in
// all, Anon what it allocated (heap, stacks), File the pages of files it
// maps, Exe those of its own executable (File less shared libraries: libc
// and the loader of a cgo build). A read fault on a file mapping maps the
// 64 KiB around the page (the kernel's fault-around), and the package
// initialisers of a Go program touch code and type data all over the
// binary, so Exe is ~3/4 of the executable's loadable size whatever the
// process does next (26 of 34 MB for an idle node).
type ProcMem struct {
	RSS, Anon, File, Exe int64
}

// ReadProcMem reads pid's VmRSS, RssAnon and RssFile, and the resident
// pages of its executable from /proc/PID/smaps.
func ReadProcMem(pid int) (ProcMem, error) {
	m, err := readStatusMem(pid)
	if err != nil {
		return m, err
	}
	m.Exe, err = exeRSS(pid)
	return m, err
}

// exeRSS sums the Rss of pid's mappings of its own executable.
func exeRSS(pid int) (int64, error) {
	dir := "/proc/" + strconv.Itoa(pid)
	exe, err := os.Readlink(dir + "/exe")
	if err != nil {
		return 0, err
	}
	b, err := os.ReadFile(dir + "/smaps")
	if err != nil {
		return 0, err
	}
	var total int64
	inExe := false
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) == 0 {
			continue
		}
		if !strings.HasSuffix(f[0], ":") { // a mapping's header: range perms offset dev inode [path]
			inExe = len(f) >= 6 && strings.Join(f[5:], " ") == exe
			continue
		}
		if inExe && f[0] == "Rss:" && len(f) >= 2 {
			kb, err := strconv.ParseInt(f[1], 10, 64)
			if err != nil {
				return 0, fmt.Errorf("%s/smaps: %q: %w", dir, line, err)
			}
			total += kb << 10
		}
	}
	return total, nil
}

// readStatusMem reads pid's VmRSS, RssAnon and RssFile.
func readStatusMem(pid int) (ProcMem, error) {
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

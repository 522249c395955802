package netlab

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"
)

// Do runs fn on an OS thread that has entered the host's network namespace, and returns its error.
// Sockets fn creates belong to the namespace for good, and may be used from any goroutine afterwards.
// fn must create them itself, on its own goroutine: goroutines it starts run elsewhere, in the
// process's own namespace. Host names are resolved on other goroutines, so dial IP literals only.
//
// The thread is discarded afterwards, never returned to the scheduler in the wrong namespace.
func (h *Host) Do(fn func() error) error {
	errc := make(chan error, 1)
	go func() {
		// Never unlocked: a goroutine that exits locked takes its thread with it.
		runtime.LockOSThread()
		errc <- h.enter(fn)
	}()
	return <-errc
}

// enter moves the calling (locked) thread into the host's namespace and runs fn.
func (h *Host) enter(fn func() error) error {
	path := filepath.Join(netnsDir, h.NS)
	fd, err := unix.Open(path, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("netlab: %s: opening %s: %w", h.Name, path, err)
	}
	err = unix.Setns(fd, unix.CLONE_NEWNET)
	unix.Close(fd)
	if err != nil {
		return fmt.Errorf("netlab: %s: entering namespace %s: %w", h.Name, h.NS, err)
	}
	return fn()
}

// kill sends SIGKILL to a process.
func kill(pid int) error { return syscall.Kill(pid, syscall.SIGKILL) }

// checkCaps reports whether this process has the capabilities namespaces need.
func checkCaps() error {
	status, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return fmt.Errorf("reading capabilities: %w", err)
	}
	for _, line := range strings.Split(string(status), "\n") {
		hex, ok := strings.CutPrefix(line, "CapEff:")
		if !ok {
			continue
		}
		caps, err := strconv.ParseUint(strings.TrimSpace(hex), 16, 64)
		if err != nil {
			return fmt.Errorf("parsing %q: %w", line, err)
		}
		const want = 1<<unix.CAP_SYS_ADMIN | 1<<unix.CAP_NET_ADMIN
		if caps&want != want {
			return fmt.Errorf("need CAP_SYS_ADMIN and CAP_NET_ADMIN (run as root, or a privileged container), have CapEff %#x", caps)
		}
		return nil
	}
	return fmt.Errorf("no CapEff in /proc/self/status")
}

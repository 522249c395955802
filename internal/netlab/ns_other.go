//go:build !linux

package netlab

import (
	"errors"
	"fmt"
)

// Do runs fn inside the host's network namespace; network namespaces exist on Linux only.
func (h *Host) Do(fn func() error) error {
	return fmt.Errorf("netlab: %s: %w", h.Name, errors.ErrUnsupported)
}

func kill(pid int) error { return errors.ErrUnsupported }

func checkCaps() error { return errors.ErrUnsupported }

//go:build !unix

package datadir

import "os"

// lockFile is a no-op where flock is missing.
func lockFile(*os.File) error { return nil }

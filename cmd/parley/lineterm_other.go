//go:build !unix

package main

import "os"

// notifyResize: no resize signal here; the size read at start is kept.
func notifyResize(chan<- os.Signal) (stop func()) { return func() {} }

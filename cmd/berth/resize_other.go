//go:build !unix

package main

import "context"

// notifyResize never fires where there is no SIGWINCH: the remote terminal
// keeps the size it started with.
func notifyResize(context.Context) <-chan struct{} { return nil }

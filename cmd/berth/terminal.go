package main

import (
	"context"
	"os"

	"golang.org/x/term"

	"github.com/berth-platform/berth/client"
)

// terminal is the local terminal that "berth exec" hands to a remote
// command. Tests replace it.
type terminal interface {
	// MakeRaw passes every key through (no echo, no line editing, Ctrl-C
	// as a byte) and returns the function that restores the terminal.
	MakeRaw() (restore func() error, err error)
	Size() (client.TerminalSize, error)
	// Resized signals each change of the terminal's size until ctx ends.
	Resized(ctx context.Context) <-chan struct{}
}

// stdTerminal is the process's terminal: input on in, size read from out
// (or in, when out is redirected).
type stdTerminal struct{ in, out *os.File }

// openTerminal returns the terminal on stdin, or nil when stdin is not one.
func openTerminal() terminal {
	if !term.IsTerminal(int(os.Stdin.Fd())) {
		return nil
	}
	return stdTerminal{in: os.Stdin, out: os.Stdout}
}

func (t stdTerminal) MakeRaw() (func() error, error) {
	fd := int(t.in.Fd())
	state, err := term.MakeRaw(fd)
	if err != nil {
		return nil, err
	}
	return func() error { return term.Restore(fd, state) }, nil
}

func (t stdTerminal) Size() (client.TerminalSize, error) {
	cols, rows, err := term.GetSize(int(t.out.Fd()))
	if err != nil {
		if cols, rows, err = term.GetSize(int(t.in.Fd())); err != nil {
			return client.TerminalSize{}, err
		}
	}
	return client.TerminalSize{Cols: uint16(cols), Rows: uint16(rows)}, nil
}

func (t stdTerminal) Resized(ctx context.Context) <-chan struct{} { return notifyResize(ctx) }

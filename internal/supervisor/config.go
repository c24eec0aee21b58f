package supervisor

import (
	"context"
	"log/slog"
	"time"
)

// Config says what a Process runs, where its files are and how to know it
// is ready.
type Config struct {
	// Name is the program's name in errors and notices ("containerd");
	// errors read "NAME daemon: ...".
	Name string
	// Binary is the executable's path; Args its arguments.
	Binary string
	Args   []string
	// Env is the child's environment; nil means berth's own with the
	// system directories appended to PATH (see withSystemPath).
	Env []string
	// LogPath receives the child's output. It is opened with O_APPEND, so
	// it can be rotated by truncation; what a failed start wrote to it ends
	// the start's error.
	LogPath string
	// PidPath holds the running child's process id, so that the next
	// berth finds a child this one could not stop (it was killed).
	PidPath string
	// OwnArg is an argument only a child of this configuration has (its
	// configuration file): a process named by PidPath is only ended as a
	// leftover when its command line contains it, since the id may have
	// been reused by anything since.
	OwnArg string
	// Address is where the child answers once ready, for messages.
	Address string
	// Ready probes once whether the child answers; it is polled every
	// 100ms from the start until it returns nil.
	Ready func(ctx context.Context) error
	// StartTimeout bounds each start until Ready; default 30s.
	StartTimeout time.Duration
	// KillGroup ends what is left of the child's process group once the
	// child is gone (its own descendants, such as BuildKit's RUN steps).
	// Leave it off when descendants must outlive the child (containerd's
	// shims hold the containers).
	KillGroup bool
	// Cleanup, when set, runs after a child (or a leftover) is gone and
	// before a new one starts, e.g. to unmount what it left.
	Cleanup func()
	// Logger receives start, restart and stop notices; default
	// slog.Default().
	Logger *slog.Logger
}

func (c Config) withDefaults() Config {
	if c.StartTimeout == 0 {
		c.StartTimeout = 30 * time.Second
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	return c
}

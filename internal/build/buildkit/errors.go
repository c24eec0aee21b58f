package buildkit

import (
	"fmt"
	"strings"
	"time"
)

// BuildError is a build that ran and failed: a RUN that exited non-zero,
// a COPY of a missing file, a Dockerfile that does not parse, a push the
// registry refused. It is the user's to fix, unlike an unreachable
// buildkitd.
type BuildError struct {
	// Step is the failing step, e.g. "[build 3/4] RUN go build ./...";
	// empty when the failure was not in one step (a Dockerfile syntax
	// error is reported by the frontend as a whole).
	Step string
	// Output is the last lines (up to 30) the step printed, which is
	// where the compiler or package manager says what went wrong.
	Output []string
	// Err is BuildKit's error, e.g. `process "/bin/sh -c go build" did
	// not complete successfully: exit code: 1`.
	Err error
}

func (e *BuildError) Error() string {
	if e.Step == "" {
		return "build failed: " + e.Err.Error()
	}
	return fmt.Sprintf("build failed at step %s: %v", e.Step, e.Err)
}

func (e *BuildError) Unwrap() error { return e.Err }

// Detail is the error with the step's last output, for a build log.
func (e *BuildError) Detail() string {
	if len(e.Output) == 0 {
		return e.Error()
	}
	return e.Error() + "\nlast output of the step:\n" + strings.Join(e.Output, "\n")
}

// TimeoutError is a build stopped because it ran longer than the
// request's Timeout.
type TimeoutError struct {
	After time.Duration
}

func (e *TimeoutError) Error() string {
	return fmt.Sprintf("build timed out after %s; raise the build timeout", e.After)
}

// solveError is BuildKit's error without the "failed to solve: " that
// every failure starts with and without the stack trace that BuildKit's
// errors print with %+v (log handlers use it).
type solveError struct{ err error }

func (e *solveError) Error() string {
	return strings.TrimPrefix(e.err.Error(), "failed to solve: ")
}

func (e *solveError) Unwrap() error { return e.err }

package server

import (
	"fmt"
	"io"
	"sync"
	"time"
)

// PhaseState is where a start-up phase is.
type PhaseState string

const (
	PhasePending  PhaseState = "pending"
	PhaseStarting PhaseState = "starting"
	PhaseReady    PhaseState = "ready"
	PhaseFailed   PhaseState = "failed"
)

// Phase is one step of start-up, as /readyz shows it.
type Phase struct {
	Name       string     `json:"name"`
	State      PhaseState `json:"state"`
	DurationMS int64      `json:"duration_ms"`
	Detail     string     `json:"detail,omitempty"`
	Error      string     `json:"error,omitempty"`
}

// PhaseError is a failed phase: the seed guide's line, naming the log to read.
type PhaseError struct {
	Phase   string
	Cause   error
	LogFile string
}

func (e *PhaseError) Error() string {
	return fmt.Sprintf("ERROR: %s failed to start: %v. See %s", e.Phase, e.Cause, e.LogFile)
}

func (e *PhaseError) Unwrap() error { return e.Cause }

// phases runs start-up steps in order, printing each with its time.
type phases struct {
	out     io.Writer
	logFile string

	mu   sync.Mutex
	list []Phase
}

func newPhases(out io.Writer, logFile string, names ...string) *phases {
	p := &phases{out: out, logFile: logFile}
	for _, n := range names {
		p.list = append(p.list, Phase{Name: n, State: PhasePending})
	}
	return p
}

// run runs phase name; fn returns a detail to print (e.g. an address).
func (p *phases) run(name string, fn func() (string, error)) error {
	p.set(name, func(ph *Phase) { ph.State = PhaseStarting })
	start := time.Now()
	detail, err := fn()
	d := time.Since(start)
	if err != nil {
		p.set(name, func(ph *Phase) {
			ph.State, ph.Error, ph.DurationMS = PhaseFailed, err.Error(), d.Milliseconds()
		})
		fmt.Fprintf(p.out, "  ✗ %-12s %v\n", name, err)
		return &PhaseError{Phase: name, Cause: err, LogFile: p.logFile}
	}
	// Print before marking ready: whoever sees /healthz 200 can read every line.
	fmt.Fprintf(p.out, "  ✓ %-12s %-48s %s\n", name, detail, roundDuration(d))
	p.set(name, func(ph *Phase) { ph.State, ph.Detail, ph.DurationMS = PhaseReady, detail, d.Milliseconds() })
	return nil
}

func roundDuration(d time.Duration) time.Duration {
	if d < time.Millisecond {
		return d.Round(time.Microsecond)
	}
	return d.Round(time.Millisecond)
}

func (p *phases) set(name string, fn func(*Phase)) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for i := range p.list {
		if p.list[i].Name == name {
			fn(&p.list[i])
			return
		}
	}
	ph := Phase{Name: name}
	fn(&ph)
	p.list = append(p.list, ph)
}

// health reports whether every phase is ready, and the list.
func (p *phases) health() (bool, any) {
	p.mu.Lock()
	defer p.mu.Unlock()
	ready := true
	out := make([]Phase, len(p.list))
	copy(out, p.list)
	for _, ph := range out {
		if ph.State != PhaseReady {
			ready = false
		}
	}
	return ready, out
}

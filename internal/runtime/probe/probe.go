// Package probe runs readiness and liveness checks against an instance and
// turns their results into a verdict with Kubernetes' thresholds.
package probe

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"time"

	"github.com/berth-platform/berth/internal/model"
)

// Exec runs a command in the instance and returns its exit code.
type Exec func(ctx context.Context, cmd []string) (int, error)

// Defaults as Kubernetes has them.
const (
	defaultPeriod    = 10 * time.Second
	defaultTimeout   = time.Second
	defaultFailures  = 3
	defaultSuccesses = 1
)

// Period is how often p runs.
func Period(p *model.Probe) time.Duration {
	if p.PeriodSeconds > 0 {
		return time.Duration(p.PeriodSeconds) * time.Second
	}
	return defaultPeriod
}

// InitialDelay is how long after start p first runs.
func InitialDelay(p *model.Probe) time.Duration {
	return time.Duration(p.InitialDelaySeconds) * time.Second
}

func timeout(p *model.Probe) time.Duration {
	if p.TimeoutSeconds > 0 {
		return time.Duration(p.TimeoutSeconds) * time.Second
	}
	return defaultTimeout
}

// Check runs p once against an instance at host. The error says what failed
// in words a user can act on.
func Check(ctx context.Context, p *model.Probe, host string, exec Exec) error {
	ctx, cancel := context.WithTimeout(ctx, timeout(p))
	defer cancel()
	addr := net.JoinHostPort(host, strconv.Itoa(p.Port))
	switch p.Type {
	case model.ProbeTCP:
		c, err := (&net.Dialer{}).DialContext(ctx, "tcp", addr)
		if err != nil {
			return fmt.Errorf("tcp probe on port %d: %w", p.Port, err)
		}
		return c.Close()
	case model.ProbeHTTP:
		path := p.Path
		if path == "" {
			path = "/"
		}
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+path, nil)
		if err != nil {
			return fmt.Errorf("http probe: %w", err)
		}
		req.Header.Set("User-Agent", "berth-probe")
		resp, err := probeClient.Do(req)
		if err != nil {
			return fmt.Errorf("http probe GET %s on port %d: %w", path, p.Port, err)
		}
		resp.Body.Close()
		if p.ExpectStatus != 0 {
			if resp.StatusCode != p.ExpectStatus {
				return fmt.Errorf("http probe GET %s on port %d answered %d, expected %d", path, p.Port, resp.StatusCode, p.ExpectStatus)
			}
			return nil
		}
		// Kubernetes counts 200-399 as success.
		if resp.StatusCode < 200 || resp.StatusCode >= 400 {
			return fmt.Errorf("http probe GET %s on port %d answered %d", path, p.Port, resp.StatusCode)
		}
		return nil
	case model.ProbeExec:
		if exec == nil {
			return fmt.Errorf("exec probe: this engine cannot exec")
		}
		code, err := exec(ctx, p.Command)
		if err != nil {
			return fmt.Errorf("exec probe %v: %w", p.Command, err)
		}
		if code != 0 {
			return fmt.Errorf("exec probe %v exited with %d", p.Command, code)
		}
		return nil
	}
	return fmt.Errorf("unknown probe type %q", p.Type)
}

var probeClient = &http.Client{
	// A redirect elsewhere is the app's business; the probe took an answer.
	CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	Transport:     &http.Transport{DisableKeepAlives: true},
}

// Tracker turns a stream of results into a verdict: it flips to failing
// after FailureThreshold failures in a row and back after SuccessThreshold
// successes.
type Tracker struct {
	probe     *model.Probe
	ok        bool
	successes int
	failures  int
	lastErr   error
}

// NewTracker starts in the given state (readiness starts false, liveness true).
func NewTracker(p *model.Probe, initial bool) *Tracker {
	return &Tracker{probe: p, ok: initial}
}

// Observe records one result and returns the verdict.
func (t *Tracker) Observe(err error) bool {
	failN, okN := defaultFailures, defaultSuccesses
	if t.probe.FailureThreshold > 0 {
		failN = t.probe.FailureThreshold
	}
	if t.probe.SuccessThreshold > 0 {
		okN = t.probe.SuccessThreshold
	}
	t.lastErr = err
	if err != nil {
		t.successes = 0
		t.failures++
		if t.failures >= failN {
			t.ok = false
		}
		return t.ok
	}
	t.failures = 0
	t.successes++
	if t.successes >= okN {
		t.ok = true
	}
	return t.ok
}

// OK is the current verdict.
func (t *Tracker) OK() bool { return t.ok }

// LastError is the most recent failure, nil after a success.
func (t *Tracker) LastError() error { return t.lastErr }

// Failures is the number of failures in a row.
func (t *Tracker) Failures() int { return t.failures }

package containerd

import (
	"fmt"
	"strings"
	"time"

	"github.com/berth-platform/berth/internal/model"
	"github.com/berth-platform/berth/internal/runtime/probe"
)

// instancePhase is where one instance is in its life.
type instancePhase int

const (
	phaseScheduling  instancePhase = iota // waiting for resources
	phasePulling                          // image being pulled
	phaseStarting                         // container starting, not ready yet
	phaseRunning                          // process running
	phaseBackOff                          // crashed; waiting to restart
	phasePullBackOff                      // image pull failed; waiting to retry
	phaseCreateError                      // container could not be created
	phaseTerminating
)

// instance is the controller's record of one copy of a component.
type instance struct {
	id       string
	ordinal  int
	version  int64
	hash     string
	phase    instancePhase
	ip       string
	started  time.Time
	restarts int

	// Back-off between restarts: 10 s doubling to 5 min, reset after 10
	// minutes of health, as the kubelet does.
	backoff   time.Duration
	retryAt   time.Time
	lastExit  *exitRecord
	lastError error

	readiness *probe.Tracker
	liveness  *probe.Tracker
	nextProbe time.Time

	reason, message, advice string
}

type exitRecord struct {
	code int
	oom  bool
	// liveness is the probe failure the instance was killed for, if any.
	liveness string
	at       time.Time
	logs     string
}

const (
	backoffStart = 10 * time.Second
	backoffMax   = 5 * time.Minute
	backoffReset = 10 * time.Minute
)

// nextBackoff doubles the delay, unless the instance ran healthily long
// enough to forget its past crashes.
func (in *instance) nextBackoff(now time.Time) time.Duration {
	if in.backoff == 0 || (!in.started.IsZero() && now.Sub(in.started) > backoffReset) {
		in.backoff = backoffStart
	} else {
		in.backoff = min(in.backoff*2, backoffMax)
	}
	return in.backoff
}

// ready reports whether the instance may get traffic.
func (in *instance) ready() bool {
	if in.phase != phaseRunning {
		return false
	}
	return in.readiness == nil || in.readiness.OK()
}

// view is the instance as users see it, with reason, message and advice.
func (in *instance) view(memoryLimit int64, alias string) model.Instance {
	v := model.Instance{ID: in.id, Version: in.version, Address: in.ip, Restarts: in.restarts}
	switch in.phase {
	case phaseScheduling:
		v.Status, v.Reason = model.InstanceScheduling, "Unschedulable"
		v.Message, v.Advice = in.message, "free memory, CPU or disk on this machine, or lower the component's limits; the instance starts by itself once it fits"
	case phasePulling:
		v.Status, v.Reason, v.Message = model.InstanceInitiating, "Pulling", in.message
	case phasePullBackOff:
		v.Status, v.Reason, v.Message, v.Advice = model.InstanceAbnormal, in.reason, in.message, in.advice
	case phaseCreateError:
		v.Status, v.Reason, v.Message, v.Advice = model.InstanceAbnormal, "CreateContainerError", in.message,
			"check the component's command, args, volumes and image: the container could not be created"
	case phaseStarting:
		v.Status, v.Reason = model.InstanceInitiating, "ContainerCreating"
	case phaseRunning:
		switch {
		case in.liveness != nil && !in.liveness.OK():
			v.Status, v.Reason = model.InstanceUnhealthy, "LivenessProbeFailed"
			v.Message = fmt.Sprint(in.liveness.LastError())
			v.Advice = "the instance is restarted; check that the liveness probe's port and path match the app"
		case in.readiness != nil && !in.readiness.OK():
			v.Status, v.Reason = model.InstanceNotReady, "ReadinessProbeFailed"
			if err := in.readiness.LastError(); err != nil {
				v.Message = err.Error()
			} else {
				v.Message = "waiting for the readiness probe to pass"
			}
			v.Advice = "the instance gets no traffic until its readiness probe passes; check the probe's port and path, and the app's log"
		default:
			v.Status, v.Reason = model.InstanceRunning, "Running"
		}
	case phaseBackOff:
		v.Status = model.InstanceAbnormal
		e := in.lastExit
		wait := time.Until(in.retryAt).Round(time.Second)
		if e != nil && e.oom {
			v.Reason = "OOMKilled"
			v.Message = fmt.Sprintf("the instance used more than its memory limit of %s and was killed (restart %d, next try in %s)", model.FormatBytes(memoryLimit), in.restarts, wait)
			v.Advice = fmt.Sprintf("raise the memory limit, then deploy: berth component update %s --memory <size> && berth deploy %s (or PATCH the component with {\"memory\": \"...\"})", alias, alias)
		} else {
			v.Reason = "CrashLoopBackOff"
			code := -1
			logs := ""
			if e != nil {
				code, logs = e.code, e.logs
			}
			v.Message = fmt.Sprintf("the process exited with code %d; restarted %d time(s), back-off %s, next try in %s", code, in.restarts, in.backoff, wait)
			if e != nil && e.liveness != "" {
				v.Message = fmt.Sprintf("killed after failing its liveness probe (%s); restarted %d time(s), back-off %s, next try in %s", e.liveness, in.restarts, in.backoff, wait)
			}
			if logs != "" {
				v.Message += "\nlast log lines:\n" + logs
			}
			v.Advice = "read the log lines above (berth logs " + alias + " --previous); the command, an env value or a dependency is usually the cause"
		}
	case phaseTerminating:
		v.Status, v.Reason = model.InstanceTerminating, "Terminating"
	}
	return v
}

// tailLines keeps the last n lines of s.
func tailLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

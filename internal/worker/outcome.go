package worker

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/berth-platform/berth/internal/model"
)

// ReadinessProbe is the probe that says an instance of c may get traffic:
// the component's own, else, for a component with ports, a TCP check on its
// first non-UDP port. A process that has started is not yet an app that
// answers (interpreters take a while to listen, and one listening on
// another port never will), so every kind of component gets the default,
// at deploy time, without writing it into the component.
func ReadinessProbe(c *model.Component) *model.Probe {
	if c.Readiness != nil {
		return c.Readiness
	}
	for _, p := range c.Ports {
		if p.Protocol != model.ProtoUDP {
			return &model.Probe{Type: model.ProbeTCP, Port: p.Port, PeriodSeconds: 1}
		}
	}
	return nil
}

// pollInterval is how often a waiting task reads the runtime.
const pollInterval = 500 * time.Millisecond

// outcome watches one rollout: it reports scheduling at once and fails as
// soon as an instance of the new version crashes, instead of waiting for
// the rollout's deadline.
type outcome struct {
	c         *model.Component
	progress  func(string)
	scheduled map[string]string // instance id -> scheduling message reported
	// before are the instances that ran before the operation: a restart
	// replaces them, and their crashes are not the new instances'.
	before map[string]bool
}

func newOutcome(c *model.Component, progress func(string), before map[string]bool) *outcome {
	return &outcome{c: c, progress: progress, scheduled: map[string]string{}, before: before}
}

// newInstances are the live instances of the version being rolled out.
func (o *outcome) newInstances(instances []model.Instance) []model.Instance {
	var out []model.Instance
	for _, in := range instances {
		if in.Version == o.c.DeployVersion && in.Status != model.InstanceTerminating && in.Status != model.InstanceSucceeded {
			out = append(out, in)
		}
	}
	return out
}

// check looks at the new instances during a rollout: a scheduling one is
// said once per message, a crashed one fails the rollout.
func (o *outcome) check(instances []model.Instance) error {
	for _, in := range o.newInstances(instances) {
		if in.Status == model.InstanceScheduling && o.scheduled[in.ID] != in.Message {
			o.scheduled[in.ID] = in.Message
			o.progress(fmt.Sprintf("instance %s cannot be scheduled: %s (%s)", in.ID, firstNonEmpty(in.Message, in.Reason), in.Advice))
		}
		if crashed(in) && !o.before[in.ID] {
			return instanceFailure(o.c, in, "crashed before it was ready")
		}
	}
	return nil
}

// crashed reports whether an instance's process died (and is restarting).
func crashed(in model.Instance) bool {
	return in.Status == model.InstanceAbnormal && (in.Reason == "OOMKilled" || in.Reason == "CrashLoopBackOff")
}

// instanceFailure is a rollout's failure for the reason one instance gives.
func instanceFailure(c *model.Component, in model.Instance, what string) *Failure {
	reason := in.Reason
	if reason == "" || reason == "Running" {
		reason = "Restarted"
	}
	msg := fmt.Sprintf("instance %s of version %d %s: %s", in.ID, c.DeployVersion, what, reason)
	if in.Message != "" {
		msg += ": " + in.Message
	}
	if in.Advice != "" {
		msg += "\nadvice: " + in.Advice
	}
	return &Failure{Reason: reason, Err: errors.New(msg)}
}

// settle holds a completed rollout to the settle time: every new instance
// must stay ready, with no restart, for that long, or the deploy fails with
// what the instance says.
func (r *Reconciler) settle(ctx context.Context, c *model.Component, progress func(string)) error {
	window := c.Settle()
	progress(fmt.Sprintf("%d instance(s) of version %d ready; checking that they stay ready for %s", c.Instances, c.DeployVersion, window))
	o := newOutcome(c, progress, nil)
	restarts := map[string]int{}
	deadline := time.Now().Add(window)
	for {
		instances, err := r.driver.Instances(ctx, c.ID)
		if err != nil {
			return fmt.Errorf("read instances: %w", err)
		}
		for _, in := range o.newInstances(instances) {
			before, seen := restarts[in.ID]
			if !seen {
				restarts[in.ID], before = in.Restarts, in.Restarts
			}
			switch {
			case in.Restarts > before:
				return instanceFailure(c, in, fmt.Sprintf("restarted %d time(s) within the settle time of %s", in.Restarts-before, window))
			case in.Status != model.InstanceRunning:
				return instanceFailure(c, in, fmt.Sprintf("stopped being ready within the settle time of %s", window))
			}
		}
		if time.Now().After(deadline) {
			progress(fmt.Sprintf("%d instance(s) of version %d stayed ready for %s", c.Instances, c.DeployVersion, window))
			return nil
		}
		if err := pause(ctx, pollInterval); err != nil {
			return err
		}
	}
}

// unhealthy reports whether err is a failure of the new instances
// themselves (not of the task or the image), which a rollback can cure.
func unhealthy(err error) bool {
	var f *Failure
	if !errors.As(err, &f) {
		return false
	}
	switch f.Reason {
	case "OOMKilled", "CrashLoopBackOff", "ReadinessProbeFailed", "LivenessProbeFailed", "Restarted", "ContainerCreating", "Unschedulable":
		return true
	}
	return false
}

// before is what runs of a component before an operation changes it.
type before struct {
	// serving is the version whose instances serve (0 when none does):
	// the one to go back to when a new version fails.
	serving int64
	ids     map[string]bool
}

// snapshot reads what runs of c now.
func (r *Reconciler) snapshot(ctx context.Context, c *model.Component) (before, error) {
	b := before{ids: map[string]bool{}}
	instances, err := r.driver.Instances(ctx, c.ID)
	if err != nil {
		return b, fmt.Errorf("read instances: %w", err)
	}
	for _, in := range instances {
		b.ids[in.ID] = true
		if in.Status == model.InstanceRunning && b.serving == 0 {
			b.serving = in.Version
		}
	}
	return b, nil
}

// pause waits d, or less when ctx ends.
func pause(ctx context.Context, d time.Duration) error {
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(d):
		return nil
	}
}

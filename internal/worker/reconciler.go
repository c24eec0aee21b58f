package worker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/berth-platform/berth/internal/model"
	"github.com/berth-platform/berth/internal/runtime"
	"github.com/berth-platform/berth/internal/store"
)

// Reconciler keeps the runtime in line with the store: it hands each
// component's desired state to the driver and writes the status the driver
// reports back to the component.
type Reconciler struct {
	store    store.Store
	driver   runtime.Driver
	interval time.Duration
}

// NewReconciler returns a reconciler over driver.
func NewReconciler(st store.Store, driver runtime.Driver) *Reconciler {
	return &Reconciler{store: st, driver: driver, interval: 2 * time.Second}
}

// Spec is the runtime's view of a component.
func Spec(c *model.Component) runtime.ComponentSpec {
	spec := runtime.ComponentSpec{
		ComponentID: c.ID, Team: c.Team, App: c.App, Alias: c.Alias,
		Version: c.DeployVersion, Image: c.Image, Instances: c.Instances,
		Cmd: c.Cmd, Args: c.Args, Memory: c.Memory, CPU: c.CPU,
		Ports: c.Ports, Volumes: c.Volumes, Readiness: c.Readiness, Liveness: c.Liveness,
		RestartToken: c.RestartEvent,
	}
	for _, e := range c.Envs {
		// Variables of scope outer are for dependents, not for the component.
		if e.Scope != model.ScopeOuter {
			spec.Env = append(spec.Env, e.Name+"="+e.Value)
		}
	}
	return spec
}

// Apply hands c's desired state to the driver.
func (r *Reconciler) Apply(ctx context.Context, c *model.Component, progress func(string)) error {
	if c.Kind == model.KindThirdParty {
		return nil
	}
	switch {
	case c.Desired == model.DesiredRunning && c.DeployVersion > 0:
		spec := Spec(c)
		spec.Progress = progress
		reg, err := r.store.GetRegistry(ctx, c.Team, model.ImageHost(c.Image))
		if err != nil && !errors.Is(err, model.ErrNotFound) {
			return fmt.Errorf("registry settings of %s: %w", c.Image, err)
		}
		if reg != nil {
			spec.Registry = &runtime.RegistryAuth{Username: reg.Username, Password: reg.Password, PlainHTTP: reg.PlainHTTP, SkipVerify: reg.SkipVerify}
		}
		if err := r.driver.Apply(ctx, spec); err != nil {
			return fmt.Errorf("apply %s: %w", c.Alias, err)
		}
	case c.Desired == model.DesiredStopped:
		spec := Spec(c)
		spec.Instances = 0
		spec.Progress = progress
		if err := r.driver.Apply(ctx, spec); err != nil {
			return fmt.Errorf("stop %s: %w", c.Alias, err)
		}
	}
	return nil
}

// Resume re-applies every component at start-up, so that the driver adopts
// instances that kept running while berth was down.
func (r *Reconciler) Resume(ctx context.Context) error {
	comps, err := r.store.ListAllComponents(ctx)
	if err != nil {
		return fmt.Errorf("list components: %w", err)
	}
	for i := range comps {
		if err := r.Apply(ctx, &comps[i], nil); err != nil {
			slog.Error("resume component", "component", comps[i].Alias, "team", comps[i].Team, "err", err)
		}
	}
	return nil
}

// Run writes statuses until ctx ends.
func (r *Reconciler) Run(ctx context.Context) {
	t := time.NewTicker(r.interval)
	defer t.Stop()
	for {
		if err := r.syncStatuses(ctx); err != nil && ctx.Err() == nil {
			slog.Warn("sync statuses", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

func (r *Reconciler) syncStatuses(ctx context.Context) error {
	comps, err := r.store.ListAllComponents(ctx)
	if err != nil {
		return err
	}
	for i := range comps {
		c := &comps[i]
		if c.Kind == model.KindThirdParty {
			continue
		}
		status, msg, err := r.Status(ctx, c)
		if err != nil {
			slog.Warn("component status", "component", c.Alias, "err", err)
			continue
		}
		if status == c.Status && msg == c.StatusMessage {
			continue
		}
		c.Status, c.StatusMessage = status, msg
		// A stale revision means someone changed it: the next round catches up.
		if err := r.store.UpdateComponent(ctx, c); err != nil {
			slog.Debug("write component status", "component", c.Alias, "err", err)
		}
	}
	return nil
}

// Status derives c's status from the driver.
func (r *Reconciler) Status(ctx context.Context, c *model.Component) (model.ComponentStatus, string, error) {
	if c.Desired == model.DesiredUndeployed {
		return model.StatusUndeploy, "", nil
	}
	instances, err := r.driver.Instances(ctx, c.ID)
	if err != nil {
		return "", "", err
	}
	rollout, err := r.driver.Rollout(ctx, c.ID)
	if err != nil {
		return "", "", err
	}
	s, m := DeriveStatus(c, instances, rollout)
	return s, m, nil
}

// rolloutGrace is how long past a rollout's own ready timeout a task waits
// for the driver to conclude.
const rolloutGrace = 30 * time.Second

// Wait blocks until the driver has brought c to its desired state, and
// says why not if it cannot.
func (r *Reconciler) Wait(ctx context.Context, c *model.Component, progress func(string)) error {
	deadline := time.Now().Add(5*time.Minute + rolloutGrace)
	lastMsg := ""
	for {
		stopping := c.Desired == model.DesiredStopped || c.Instances == 0
		if stopping {
			instances, err := r.driver.Instances(ctx, c.ID)
			if err != nil {
				return fmt.Errorf("read instances: %w", err)
			}
			if countLive(instances) == 0 {
				progress("every instance stopped")
				return nil
			}
		} else {
			st, err := r.driver.Rollout(ctx, c.ID)
			if err != nil {
				return fmt.Errorf("read rollout: %w", err)
			}
			switch st.Phase {
			case runtime.RolloutComplete:
				progress(fmt.Sprintf("%d instance(s) of version %d ready", c.Instances, c.DeployVersion))
				return nil
			case runtime.RolloutRolledBack:
				return &Failure{Reason: firstNonEmpty(st.Reason, "RolledBack"), Err: fmt.Errorf("version %d never became ready and was rolled back: %s", st.Version, st.Message)}
			case runtime.RolloutFailed:
				return &Failure{Reason: firstNonEmpty(st.Reason, "Failed"), Err: fmt.Errorf("%s", st.Message)}
			}
			if st.Message != "" && st.Message != lastMsg {
				progress(st.Message)
				lastMsg = st.Message
			}
		}
		if time.Now().After(deadline) {
			return &Failure{Reason: "Timeout", Err: fmt.Errorf("the runtime did not reach the desired state within %s", 5*time.Minute+rolloutGrace)}
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(500 * time.Millisecond):
		}
	}
}

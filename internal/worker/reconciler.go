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
	// ThirdParty watches the endpoints of thirdparty components.
	ThirdParty *ThirdParty
	// Registry is where builds push; the runtime pulls from it with these
	// credentials. Nil when nothing is built.
	Registry *ImageRegistry
	// Hosts refuses images of registries at the host's own addresses
	// before the runtime pulls; nil checks nothing.
	Hosts *HostGuard
	// ReadyTimeout bounds a rollout: a new version not ready by then is
	// rolled back or fails. Zero is 5 minutes.
	ReadyTimeout time.Duration
}

// NewReconciler returns a reconciler over driver.
func NewReconciler(st store.Store, driver runtime.Driver) *Reconciler {
	return &Reconciler{store: st, driver: driver, interval: 2 * time.Second, ThirdParty: NewThirdParty(driver)}
}

// Addresses gives the stable inner addresses of component ports.
func (r *Reconciler) Addresses(ctx context.Context, componentID string, port int) (string, error) {
	return r.driver.ServiceAddress(ctx, componentID, port)
}

// Endpoints is the gateway's view of a port: a thirdparty component's
// healthy endpoints, or the runtime's ready instances.
func (r *Reconciler) Endpoints(componentID string, port int) []string {
	if eps, ok := r.ThirdParty.Endpoints(componentID); ok {
		return eps
	}
	return r.driver.Endpoints(componentID, port)
}

// Spec is the runtime's view of a component.
func Spec(c *model.Component) runtime.ComponentSpec {
	spec := runtime.ComponentSpec{
		ComponentID: c.ID, Team: c.Team, App: c.App, Alias: c.Alias,
		Version: c.DeployVersion, Image: c.Image, Instances: c.Instances,
		Cmd: c.Cmd, Args: c.Args, Memory: c.Memory, CPU: c.CPU,
		Ports: c.Ports, Volumes: c.Volumes, Readiness: ReadinessProbe(c), Liveness: c.Liveness,
		RestartToken: c.RestartEvent,
	}
	// The component's own variables (not those of scope outer: they are
	// for dependents) over the connection info it was last started with.
	spec.Env = envList(EffectiveEnv(c, envVars(c.InjectedEnv, "dependency")))
	return spec
}

// Apply hands c's desired state to the driver.
func (r *Reconciler) Apply(ctx context.Context, c *model.Component, progress func(string)) error {
	if c.Kind == model.KindThirdParty {
		r.ThirdParty.Apply(ctx, c)
		return nil
	}
	switch {
	case c.Gated && c.Desired == model.DesiredRunning:
		// Held back until its dependencies are ready; Run starts it.
	case c.Desired == model.DesiredRunning && c.DeployVersion > 0:
		spec := Spec(c)
		spec.Progress, spec.ReadyTimeout = progress, r.ReadyTimeout
		if err := r.Hosts.checkImage(ctx, c.Image); err != nil {
			return fmt.Errorf("apply %s: %w", c.Alias, err)
		}
		reg, err := r.store.GetRegistry(ctx, c.Team, model.ImageHost(c.Image))
		if err != nil && !errors.Is(err, model.ErrNotFound) {
			return fmt.Errorf("registry settings of %s: %w", c.Image, err)
		}
		if reg != nil {
			spec.Registry = &runtime.RegistryAuth{Username: reg.Username, Password: reg.Password, PlainHTTP: reg.PlainHTTP, SkipVerify: reg.SkipVerify}
		}
		if r.Registry != nil {
			// The team's own pull credential, never the internal one, and
			// only for an image the team may use.
			auth, err := r.Registry.pullAuth(c.Team, c.Image)
			if err != nil {
				return fmt.Errorf("apply %s: %w", c.Alias, err)
			}
			if auth != nil {
				spec.Registry = auth
			}
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
	r.ThirdParty.Sync(ctx, comps)
	graphs, err := r.teamGraphs(ctx, comps)
	if err != nil {
		return err
	}
	for i := range comps {
		c := &comps[i]
		var status model.ComponentStatus
		var msg string
		pending := c.RestartPending
		switch {
		case c.Kind == model.KindThirdParty:
			status, msg = r.ThirdParty.Status(c)
		case c.Gated:
			status, msg, err = r.release(ctx, c)
		case c.BuildState == "building":
			status, msg = model.StatusBuilding, c.BuildMessage
		case c.BuildState == "failed":
			status, msg = model.StatusBuildFailure, buildFailureMessage(c)
		default:
			status, msg, err = r.Status(ctx, c)
			if g := graphs[c.Team]; err == nil && g.hasDeps[c.Alias] && c.Desired == model.DesiredRunning && c.DeployVersion > 0 {
				pending, err = r.restartPending(ctx, g, c)
			}
		}
		if err != nil {
			slog.Warn("component status", "component", c.Alias, "err", err)
			continue
		}
		if status == c.Status && msg == c.StatusMessage && pending == c.RestartPending {
			continue
		}
		c.Status, c.StatusMessage, c.RestartPending = status, msg, pending
		// A stale revision means someone changed it: the next round catches up.
		if err := r.store.UpdateComponent(ctx, c); err != nil {
			slog.Debug("write component status", "component", c.Alias, "err", err)
		}
	}
	return nil
}

// dependents marks the components that depend on another.
// teamGraph is a team's dependencies and components, read once per round.
type teamGraph struct {
	deps    []model.Dependency
	byAlias map[string]*model.Component
	hasDeps map[string]bool // aliases that depend on another
}

func (g *teamGraph) lookup(alias string) (*model.Component, error) {
	if c, ok := g.byAlias[alias]; ok {
		return c, nil
	}
	return nil, fmt.Errorf("component %s: %w", alias, model.ErrNotFound)
}

// teamGraphs reads each team's dependencies once and indexes comps.
func (r *Reconciler) teamGraphs(ctx context.Context, comps []model.Component) (map[string]*teamGraph, error) {
	out := map[string]*teamGraph{}
	for i := range comps {
		c := &comps[i]
		g := out[c.Team]
		if g == nil {
			deps, err := r.store.ListDependencies(ctx, c.Team)
			if err != nil {
				return nil, err
			}
			g = &teamGraph{deps: deps, byAlias: map[string]*model.Component{}, hasDeps: map[string]bool{}}
			for _, d := range deps {
				g.hasDeps[d.From] = true
			}
			out[c.Team] = g
		}
		g.byAlias[c.Alias] = c
	}
	return out, nil
}

// release starts a component held back by its dependencies once they are
// all ready; until then its status is waiting and names them.
func (r *Reconciler) release(ctx context.Context, c *model.Component) (model.ComponentStatus, string, error) {
	waits, err := waitingFor(ctx, r.store, c)
	if err != nil {
		return "", "", err
	}
	if len(waits) > 0 {
		return model.StatusWaiting, waitingMessage(waits), nil
	}
	env, err := ConnectionEnv(ctx, r.store, r.Addresses, c)
	if err != nil {
		return "", "", err
	}
	c.Gated, c.InjectedEnv, c.RestartPending = false, envList(env), ""
	c.Status, c.StatusMessage = model.StatusStarting, "its dependencies are ready; starting"
	if err := r.store.UpdateComponent(ctx, c); err != nil {
		return "", "", fmt.Errorf("release %s: %w", c.Alias, err)
	}
	slog.Info("dependencies ready, starting", "team", c.Team, "component", c.Alias)
	if err := r.Apply(ctx, c, nil); err != nil {
		return "", "", err
	}
	return c.Status, c.StatusMessage, nil
}

// restartPending compares the connection info c runs with to what its
// dependencies offer now.
func (r *Reconciler) restartPending(ctx context.Context, g *teamGraph, c *model.Component) (string, error) {
	env, err := connectionEnv(ctx, g.deps, g.lookup, r.Addresses, c)
	if err != nil {
		return "", err
	}
	return pendingRestart(c.InjectedEnv, envList(env)), nil
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

// readyTimeout bounds a rollout (the driver's default when unset).
func (r *Reconciler) readyTimeout() time.Duration {
	if r.ReadyTimeout > 0 {
		return r.ReadyTimeout
	}
	return 5 * time.Minute
}

// rolloutGrace is how long past a rollout's own ready timeout a task waits
// for the driver to conclude.
const rolloutGrace = 30 * time.Second

// Wait blocks until the driver has brought c to its desired state, and
// says why not if it cannot.
func (r *Reconciler) Wait(ctx context.Context, c *model.Component, progress func(string)) error {
	return r.wait(ctx, c, progress, nil)
}

// wait is Wait for an operation that replaces the instances in before.
func (r *Reconciler) wait(ctx context.Context, c *model.Component, progress func(string), before map[string]bool) error {
	deadline := time.Now().Add(r.readyTimeout() + rolloutGrace)
	lastMsg := ""
	watch := newOutcome(c, progress, before)
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
				return r.settle(ctx, c, progress)
			case runtime.RolloutRolledBack:
				return &Failure{Reason: firstNonEmpty(st.Reason, "RolledBack"), Err: fmt.Errorf("version %d never became ready and was rolled back: %s", st.Version, st.Message)}
			case runtime.RolloutFailed:
				return &Failure{Reason: firstNonEmpty(st.Reason, "Failed"), Err: fmt.Errorf("%s", st.Message)}
			}
			if st.Message != "" && st.Message != lastMsg {
				progress(st.Message)
				lastMsg = st.Message
			}
			instances, err := r.driver.Instances(ctx, c.ID)
			if err != nil {
				return fmt.Errorf("read instances: %w", err)
			}
			if err := watch.check(instances); err != nil {
				return err
			}
		}
		if time.Now().After(deadline) {
			return &Failure{Reason: "Timeout", Err: fmt.Errorf("the runtime did not reach the desired state within %s", r.readyTimeout()+rolloutGrace)}
		}
		if err := pause(ctx, pollInterval); err != nil {
			return err
		}
	}
}

// buildFailureMessage says why the last build failed and what still runs.
func buildFailureMessage(c *model.Component) string {
	if c.DeployVersion > 0 && c.Desired == model.DesiredRunning {
		return fmt.Sprintf("%s (version %d keeps running)", c.BuildMessage, c.DeployVersion)
	}
	return c.BuildMessage
}

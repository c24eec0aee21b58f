package worker

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/berth-platform/berth/internal/model"
	"github.com/berth-platform/berth/internal/store"
)

// Component task types; the API enqueues them, one event each.
const (
	TaskDeploy   = "deploy"
	TaskStart    = "start"
	TaskStop     = "stop"
	TaskRestart  = "restart"
	TaskScale    = "scale"
	TaskRollback = "rollback"
)

// ComponentTask is the payload of every component task.
type ComponentTask struct {
	ComponentID string `json:"component_id"`
	Image       string `json:"image,omitempty"`     // deploy: a new image
	Instances   *int   `json:"instances,omitempty"` // scale
	Version     int64  `json:"version,omitempty"`   // rollback
}

// ComponentTarget is the event target of a component.
func ComponentTarget(c *model.Component) string {
	return fmt.Sprintf("component:%s/%s/%s", c.Team, c.App, c.Alias)
}

// ComponentTasks applies component operations to the desired state.
type ComponentTasks struct {
	store store.Store
	// Runtime runs what the tasks decide; nil when no engine is attached.
	Runtime *Reconciler
	// StepDelay pauses between the steps of a task. Zero in production; the
	// crash-recovery tests set it so that a kill lands mid-task.
	StepDelay time.Duration
}

// NewComponentTasks returns the component task handlers over st.
func NewComponentTasks(st store.Store) *ComponentTasks { return &ComponentTasks{store: st} }

// Register adds the handlers to r.
func (ct *ComponentTasks) Register(r *Runner) {
	r.Handle(TaskDeploy, ct.deploy)
	r.Handle(TaskStart, ct.start)
	r.Handle(TaskStop, ct.stop)
	r.Handle(TaskRestart, ct.restart)
	r.Handle(TaskScale, ct.scale)
	r.Handle(TaskRollback, ct.rollback)
	r.Handle(TaskAppStart, ct.appStart)
	r.Handle(TaskAppStop, ct.appStop)
}

func (ct *ComponentTasks) pause(ctx context.Context) error {
	if ct.StepDelay == 0 {
		return nil
	}
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(ct.StepDelay):
		return nil
	}
}

func payload(t *model.Task) (ComponentTask, error) {
	var p ComponentTask
	if err := json.Unmarshal(t.Payload, &p); err != nil {
		return p, &Failure{Reason: "BadTask", Err: fmt.Errorf("read task payload: %w", err)}
	}
	return p, nil
}

// mutate applies fn to the stored component, retrying when another writer
// got in between, and derives the status from the new desired state.
func (ct *ComponentTasks) mutate(ctx context.Context, id string, fn func(c *model.Component) error) (*model.Component, error) {
	for attempt := 0; attempt < 20; attempt++ {
		c, err := ct.store.GetComponentByID(ctx, id)
		if err != nil {
			if errors.Is(err, model.ErrNotFound) {
				return nil, &Failure{Reason: "ComponentDeleted", Err: fmt.Errorf("the component was deleted before the operation ran")}
			}
			return nil, fmt.Errorf("load component: %w", err)
		}
		if err := fn(c); err != nil {
			return nil, err
		}
		switch {
		case ct.Runtime == nil:
			c.Status, c.StatusMessage = DesiredStatus(c)
		case c.Gated && c.Desired == model.DesiredRunning:
			// Held back: fn wrote the waiting status and its message.
		default:
			c.Status, c.StatusMessage = transitionStatus(c)
		}
		err = ct.store.UpdateComponent(ctx, c)
		if errors.Is(err, model.ErrStale) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("save component: %w", err)
		}
		return c, nil
	}
	return nil, fmt.Errorf("save component: too many concurrent changes, try again")
}

// transitionStatus is the status between an operation and the runtime's
// first report on it.
func transitionStatus(c *model.Component) (model.ComponentStatus, string) {
	switch {
	case c.BuildState == "building":
		return model.StatusBuilding, c.BuildMessage
	case c.BuildState == "failed":
		return model.StatusBuildFailure, buildFailureMessage(c)
	case c.Desired == model.DesiredUndeployed:
		return model.StatusUndeploy, ""
	case c.Desired == model.DesiredStopped || c.Instances == 0:
		return model.StatusStopping, ""
	case c.Status == model.StatusRunning || c.Status == model.StatusUpgrade:
		return model.StatusUpgrade, ""
	default:
		return model.StatusStarting, ""
	}
}

// DesiredStatus is the status a component has when no runtime engine
// reports on it: what was asked, not what runs.
func DesiredStatus(c *model.Component) (model.ComponentStatus, string) {
	switch c.Desired {
	case model.DesiredStopped:
		return model.StatusClosed, ""
	case model.DesiredRunning:
		if c.Instances == 0 {
			return model.StatusClosed, "scaled to 0 instances"
		}
		return model.StatusUnknown, "no runtime engine reports on this component"
	default:
		return model.StatusUndeploy, ""
	}
}

func (ct *ComponentTasks) deploy(ctx context.Context, t *model.Task, log *TaskLog) error {
	p, err := payload(t)
	if err != nil {
		return err
	}
	c, err := ct.store.GetComponentByID(ctx, p.ComponentID)
	if err != nil {
		return fmt.Errorf("load component: %w", err)
	}
	log.Printf("deploy", "Deploying %s (%s)", c.Alias, c.Kind)
	var version *model.Version
	switch c.Kind {
	case model.KindImage:
		image := c.Image
		if p.Image != "" {
			image = p.Image
		}
		version, err = ct.imageVersion(ctx, t, c, image)
		if err != nil {
			return err
		}
		log.Printf("deploy", "version %d: image %s", version.Number, version.Image)
	case model.KindSource:
		versions, err := ct.store.ListVersions(ctx, c.ID)
		if err != nil {
			return fmt.Errorf("list versions: %w", err)
		}
		for i := range versions {
			if versions[i].Status == model.VersionSuccess {
				version = &versions[i]
				break
			}
		}
		if version == nil {
			return &Failure{Reason: "NoVersion", Err: fmt.Errorf("nothing to deploy: component %s has no successful build yet; build it first", c.Alias)}
		}
		log.Printf("deploy", "version %d: image %s", version.Number, version.Image)
	case model.KindThirdParty:
		log.Printf("deploy", "%d static endpoint(s)", len(c.Endpoints))
	}
	if err := ct.pause(ctx); err != nil {
		return err
	}
	c, err = ct.mutate(ctx, c.ID, func(c *model.Component) error {
		if version != nil {
			c.DeployVersion, c.Image = version.Number, version.Image
		}
		c.Desired = model.DesiredRunning
		return nil
	})
	if err != nil {
		return err
	}
	log.Printf("deploy", "desired state: %d instance(s) of version %d", c.Instances, c.DeployVersion)
	return ct.realize(ctx, c, log, "deploy")
}

// imageVersion finds the version this deploy task created on an earlier
// attempt, or creates it, so that a resumed deploy does not add a second one.
func (ct *ComponentTasks) imageVersion(ctx context.Context, t *model.Task, c *model.Component, image string) (*model.Version, error) {
	versions, err := ct.store.ListVersions(ctx, c.ID)
	if err != nil {
		return nil, fmt.Errorf("list versions: %w", err)
	}
	for i := range versions {
		if versions[i].EventID == t.EventID {
			return &versions[i], nil
		}
	}
	v := &model.Version{ComponentID: c.ID, Image: image, Status: model.VersionSuccess, EventID: t.EventID, CreatedAt: time.Now().UTC()}
	if err := ct.store.CreateVersion(ctx, v); err != nil {
		return nil, fmt.Errorf("record version: %w", err)
	}
	return v, nil
}

// change is every operation that only edits the desired state: fn edits
// the component (it may run again if another writer gets in between) and
// says what it did; then the runtime is asked to make it so.
func (ct *ComponentTasks) change(ctx context.Context, t *model.Task, log *TaskLog, stage string,
	fn func(c *model.Component, p ComponentTask) (string, error)) error {
	p, err := payload(t)
	if err != nil {
		return err
	}
	if err := ct.pause(ctx); err != nil {
		return err
	}
	var did string
	c, err := ct.mutate(ctx, p.ComponentID, func(c *model.Component) error {
		did, err = fn(c, p)
		return err
	})
	if err != nil {
		return err
	}
	log.Printf(stage, "%s", did)
	return ct.realize(ctx, c, log, stage)
}

func neverDeployed(c *model.Component) error {
	if c.DeployVersion == 0 && c.Kind != model.KindThirdParty {
		return &Failure{Reason: "NotDeployed", Err: fmt.Errorf("component %s was never deployed; deploy it first", c.Alias)}
	}
	return nil
}

func (ct *ComponentTasks) start(ctx context.Context, t *model.Task, log *TaskLog) error {
	return ct.change(ctx, t, log, "start", func(c *model.Component, _ ComponentTask) (string, error) {
		if err := neverDeployed(c); err != nil {
			return "", err
		}
		c.Desired = model.DesiredRunning
		return fmt.Sprintf("Starting %s: %d instance(s) of version %d", c.Alias, c.Instances, c.DeployVersion), nil
	})
}

func (ct *ComponentTasks) stop(ctx context.Context, t *model.Task, log *TaskLog) error {
	return ct.change(ctx, t, log, "stop", func(c *model.Component, _ ComponentTask) (string, error) {
		if c.Desired != model.DesiredUndeployed {
			c.Desired = model.DesiredStopped
		}
		c.Gated = false
		return "Stopping " + c.Alias, nil
	})
}

func (ct *ComponentTasks) restart(ctx context.Context, t *model.Task, log *TaskLog) error {
	return ct.change(ctx, t, log, "restart", func(c *model.Component, _ ComponentTask) (string, error) {
		if err := neverDeployed(c); err != nil {
			return "", err
		}
		// The restart generation is the event: a resumed task must not
		// restart twice.
		c.RestartEvent = t.EventID
		c.Desired = model.DesiredRunning
		return "Restarting " + c.Alias, nil
	})
}

func (ct *ComponentTasks) scale(ctx context.Context, t *model.Task, log *TaskLog) error {
	return ct.change(ctx, t, log, "scale", func(c *model.Component, p ComponentTask) (string, error) {
		if p.Instances == nil {
			return "", &Failure{Reason: "BadTask", Err: fmt.Errorf("scale needs a number of instances")}
		}
		from := c.Instances
		c.Instances = *p.Instances
		return fmt.Sprintf("Scaled %s from %d to %d instance(s)", c.Alias, from, c.Instances), nil
	})
}

func (ct *ComponentTasks) rollback(ctx context.Context, t *model.Task, log *TaskLog) error {
	return ct.change(ctx, t, log, "rollback", func(c *model.Component, p ComponentTask) (string, error) {
		v, err := ct.store.GetVersion(ctx, c.ID, p.Version)
		if errors.Is(err, model.ErrNotFound) {
			return "", &Failure{Reason: "NoVersion", Err: fmt.Errorf("version %d does not exist (or was collected); list versions to pick one", p.Version)}
		}
		if err != nil {
			return "", fmt.Errorf("load version: %w", err)
		}
		if v.Status != model.VersionSuccess {
			return "", &Failure{Reason: "BadVersion", Err: fmt.Errorf("version %d is %s; only a successful version can run", v.Number, v.Status)}
		}
		c.DeployVersion, c.Image, c.Desired = v.Number, v.Image, model.DesiredRunning
		return fmt.Sprintf("Rolled %s back to version %d (%s)", c.Alias, v.Number, v.Image), nil
	})
}

// realize hands the new desired state to the runtime and waits until it
// holds, so that the event ends with the outcome and not with the request.
func (ct *ComponentTasks) realize(ctx context.Context, c *model.Component, log *TaskLog, stage string) error {
	if err := ct.pause(ctx); err != nil {
		return err
	}
	if ct.Runtime == nil {
		return nil
	}
	was, err := ct.Runtime.snapshot(ctx, c)
	if err != nil {
		return err
	}
	c, started, err := ct.launch(ctx, c, log, stage)
	if err != nil || !started {
		return err
	}
	if c.Kind == model.KindThirdParty || c.DeployVersion == 0 {
		return nil
	}
	progress := func(line string) { log.Printf(stage, "%s", line) }
	err = ct.Runtime.wait(ctx, c, progress, was.ids)
	if unhealthy(err) && was.serving > 0 && was.serving != c.DeployVersion && c.Desired == model.DesiredRunning {
		return ct.rollBackTo(ctx, c, was.serving, err, log, stage)
	}
	return err
}

// rollBackTo returns c to the version that served before a rollout whose
// instances failed, and fails the task with the instances' reason.
func (ct *ComponentTasks) rollBackTo(ctx context.Context, c *model.Component, serving int64, cause error, log *TaskLog, stage string) error {
	failed := c.DeployVersion
	v, err := ct.store.GetVersion(ctx, c.ID, serving)
	if err != nil {
		return fmt.Errorf("%w; rolling back to version %d: load version: %w", cause, serving, err)
	}
	log.Printf(stage, "version %d failed; rolling back to version %d (%s), which was serving", failed, v.Number, v.Image)
	c, err = ct.mutate(ctx, c.ID, func(c *model.Component) error {
		if c.DeployVersion == failed {
			c.DeployVersion, c.Image = v.Number, v.Image
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("%w; rolling back to version %d: %w", cause, serving, err)
	}
	if err := ct.Runtime.Apply(ctx, c, func(line string) { log.Printf(stage, "%s", line) }); err != nil {
		return fmt.Errorf("%w; rolling back to version %d: %w", cause, serving, err)
	}
	var f *Failure
	errors.As(cause, &f)
	return &Failure{Reason: f.Reason, Err: fmt.Errorf("%w\nrolled back to version %d", f.Err, serving)}
}

// launch applies c's desired state. A component to run whose dependencies
// are not ready is held back instead (status waiting, started by the
// reconciler once they are): started is false then.
func (ct *ComponentTasks) launch(ctx context.Context, c *model.Component, log *TaskLog, stage string) (*model.Component, bool, error) {
	progress := func(line string) { log.Printf(stage, "%s", line) }
	if c.Desired == model.DesiredRunning && c.Kind != model.KindThirdParty {
		waits, err := waitingFor(ctx, ct.store, c)
		if err != nil {
			return c, false, err
		}
		if len(waits) > 0 {
			c, err = ct.mutate(ctx, c.ID, func(c *model.Component) error {
				c.Gated, c.Status, c.StatusMessage = true, model.StatusWaiting, waitingMessage(waits)
				return nil
			})
			if err != nil {
				return c, false, err
			}
			log.Printf(stage, "%s is waiting (等待启动) for its dependencies to be ready: %s. It starts by itself once they are.", c.Alias, strings.Join(waits, ", "))
			return c, false, nil
		}
		// Every operation that replaces instances anyway takes the
		// dependencies' connection info as it is now; a scale keeps what
		// the running instances have, so it does not replace them.
		if stage != "scale" || c.Gated {
			env, err := ConnectionEnv(ctx, ct.store, ct.Runtime.Addresses, c)
			if err != nil {
				return c, false, err
			}
			c, err = ct.mutate(ctx, c.ID, func(c *model.Component) error {
				c.Gated, c.InjectedEnv, c.RestartPending = false, envList(env), ""
				return nil
			})
			if err != nil {
				return c, false, err
			}
			if len(env) > 0 {
				names := make([]string, len(env))
				for i, v := range env {
					names[i] = v.Name
				}
				log.Printf(stage, "connection info from dependencies: %s", strings.Join(names, ", "))
			}
		}
	}
	if err := ct.Runtime.Apply(ctx, c, progress); err != nil {
		return c, false, &Failure{Reason: "ApplyFailed", Err: err}
	}
	return c, true, nil
}

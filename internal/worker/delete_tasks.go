package worker

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/berth-platform/berth/internal/model"
	"github.com/berth-platform/berth/internal/store"
)

// Delete task types. A team and an app delete each of their components
// through the same steps as a component delete, then their own rows; every
// step can run twice, so a delete cut short by a crash resumes.
const (
	TaskComponentDelete = "component_delete"
	TaskAppDelete       = "app_delete"
	TaskTeamDelete      = "team_delete"
)

// DeleteTask is the payload of a delete task.
type DeleteTask struct {
	Team        string `json:"team"`
	App         string `json:"app,omitempty"`
	ComponentID string `json:"component_id,omitempty"`
	// KeepVolumes leaves the volumes' files on disk (kept on purpose).
	KeepVolumes bool `json:"keep_volumes,omitempty"`
}

// TeamTarget is the event target of a team.
func TeamTarget(team string) string { return "team:" + team }

// deleteRounds bounds how often a team or app delete looks again for
// components created while it ran.
const deleteRounds = 5

// settleWait bounds how long a delete waits for a cancelled operation of
// a component to end.
const settleWait = 2 * time.Minute

// Deletes removes what deleted teams, apps and components owned: their
// instances, service addresses, logs and volumes (through the runtime),
// their rows (and with them gateway rules, dependencies, versions), the
// builds' checkouts and uploads and the hub's repositories.
type Deletes struct {
	store store.Store
	tasks *ComponentTasks
	// Forget removes what builds keep of a component (its checkout and
	// uploads); nil when nothing builds.
	Forget func(componentID string)
	// DeleteRepositories removes the hub repositories named prefix or under
	// prefix/; nil when there is no hub.
	DeleteRepositories func(ctx context.Context, prefix string) ([]string, error)
	// Changed asks the gateway to drop the deleted routes now rather than
	// at its next periodic sync; may be nil.
	Changed func()
	// Cancel stops an operation running in this server by its event id
	// (the runner's); nil leaves them running.
	Cancel func(eventID string) bool
}

// NewDeletes returns the delete handlers; the runtime is tasks.Runtime.
func NewDeletes(st store.Store, tasks *ComponentTasks) *Deletes {
	return &Deletes{store: st, tasks: tasks}
}

// Register adds the handlers to r.
func (d *Deletes) Register(r *Runner) {
	r.Handle(TaskComponentDelete, d.deleteComponentTask)
	r.Handle(TaskAppDelete, d.deleteAppTask)
	r.Handle(TaskTeamDelete, d.deleteTeamTask)
}

func deletePayload(t *model.Task) (DeleteTask, error) {
	var p DeleteTask
	if err := json.Unmarshal(t.Payload, &p); err != nil {
		return p, &Failure{Reason: "BadTask", Err: fmt.Errorf("read task payload: %w", err)}
	}
	return p, nil
}

func (d *Deletes) deleteComponentTask(ctx context.Context, t *model.Task, log *TaskLog) error {
	p, err := deletePayload(t)
	if err != nil {
		return err
	}
	c, err := d.store.GetComponentByID(ctx, p.ComponentID)
	if errors.Is(err, model.ErrNotFound) {
		log.Printf("delete", "the component is already deleted")
		return nil
	}
	if err != nil {
		return fmt.Errorf("load component: %w", err)
	}
	if err := d.removeComponent(ctx, c, p.KeepVolumes, log); err != nil {
		return err
	}
	d.changed()
	return nil
}

func (d *Deletes) deleteAppTask(ctx context.Context, t *model.Task, log *TaskLog) error {
	p, err := deletePayload(t)
	if err != nil {
		return err
	}
	for round := 0; round < deleteRounds; round++ {
		if err := d.removeComponents(ctx, p.Team, p.App, p.KeepVolumes, log); err != nil {
			return err
		}
		err := d.store.DeleteApp(ctx, p.Team, p.App)
		switch {
		case errors.Is(err, model.ErrConflict):
			continue // a component was created meanwhile: delete it too
		case errors.Is(err, model.ErrNotFound):
			log.Printf("delete", "app %s is already deleted", p.App)
		case err != nil:
			return fmt.Errorf("delete app %s: %w", p.App, err)
		default:
			log.Printf("delete", "app %s deleted", p.App)
		}
		d.changed()
		return nil
	}
	return fmt.Errorf("app %s keeps getting new components; stop creating them and delete it again", p.App)
}

func (d *Deletes) deleteTeamTask(ctx context.Context, t *model.Task, log *TaskLog) error {
	p, err := deletePayload(t)
	if err != nil {
		return err
	}
	for round := 0; round < deleteRounds; round++ {
		if err := d.removeComponents(ctx, p.Team, "", p.KeepVolumes, log); err != nil {
			return err
		}
		left, err := d.store.ListComponents(ctx, p.Team, "")
		if err != nil {
			return fmt.Errorf("list components: %w", err)
		}
		if len(left) > 0 {
			continue // created meanwhile: delete them too
		}
		if err := d.removeRepositories(ctx, p.Team, log); err != nil {
			return err
		}
		if err := d.releaseTeam(ctx, p.Team, log); err != nil {
			return err
		}
		err = d.store.DeleteTeam(ctx, p.Team)
		switch {
		case errors.Is(err, model.ErrNotFound):
			log.Printf("delete", "team %s is already deleted", p.Team)
		case err != nil:
			return fmt.Errorf("delete team %s: %w", p.Team, err)
		default:
			log.Printf("delete", "team %s deleted with its apps, members, tokens, rules, certificates and registries", p.Team)
		}
		d.changed()
		return nil
	}
	return fmt.Errorf("team %s keeps getting new components; stop creating them and delete it again", p.Team)
}

// removeComponents removes the components of a team (app "" means every
// app), dependents before what they depend on.
func (d *Deletes) removeComponents(ctx context.Context, team, app string, keepVolumes bool, log *TaskLog) error {
	comps, err := d.store.ListComponents(ctx, team, app)
	if err != nil {
		return fmt.Errorf("list components: %w", err)
	}
	deps, err := d.store.ListDependencies(ctx, team)
	if err != nil {
		return fmt.Errorf("list dependencies: %w", err)
	}
	order := startOrder(comps, deps)
	slices.Reverse(order)
	for i := range order {
		if err := d.tasks.pause(ctx); err != nil {
			return err
		}
		if err := d.removeComponent(ctx, &order[i], keepVolumes, log); err != nil {
			return err
		}
	}
	return nil
}

// removeComponent is the one path every delete takes for a component: stop
// and forget its instances and service addresses, then its row, then what
// builds and the hub keep of it.
func (d *Deletes) removeComponent(ctx context.Context, c *model.Component, keepVolumes bool, log *TaskLog) error {
	if err := d.settle(ctx, c, log); err != nil {
		return err
	}
	if err := d.stopForGood(ctx, c, keepVolumes); err != nil {
		return err
	}
	err := d.store.DeleteComponent(ctx, c.Team, c.App, c.Alias)
	if err != nil && !errors.Is(err, model.ErrNotFound) {
		return fmt.Errorf("delete component %s: %w", c.Alias, err)
	}
	// Once more without the row: a reader that asked for a service address
	// in between (the component view, a dependent's connection info) had
	// the runtime allocate it again.
	if err := d.removeFromRuntime(ctx, c, keepVolumes); err != nil {
		return err
	}
	if d.Forget != nil {
		d.Forget(c.ID)
	}
	if c.Kind == model.KindSource {
		// Its builds pushed to <team>/<alias>; a new component of that
		// alias must not find them.
		if err := d.removeRepositories(ctx, c.Team+"/"+c.Alias, log); err != nil {
			return err
		}
	}
	what := "its instances, service addresses, logs and volumes"
	if keepVolumes {
		what = "its instances, service addresses and logs (volumes kept)"
	}
	log.Printf("delete", "%s deleted with %s", c.Alias, what)
	return nil
}

// settle cancels the component's operations running in this server but
// the delete itself (a team or app delete runs beside them: a build would
// push to the repository and write the checkout the delete removes, a
// deploy would start instances again) and waits for them to end.
func (d *Deletes) settle(ctx context.Context, c *model.Component, log *TaskLog) error {
	if d.Cancel == nil {
		return nil
	}
	target := ComponentTarget(c)
	evs, err := d.store.ListEvents(ctx, model.EventFilter{Team: c.Team, Target: target, Status: model.EventRunning, Limit: 100})
	if err != nil {
		return fmt.Errorf("list the operations of %s: %w", c.Alias, err)
	}
	var cancelled []string
	for _, ev := range evs {
		// Target is a prefix filter: component "app" must not cancel "app2".
		// Another delete of the component ends as this one would.
		if ev.Target == target && ev.ID != log.eventID && ev.Type != TaskComponentDelete && d.Cancel(ev.ID) {
			cancelled = append(cancelled, ev.ID)
		}
	}
	if len(cancelled) == 0 {
		return nil
	}
	log.Printf("delete", "%s: cancelled its running operation(s) %v", c.Alias, cancelled)
	deadline := time.Now().Add(settleWait)
	for _, id := range cancelled {
		for {
			ev, err := d.store.GetEvent(ctx, id)
			if err != nil || ev.Status != model.EventRunning {
				break
			}
			if time.Now().After(deadline) {
				return fmt.Errorf("%s: operation %s did not end within %s of being cancelled; delete again once it has", c.Alias, id, settleWait)
			}
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(200 * time.Millisecond):
			}
		}
	}
	return nil
}

// stopForGood makes sure nothing restarts c (a gated component would be
// started by the reconciler once its dependencies are ready), then removes
// it from the runtime.
func (d *Deletes) stopForGood(ctx context.Context, c *model.Component, keepVolumes bool) error {
	rt := d.tasks.Runtime
	if rt == nil {
		return nil
	}
	stopped, err := d.tasks.mutate(ctx, c.ID, func(c *model.Component) error {
		c.Desired, c.Gated = model.DesiredStopped, false
		return nil
	})
	var f *Failure
	switch {
	case errors.As(err, &f) && f.Reason == "ComponentDeleted":
		stopped = c // the row went first (a resumed delete): the runtime may still run it
	case err != nil:
		return fmt.Errorf("stop %s: %w", c.Alias, err)
	}
	if c.Kind == model.KindThirdParty {
		stopped.Desired = model.DesiredStopped
		rt.ThirdParty.Apply(ctx, stopped) // retires the endpoint watch
	}
	return d.removeFromRuntime(ctx, c, keepVolumes)
}

// removeFromRuntime stops c's instances and frees its service addresses,
// logs and, unless kept, volumes.
func (d *Deletes) removeFromRuntime(ctx context.Context, c *model.Component, keepVolumes bool) error {
	if d.tasks.Runtime == nil {
		return nil
	}
	if err := d.tasks.Runtime.driver.Remove(ctx, c.ID, !keepVolumes); err != nil {
		return fmt.Errorf("remove the instances of %s: %w", c.Alias, err)
	}
	return nil
}

// teamReleaser is a runtime that holds something of a team's beyond its
// components on the machine (the containerd driver: the team's network
// and its address block) and gives it back once the team is gone.
type teamReleaser interface {
	ReleaseTeam(ctx context.Context, team string) error
}

// releaseTeam gives back what the runtime held for the team, once its
// components are removed and before its row goes (so a failure leaves a
// team to delete again).
func (d *Deletes) releaseTeam(ctx context.Context, team string, log *TaskLog) error {
	if d.tasks.Runtime == nil {
		return nil
	}
	r, ok := d.tasks.Runtime.driver.(teamReleaser)
	if !ok {
		return nil
	}
	if err := r.ReleaseTeam(ctx, team); err != nil {
		return fmt.Errorf("release what the runtime holds for team %s: %w", team, err)
	}
	log.Printf("delete", "the runtime released team %s's network", team)
	return nil
}

func (d *Deletes) removeRepositories(ctx context.Context, prefix string, log *TaskLog) error {
	if d.DeleteRepositories == nil {
		return nil
	}
	removed, err := d.DeleteRepositories(ctx, prefix)
	if err != nil {
		return fmt.Errorf("delete the hub repositories of %s: %w", prefix, err)
	}
	if len(removed) > 0 {
		log.Printf("delete", "hub repositories deleted: %v", removed)
	}
	return nil
}

func (d *Deletes) changed() {
	if d.Changed != nil {
		d.Changed()
	}
}

package worker

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/berth-platform/berth/internal/model"
)

// App task types: start or stop every component of an app, in dependency
// order.
const (
	TaskAppStart = "app_start"
	TaskAppStop  = "app_stop"
)

// AppTask is the payload of an app task.
type AppTask struct {
	Team string `json:"team"`
	App  string `json:"app"`
}

// AppTarget is the event target of an app.
func AppTarget(team, app string) string { return "app:" + team + "/" + app }

// appWait bounds how long an app start waits for its components.
const appWait = 5 * time.Minute

func (ct *ComponentTasks) appComponents(ctx context.Context, t *model.Task) (AppTask, []model.Component, error) {
	var p AppTask
	if err := json.Unmarshal(t.Payload, &p); err != nil {
		return p, nil, &Failure{Reason: "BadTask", Err: fmt.Errorf("read task: %w", err)}
	}
	comps, err := ct.store.ListComponents(ctx, p.Team, p.App)
	if err != nil {
		return p, nil, fmt.Errorf("list components: %w", err)
	}
	deps, err := ct.store.ListDependencies(ctx, p.Team)
	if err != nil {
		return p, nil, fmt.Errorf("list dependencies: %w", err)
	}
	return p, startOrder(comps, deps), nil
}

func aliases(comps []model.Component) string {
	names := make([]string, len(comps))
	for i, c := range comps {
		names[i] = c.Alias
	}
	return strings.Join(names, " → ")
}

// appStart starts the app's components, dependencies first: each starts
// once what it depends on is ready, so the event ends when all run.
func (ct *ComponentTasks) appStart(ctx context.Context, t *model.Task, log *TaskLog) error {
	p, order, err := ct.appComponents(ctx, t)
	if err != nil {
		return err
	}
	log.Printf("start", "Starting app %s in dependency order: %s", p.App, aliases(order))
	var started []string
	for _, c := range order {
		if c.DeployVersion == 0 && c.Kind != model.KindThirdParty {
			log.Printf("start", "%s was never deployed; skipped (deploy it first)", c.Alias)
			continue
		}
		started = append(started, c.ID)
		if c.Desired == model.DesiredRunning && !c.Gated {
			continue
		}
		cp, err := ct.mutate(ctx, c.ID, func(c *model.Component) error {
			c.Desired = model.DesiredRunning
			return nil
		})
		if err != nil {
			return err
		}
		if ct.Runtime == nil {
			continue
		}
		if _, _, err := ct.launch(ctx, cp, log, "start"); err != nil {
			return fmt.Errorf("start %s: %w", c.Alias, err)
		}
	}
	if len(started) == 0 {
		return &Failure{Reason: "NothingToStart", Err: fmt.Errorf("no component of app %s was ever deployed; deploy them first", p.App)}
	}
	if ct.Runtime == nil {
		return nil
	}
	return ct.awaitRunning(ctx, started, log)
}

// awaitRunning logs each component as it becomes ready and fails, naming
// every one that did not and why, if they are not all ready in time.
func (ct *ComponentTasks) awaitRunning(ctx context.Context, ids []string, log *TaskLog) error {
	deadline := time.Now().Add(appWait)
	ready := map[string]bool{}
	for {
		var behind []string
		for _, id := range ids {
			if ready[id] {
				continue
			}
			c, err := ct.store.GetComponentByID(ctx, id)
			if err != nil {
				return fmt.Errorf("read component: %w", err)
			}
			if c.Status == model.StatusRunning {
				ready[id] = true
				log.Printf("start", "%s is running", c.Alias)
				continue
			}
			b := fmt.Sprintf("%s is %s", c.Alias, c.Status)
			if c.StatusMessage != "" {
				b += " (" + c.StatusMessage + ")"
			}
			behind = append(behind, b)
		}
		if len(behind) == 0 {
			log.Printf("start", "all %d component(s) running", len(ids))
			return nil
		}
		if time.Now().After(deadline) {
			return &Failure{Reason: "NotReady", Err: fmt.Errorf("not every component is running after %s: %s", appWait, strings.Join(behind, "; "))}
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(500 * time.Millisecond):
		}
	}
}

// appStop stops the app's components in reverse dependency order: a
// component stops only after everything that depends on it did.
func (ct *ComponentTasks) appStop(ctx context.Context, t *model.Task, log *TaskLog) error {
	p, order, err := ct.appComponents(ctx, t)
	if err != nil {
		return err
	}
	slices.Reverse(order)
	log.Printf("stop", "Stopping app %s in reverse dependency order: %s", p.App, aliases(order))
	for _, c := range order {
		if c.Desired != model.DesiredRunning {
			continue
		}
		cp, err := ct.mutate(ctx, c.ID, func(c *model.Component) error {
			c.Desired, c.Gated = model.DesiredStopped, false
			return nil
		})
		if err != nil {
			return err
		}
		if ct.Runtime == nil {
			continue
		}
		if err := ct.Runtime.Apply(ctx, cp, nil); err != nil {
			return &Failure{Reason: "ApplyFailed", Err: fmt.Errorf("stop %s: %w", c.Alias, err)}
		}
		if c.Kind != model.KindThirdParty {
			if err := ct.Runtime.Wait(ctx, cp, func(string) {}); err != nil {
				return fmt.Errorf("stop %s: %w", c.Alias, err)
			}
		}
		log.Printf("stop", "%s stopped", c.Alias)
	}
	return nil
}

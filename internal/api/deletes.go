package api

import (
	"encoding/json"
	"fmt"
	"net/http"
	"time"

	"github.com/berth-platform/berth/internal/model"
	"github.com/berth-platform/berth/internal/worker"
)

// Deleting a team, an app or a component is a durable task with its own
// event: what they owned runs (instances, service addresses, gateway
// routes) and must be stopped before the rows go, which can take a stop
// grace period per component, and a crash half-way must resume rather than
// leave orphans running. All three answer 202 with the event id.

func (a *API) deleteComponent(w http.ResponseWriter, r *http.Request) error {
	c, err := a.componentAccess(r, model.RoleDeveloper)
	if err != nil {
		return err
	}
	deps, err := a.store.ListDependencies(r.Context(), c.Team)
	if err != nil {
		return err
	}
	var dependents []string
	for _, d := range deps {
		if d.To == c.Alias {
			dependents = append(dependents, d.From)
		}
	}
	if len(dependents) > 0 && r.URL.Query().Get("force") == "" {
		return conflict("component %q is a dependency of %v; remove those dependencies first, or delete with ?force=1", c.Alias, dependents)
	}
	if err := a.cancelRunning(r, c); err != nil {
		return err
	}
	p := worker.DeleteTask{Team: c.Team, App: c.App, ComponentID: c.ID, KeepVolumes: keepVolumes(r)}
	return a.acceptDelete(w, r, c.Team, worker.ComponentTarget(c), worker.TaskComponentDelete, p,
		fmt.Sprintf("delete of component %s accepted by %s; queued", c.Alias, principalName(r)))
}

func (a *API) deleteApp(w http.ResponseWriter, r *http.Request) error {
	team, app, err := a.appAccess(r, model.RoleDeveloper)
	if err != nil {
		return err
	}
	if err := a.outsideDependents(r, team.Name, app.Name); err != nil {
		return err
	}
	p := worker.DeleteTask{Team: team.Name, App: app.Name, KeepVolumes: keepVolumes(r)}
	return a.acceptDelete(w, r, team.Name, worker.AppTarget(team.Name, app.Name), worker.TaskAppDelete, p,
		fmt.Sprintf("delete of app %s and its components accepted by %s; queued", app.Name, principalName(r)))
}

func (a *API) deleteTeam(w http.ResponseWriter, r *http.Request) error {
	team, err := a.teamAccess(r, model.RoleOwner)
	if err != nil {
		return err
	}
	p := worker.DeleteTask{Team: team.Name, KeepVolumes: keepVolumes(r)}
	return a.acceptDelete(w, r, team.Name, worker.TeamTarget(team.Name), worker.TaskTeamDelete, p,
		fmt.Sprintf("delete of team %s and everything it owns accepted by %s; queued", team.Name, principalName(r)))
}

// outsideDependents refuses to delete an app whose components others of
// the team, in other apps, depend on, unless ?force=1.
func (a *API) outsideDependents(r *http.Request, team, app string) error {
	if r.URL.Query().Get("force") != "" {
		return nil
	}
	comps, err := a.store.ListComponents(r.Context(), team, "")
	if err != nil {
		return err
	}
	appOf := map[string]string{}
	for _, c := range comps {
		appOf[c.Alias] = c.App
	}
	deps, err := a.store.ListDependencies(r.Context(), team)
	if err != nil {
		return err
	}
	var outside []string
	for _, d := range deps {
		if appOf[d.To] == app && appOf[d.From] != app {
			outside = append(outside, fmt.Sprintf("%s (app %s) -> %s", d.From, appOf[d.From], d.To))
		}
	}
	if len(outside) > 0 {
		return conflict("components of other apps depend on app %q: %v; remove those dependencies first, or delete with ?force=1", app, outside)
	}
	return nil
}

// cancelRunning cancels the component's operation running now, as berth
// cancel would: the delete runs after it, and a build can take half an
// hour. Queued operations run first and find the component gone or are
// undone by the delete.
func (a *API) cancelRunning(r *http.Request, c *model.Component) error {
	if a.cfg.Cancel == nil {
		return nil
	}
	target := worker.ComponentTarget(c)
	evs, err := a.store.ListEvents(r.Context(), model.EventFilter{Team: c.Team, Target: target, Status: model.EventRunning, Limit: 100})
	if err != nil {
		return err
	}
	for _, ev := range evs {
		if ev.Target == target && a.cfg.Cancel(ev.ID) {
			a.log.Printf(r.Context(), ev.ID, "", "cancelled: component %s is being deleted (by %s)", c.Alias, principalName(r))
		}
	}
	return nil
}

// keepVolumes is ?keep_volumes=1: the volumes' files stay on disk.
func keepVolumes(r *http.Request) bool { return r.URL.Query().Get("keep_volumes") != "" }

// acceptDelete records the event and its durable task in one transaction,
// wakes the workers and answers 202 with the event id.
func (a *API) acceptDelete(w http.ResponseWriter, r *http.Request, team, target, taskType string, payload worker.DeleteTask, accepted string) error {
	raw, err := json.Marshal(payload)
	if err != nil {
		return err
	}
	now := time.Now().UTC()
	ev := &model.Event{ID: model.NewID("ev"), Team: team, Type: taskType, Target: target, Status: model.EventRunning, CreatedAt: now}
	task := &model.Task{ID: ev.ID, EventID: ev.ID, Type: taskType, Team: team, Target: target,
		Payload: raw, Status: model.TaskQueued, CreatedAt: now, UpdatedAt: now}
	if err := a.store.CreateEvent(r.Context(), ev, task); err != nil {
		return err
	}
	a.log.Printf(r.Context(), ev.ID, "", "%s", accepted)
	if a.tasks != nil {
		a.tasks.Wake()
	}
	writeJSON(w, http.StatusAccepted, map[string]string{"event_id": ev.ID})
	return nil
}

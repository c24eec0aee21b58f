package api

import (
	"encoding/json"
	"net/http"
	"time"

	"github.com/berth-platform/berth/internal/model"
	"github.com/berth-platform/berth/internal/worker"
)

// appAction starts or stops every component of an app, in dependency
// order (stop in reverse), as one event.
func (a *API) appAction(action string) handlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		team, app, err := a.appAccess(r, model.RoleDeveloper)
		if err != nil {
			return err
		}
		comps, err := a.store.ListComponents(r.Context(), team.Name, app.Name)
		if err != nil {
			return err
		}
		if len(comps) == 0 {
			return conflict("app %s has no components to %s", app.Name, action)
		}
		payload, err := json.Marshal(worker.AppTask{Team: team.Name, App: app.Name})
		if err != nil {
			return err
		}
		kind := worker.TaskAppStart
		if action == "stop" {
			kind = worker.TaskAppStop
		}
		now := time.Now().UTC()
		target := worker.AppTarget(team.Name, app.Name)
		ev := &model.Event{ID: model.NewID("ev"), Team: team.Name, Type: kind, Target: target, Status: model.EventRunning, CreatedAt: now}
		task := &model.Task{ID: ev.ID, EventID: ev.ID, Type: kind, Team: team.Name, Target: target,
			Payload: payload, Status: model.TaskQueued, CreatedAt: now, UpdatedAt: now}
		if err := a.store.CreateEvent(r.Context(), ev, task); err != nil {
			return err
		}
		a.log.Printf(r.Context(), ev.ID, "", "%s of app %s accepted by %s; queued", action, app.Name, principalName(r))
		if a.tasks != nil {
			a.tasks.Wake()
		}
		writeJSON(w, http.StatusAccepted, map[string]string{"event_id": ev.ID})
		return nil
	}
}

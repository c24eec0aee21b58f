package api

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/berth-platform/berth/internal/model"
	"github.com/berth-platform/berth/internal/worker"
)

// componentAction accepts an operation on a component: it checks what can be
// checked now, records an event and a durable task in one transaction, and
// answers 202 with the event id for the caller to follow.
func (a *API) componentAction(action string) handlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		c, err := a.componentAccess(r, model.RoleDeveloper)
		if err != nil {
			return err
		}
		var in struct {
			Image     string `json:"image"`
			Instances *int   `json:"instances"`
			Version   int64  `json:"version"`
		}
		if err := decodeOptional(w, r, &in); err != nil {
			return err
		}
		p := worker.ComponentTask{ComponentID: c.ID}
		switch action {
		case worker.TaskDeploy:
			if c.Kind == model.KindSource && a.building() {
				// Deploying source means building it (Rainbond's 构建):
				// the build rolls the new version out.
				id, err := a.enqueue(r, c, worker.TaskBuild, worker.BuildTask{ComponentID: c.ID},
					fmt.Sprintf("deploy of %s accepted by %s: building it first; queued", c.Alias, principalName(r)))
				if err != nil {
					return err
				}
				writeJSON(w, http.StatusAccepted, map[string]string{"event_id": id})
				return nil
			}
			if in.Image != "" {
				if c.Kind != model.KindImage {
					return invalidField("image", "only an image component deploys an image; this one is %s", c.Kind)
				}
				if err := model.ValidateImage("image", in.Image); err != nil {
					return err
				}
			}
			p.Image = in.Image
		case worker.TaskStart, worker.TaskRestart:
			if c.DeployVersion == 0 && c.Kind != model.KindThirdParty {
				return conflict("component %s was never deployed; deploy it first", c.Alias)
			}
		case worker.TaskScale:
			if in.Instances == nil {
				return invalidField("instances", "is required: the number of instances to run (0-100)")
			}
			if *in.Instances < 0 || *in.Instances > 100 {
				return invalidField("instances", "must be between 0 and 100 (got %d)", *in.Instances)
			}
			p.Instances = in.Instances
		case worker.TaskRollback:
			if in.Version <= 0 {
				return invalidField("version", "is required: a version number from the versions list")
			}
			v, err := a.store.GetVersion(r.Context(), c.ID, in.Version)
			if errors.Is(err, model.ErrNotFound) {
				return invalidField("version", "component %s has no version %d; list its versions to pick one", c.Alias, in.Version)
			}
			if err != nil {
				return err
			}
			if v.Status != model.VersionSuccess {
				return invalidField("version", "version %d is %s; only a successful version can run", v.Number, v.Status)
			}
			p.Version = in.Version
		}
		id, err := a.enqueue(r, c, action, p, fmt.Sprintf("%s of %s accepted by %s; queued", action, c.Alias, principalName(r)))
		if err != nil {
			return err
		}
		writeJSON(w, http.StatusAccepted, map[string]string{"event_id": id})
		return nil
	}
}

// enqueue records an event and its durable task on a component in one
// transaction and wakes the workers; it returns the event id.
func (a *API) enqueue(r *http.Request, c *model.Component, taskType string, payload any, accepted string) (string, error) {
	raw, err := json.Marshal(payload)
	if err != nil {
		return "", err
	}
	now := time.Now().UTC()
	ev := &model.Event{
		ID: model.NewID("ev"), Team: c.Team, Type: taskType, Target: worker.ComponentTarget(c),
		Status: model.EventRunning, CreatedAt: now,
	}
	task := &model.Task{
		ID: ev.ID, EventID: ev.ID, Type: taskType, Team: c.Team, Target: ev.Target,
		Payload: raw, Status: model.TaskQueued, CreatedAt: now, UpdatedAt: now,
	}
	if err := a.store.CreateEvent(r.Context(), ev, task); err != nil {
		return "", err
	}
	a.log.Printf(r.Context(), ev.ID, "", "%s", accepted)
	if a.tasks != nil {
		a.tasks.Wake()
	}
	return ev.ID, nil
}

func principalName(r *http.Request) string {
	p := principalFrom(r.Context())
	switch {
	case p.Admin:
		return "the admin token"
	case p.Member != "":
		return "member " + p.Member
	default:
		return "token " + p.Name
	}
}

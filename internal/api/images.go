package api

import (
	"encoding/json"
	"net/http"
	"time"

	"github.com/berth-platform/berth/internal/model"
	"github.com/berth-platform/berth/internal/worker"
)

// prepareImages builds the offline base images (Debian packages, no
// internet) into the hub: what `berth images prepare` runs. Admin only:
// it writes images every team builds on.
func (a *API) prepareImages(w http.ResponseWriter, r *http.Request) error {
	if p := principalFrom(r.Context()); !p.Admin {
		return forbidden("preparing base images needs the admin token")
	}
	if !a.building() || !a.cfg.Builds.PrepareImages {
		return conflict("this berth server does not build (no BuildKit or no hub), so it has no use for base images")
	}
	var in worker.ImagesPrepareTask
	if err := decodeOptional(w, r, &in); err != nil {
		return err
	}
	for _, l := range in.Languages {
		switch l {
		case "go", "node", "python", "java", "static":
		default:
			return invalidField("languages", "%q is not one of go, node, python, java, static", l)
		}
	}
	raw, err := json.Marshal(in)
	if err != nil {
		return err
	}
	now := time.Now().UTC()
	ev := &model.Event{ID: model.NewID("ev"), Type: worker.TaskImagesPrepare, Target: worker.ImagesTarget, Status: model.EventRunning, CreatedAt: now}
	task := &model.Task{ID: ev.ID, EventID: ev.ID, Type: worker.TaskImagesPrepare, Target: ev.Target,
		Payload: raw, Status: model.TaskQueued, CreatedAt: now, UpdatedAt: now}
	if err := a.store.CreateEvent(r.Context(), ev, task); err != nil {
		return err
	}
	a.log.Printf(r.Context(), ev.ID, "", "base images prepare accepted; queued")
	if a.tasks != nil {
		a.tasks.Wake()
	}
	writeJSON(w, http.StatusAccepted, map[string]string{"event_id": ev.ID})
	return nil
}

package api

import (
	"errors"
	"net/http"
	"time"

	"github.com/berth-platform/berth/internal/model"
)

func validateLabels(labels map[string]string) error {
	if len(labels) > 64 {
		return invalidField("labels", "at most 64 labels")
	}
	for k, v := range labels {
		if k == "" || len(k) > 63 || len(v) > 253 {
			return invalidField("labels", "keys must be 1-63 characters and values at most 253 (key %q)", k)
		}
	}
	return nil
}

func (a *API) listApps(w http.ResponseWriter, r *http.Request) error {
	team, err := a.teamAccess(r, model.RoleViewer)
	if err != nil {
		return err
	}
	apps, err := a.store.ListApps(r.Context(), team.Name)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, items(apps))
	return nil
}

func (a *API) createApp(w http.ResponseWriter, r *http.Request) error {
	team, err := a.teamAccess(r, model.RoleDeveloper)
	if err != nil {
		return err
	}
	var in struct {
		Name   string            `json:"name"`
		Labels map[string]string `json:"labels"`
	}
	if err := decode(w, r, &in); err != nil {
		return err
	}
	if err := model.ValidateName("name", in.Name); err != nil {
		return err
	}
	if err := validateLabels(in.Labels); err != nil {
		return err
	}
	app := &model.App{ID: model.NewID("app"), Team: team.Name, Name: in.Name, Labels: in.Labels, CreatedAt: time.Now().UTC()}
	if err := a.store.CreateApp(r.Context(), app); err != nil {
		if errors.Is(err, model.ErrConflict) {
			return conflict("app %q exists already in team %q", in.Name, team.Name)
		}
		return err
	}
	writeJSON(w, http.StatusCreated, app)
	return nil
}

// appAccess resolves team and app of the path.
func (a *API) appAccess(r *http.Request, min model.Role) (*model.Team, *model.App, error) {
	team, err := a.teamAccess(r, min)
	if err != nil {
		return nil, nil, err
	}
	name := r.PathValue("app")
	app, err := a.store.GetApp(r.Context(), team.Name, name)
	if errors.Is(err, model.ErrNotFound) {
		return nil, nil, notFound("app %q not found in team %q", name, team.Name)
	}
	if err != nil {
		return nil, nil, err
	}
	return team, app, nil
}

func (a *API) getApp(w http.ResponseWriter, r *http.Request) error {
	_, app, err := a.appAccess(r, model.RoleViewer)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, app)
	return nil
}

func (a *API) updateApp(w http.ResponseWriter, r *http.Request) error {
	_, app, err := a.appAccess(r, model.RoleDeveloper)
	if err != nil {
		return err
	}
	var in struct {
		Labels *map[string]string `json:"labels"`
	}
	if err := decode(w, r, &in); err != nil {
		return err
	}
	if in.Labels != nil {
		if err := validateLabels(*in.Labels); err != nil {
			return err
		}
		app.Labels = *in.Labels
	}
	if err := a.store.UpdateApp(r.Context(), app); err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, app)
	return nil
}

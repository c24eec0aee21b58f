package api

import (
	"errors"
	"net/http"

	"github.com/berth-platform/berth/internal/model"
)

func (a *API) listVersions(w http.ResponseWriter, r *http.Request) error {
	c, err := a.componentAccess(r, model.RoleViewer)
	if err != nil {
		return err
	}
	vs, err := a.store.ListVersions(r.Context(), c.ID)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, items(vs))
	return nil
}

func (a *API) versionInPath(r *http.Request, min model.Role) (*model.Component, *model.Version, error) {
	c, err := a.componentAccess(r, min)
	if err != nil {
		return nil, nil, err
	}
	n, err := pathInt(r.PathValue("number"), "version")
	if err != nil {
		return nil, nil, err
	}
	v, err := a.store.GetVersion(r.Context(), c.ID, n)
	if errors.Is(err, model.ErrNotFound) {
		return nil, nil, notFound("version %d of component %s not found", n, c.Alias)
	}
	if err != nil {
		return nil, nil, err
	}
	return c, v, nil
}

func (a *API) getVersion(w http.ResponseWriter, r *http.Request) error {
	_, v, err := a.versionInPath(r, model.RoleViewer)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, v)
	return nil
}

func (a *API) deleteVersion(w http.ResponseWriter, r *http.Request) error {
	c, v, err := a.versionInPath(r, model.RoleDeveloper)
	if err != nil {
		return err
	}
	if c.DeployVersion == v.Number {
		return conflict("version %d is the one %s runs; deploy or roll back to another first", v.Number, c.Alias)
	}
	if err := a.store.DeleteVersion(r.Context(), c.ID, v.Number); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

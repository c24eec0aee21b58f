package api

import (
	"errors"
	"net/http"
	"time"

	"github.com/berth-platform/berth/internal/model"
)

func (a *API) listRegistries(w http.ResponseWriter, r *http.Request) error {
	team, err := a.teamAccess(r, model.RoleViewer)
	if err != nil {
		return err
	}
	regs, err := a.store.ListRegistries(r.Context(), team.Name)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, items(regs))
	return nil
}

// putRegistry records how to pull from a registry host; posting the same
// host again replaces the entry.
func (a *API) putRegistry(w http.ResponseWriter, r *http.Request) error {
	team, err := a.teamAccess(r, model.RoleDeveloper)
	if err != nil {
		return err
	}
	var in struct {
		Host       string `json:"host"`
		Username   string `json:"username"`
		Password   string `json:"password"`
		SkipVerify bool   `json:"skip_verify"`
		PlainHTTP  bool   `json:"plain_http"`
	}
	if err := decode(w, r, &in); err != nil {
		return err
	}
	reg := &model.Registry{Team: team.Name, Host: in.Host, Username: in.Username, Password: in.Password,
		SkipVerify: in.SkipVerify, PlainHTTP: in.PlainHTTP, CreatedAt: time.Now().UTC()}
	if err := reg.Validate(); err != nil {
		return err
	}
	if err := a.store.PutRegistry(r.Context(), reg); err != nil {
		return err
	}
	writeJSON(w, http.StatusCreated, reg)
	return nil
}

func (a *API) registryInPath(r *http.Request, min model.Role) (*model.Registry, error) {
	team, err := a.teamAccess(r, min)
	if err != nil {
		return nil, err
	}
	host := r.PathValue("host")
	reg, err := a.store.GetRegistry(r.Context(), team.Name, host)
	if errors.Is(err, model.ErrNotFound) {
		return nil, notFound("registry %q not found in team %q", host, team.Name)
	}
	return reg, err
}

func (a *API) getRegistry(w http.ResponseWriter, r *http.Request) error {
	reg, err := a.registryInPath(r, model.RoleViewer)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, reg)
	return nil
}

func (a *API) deleteRegistry(w http.ResponseWriter, r *http.Request) error {
	reg, err := a.registryInPath(r, model.RoleDeveloper)
	if err != nil {
		return err
	}
	if err := a.store.DeleteRegistry(r.Context(), reg.Team, reg.Host); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

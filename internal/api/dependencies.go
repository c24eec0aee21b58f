package api

import (
	"errors"
	"net/http"
	"strings"

	"github.com/berth-platform/berth/internal/model"
)

type dependencyView struct {
	Alias  string                `json:"alias"`
	App    string                `json:"app"`
	Status model.ComponentStatus `json:"status"`
}

func (a *API) listDependencies(w http.ResponseWriter, r *http.Request) error {
	c, err := a.componentAccess(r, model.RoleViewer)
	if err != nil {
		return err
	}
	aliases, err := a.dependenciesOf(r.Context(), c)
	if err != nil {
		return err
	}
	out := []dependencyView{}
	for _, alias := range aliases {
		d, err := a.store.GetComponentByAlias(r.Context(), c.Team, alias)
		if err != nil {
			return err
		}
		out = append(out, dependencyView{Alias: d.Alias, App: d.App, Status: d.Status})
	}
	writeJSON(w, http.StatusOK, items(out))
	return nil
}

func (a *API) createDependency(w http.ResponseWriter, r *http.Request) error {
	c, err := a.componentAccess(r, model.RoleDeveloper)
	if err != nil {
		return err
	}
	var in struct {
		Component string `json:"component"`
	}
	if err := decode(w, r, &in); err != nil {
		return err
	}
	if err := model.ValidateName("component", in.Component); err != nil {
		return err
	}
	dep, err := a.store.GetComponentByAlias(r.Context(), c.Team, in.Component)
	if errors.Is(err, model.ErrNotFound) {
		return invalidField("component", "no component %q in team %q", in.Component, c.Team)
	}
	if err != nil {
		return err
	}
	deps, err := a.store.ListDependencies(r.Context(), c.Team)
	if err != nil {
		return err
	}
	if cycle := model.CycleWith(deps, c.Alias, dep.Alias); cycle != nil {
		return invalidField("component", "depending on %s would close a cycle: %s", dep.Alias, strings.Join(cycle, " -> "))
	}
	d := model.Dependency{Team: c.Team, From: c.Alias, To: dep.Alias}
	if err := a.store.AddDependency(r.Context(), d); err != nil {
		if errors.Is(err, model.ErrConflict) {
			return conflict("%s depends on %s already", c.Alias, dep.Alias)
		}
		return err
	}
	writeJSON(w, http.StatusCreated, dependencyView{Alias: dep.Alias, App: dep.App, Status: dep.Status})
	return nil
}

func (a *API) deleteDependency(w http.ResponseWriter, r *http.Request) error {
	c, err := a.componentAccess(r, model.RoleDeveloper)
	if err != nil {
		return err
	}
	to := r.PathValue("dependency")
	err = a.store.RemoveDependency(r.Context(), model.Dependency{Team: c.Team, From: c.Alias, To: to})
	if errors.Is(err, model.ErrNotFound) {
		return notFound("%s does not depend on %q", c.Alias, to)
	}
	if err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

package api

import (
	"errors"
	"net/http"
	"time"

	"github.com/berth-platform/berth/internal/hub"
	"github.com/berth-platform/berth/internal/model"
)

type list[T any] struct {
	Items []T `json:"items"`
}

func items[T any](xs []T) list[T] { return list[T]{Items: nonNil(xs)} }

func (a *API) whoami(w http.ResponseWriter, r *http.Request) error {
	writeJSON(w, http.StatusOK, principalFrom(r.Context()))
	return nil
}

func (a *API) listTeams(w http.ResponseWriter, r *http.Request) error {
	p := principalFrom(r.Context())
	if !p.Admin {
		team, err := a.store.GetTeam(r.Context(), p.Team)
		if err != nil {
			return err
		}
		writeJSON(w, http.StatusOK, items([]model.Team{*team}))
		return nil
	}
	teams, err := a.store.ListTeams(r.Context())
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, items(teams))
	return nil
}

func (a *API) createTeam(w http.ResponseWriter, r *http.Request) error {
	if !principalFrom(r.Context()).Admin {
		return forbidden("only the admin token can create teams")
	}
	var in struct {
		Name string `json:"name"`
	}
	if err := decode(w, r, &in); err != nil {
		return err
	}
	if err := model.ValidateName("name", in.Name); err != nil {
		return err
	}
	if in.Name == hub.PlatformNamespace {
		// The hub keeps the platform's base images under berth/: a team of
		// that name would own them.
		return invalidField("name", "%q is reserved for the platform's own images; choose another team name", in.Name)
	}
	team := &model.Team{ID: model.NewID("team"), Name: in.Name, CreatedAt: time.Now().UTC()}
	if err := a.store.CreateTeam(r.Context(), team); err != nil {
		if errors.Is(err, model.ErrConflict) {
			return conflict("team %q exists already", in.Name)
		}
		return err
	}
	writeJSON(w, http.StatusCreated, team)
	return nil
}

func (a *API) getTeam(w http.ResponseWriter, r *http.Request) error {
	team, err := a.teamAccess(r, model.RoleViewer)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, team)
	return nil
}

package api

import (
	"errors"
	"net/http"
	"time"

	"github.com/berth-platform/berth/internal/model"
)

// mayGrant reports whether the caller may hand out role: nobody grants more
// than they hold, and only owners make owners.
func mayGrant(p *model.Token, role model.Role) error {
	if p.Admin || p.Role.AtLeast(role) {
		return nil
	}
	return forbidden("a %s cannot grant role %s", p.Role, role)
}

func validRole(field string, role model.Role) error {
	if !role.Valid() {
		return invalidField(field, "must be one of owner, admin, developer, viewer (got %q)", role)
	}
	return nil
}

func (a *API) listMembers(w http.ResponseWriter, r *http.Request) error {
	team, err := a.teamAccess(r, model.RoleViewer)
	if err != nil {
		return err
	}
	members, err := a.store.ListMembers(r.Context(), team.Name)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, items(members))
	return nil
}

func (a *API) createMember(w http.ResponseWriter, r *http.Request) error {
	team, err := a.teamAccess(r, model.RoleAdmin)
	if err != nil {
		return err
	}
	var in struct {
		Name string     `json:"name"`
		Role model.Role `json:"role"`
	}
	if err := decode(w, r, &in); err != nil {
		return err
	}
	if err := model.ValidateName("name", in.Name); err != nil {
		return err
	}
	if in.Role == "" {
		in.Role = model.RoleDeveloper
	}
	if err := validRole("role", in.Role); err != nil {
		return err
	}
	if err := mayGrant(principalFrom(r.Context()), in.Role); err != nil {
		return err
	}
	if _, err := a.store.GetMember(r.Context(), team.Name, in.Name); err == nil {
		return conflict("member %q exists already in team %q; change the role with PATCH", in.Name, team.Name)
	} else if !errors.Is(err, model.ErrNotFound) {
		return err
	}
	m := &model.Member{Team: team.Name, Name: in.Name, Role: in.Role, CreatedAt: time.Now().UTC()}
	if err := a.store.PutMember(r.Context(), m); err != nil {
		return err
	}
	writeJSON(w, http.StatusCreated, m)
	return nil
}

func (a *API) memberInPath(r *http.Request, team string) (*model.Member, error) {
	name := r.PathValue("member")
	m, err := a.store.GetMember(r.Context(), team, name)
	if errors.Is(err, model.ErrNotFound) {
		return nil, notFound("member %q not found in team %q", name, team)
	}
	return m, err
}

func (a *API) updateMember(w http.ResponseWriter, r *http.Request) error {
	team, err := a.teamAccess(r, model.RoleAdmin)
	if err != nil {
		return err
	}
	m, err := a.memberInPath(r, team.Name)
	if err != nil {
		return err
	}
	var in struct {
		Role model.Role `json:"role"`
	}
	if err := decode(w, r, &in); err != nil {
		return err
	}
	if err := validRole("role", in.Role); err != nil {
		return err
	}
	p := principalFrom(r.Context())
	if err := mayGrant(p, in.Role); err != nil {
		return err
	}
	if err := mayGrant(p, m.Role); err != nil {
		return forbidden("a %s cannot change the role of a %s", p.Role, m.Role)
	}
	m.Role = in.Role
	if err := a.store.PutMember(r.Context(), m); err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, m)
	return nil
}

func (a *API) deleteMember(w http.ResponseWriter, r *http.Request) error {
	team, err := a.teamAccess(r, model.RoleAdmin)
	if err != nil {
		return err
	}
	m, err := a.memberInPath(r, team.Name)
	if err != nil {
		return err
	}
	p := principalFrom(r.Context())
	if err := mayGrant(p, m.Role); err != nil {
		return forbidden("a %s cannot remove a %s", p.Role, m.Role)
	}
	if err := a.store.DeleteMember(r.Context(), team.Name, m.Name); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (a *API) listTokens(w http.ResponseWriter, r *http.Request) error {
	team, err := a.teamAccess(r, model.RoleAdmin)
	if err != nil {
		return err
	}
	toks, err := a.store.ListTokens(r.Context(), team.Name)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, items(toks))
	return nil
}

func (a *API) createToken(w http.ResponseWriter, r *http.Request) error {
	team, err := a.teamAccess(r, model.RoleAdmin)
	if err != nil {
		return err
	}
	var in struct {
		Name   string     `json:"name"`
		Role   model.Role `json:"role"`
		Member string     `json:"member"`
	}
	if err := decode(w, r, &in); err != nil {
		return err
	}
	if err := model.ValidateName("name", in.Name); err != nil {
		return err
	}
	if in.Member != "" {
		m, err := a.store.GetMember(r.Context(), team.Name, in.Member)
		if errors.Is(err, model.ErrNotFound) {
			return invalidField("member", "no member %q in team %q; add the member first", in.Member, team.Name)
		}
		if err != nil {
			return err
		}
		if in.Role != "" && in.Role != m.Role {
			return invalidField("role", "a member's token has the member's role (%s); leave role out", m.Role)
		}
		in.Role = m.Role
	}
	if in.Role == "" {
		return invalidField("role", "is required (owner, admin, developer or viewer), or give a member")
	}
	if err := validRole("role", in.Role); err != nil {
		return err
	}
	if err := mayGrant(principalFrom(r.Context()), in.Role); err != nil {
		return err
	}
	secret := NewSecret()
	tok := &model.Token{
		ID: model.NewID("tok"), Name: in.Name, Team: team.Name, Member: in.Member, Role: in.Role,
		Hash: HashSecret(secret), CreatedAt: time.Now().UTC(),
	}
	if err := a.store.CreateToken(r.Context(), tok); err != nil {
		return err
	}
	writeJSON(w, http.StatusCreated, map[string]any{"token": tok, "secret": secret})
	return nil
}

func (a *API) deleteToken(w http.ResponseWriter, r *http.Request) error {
	team, err := a.teamAccess(r, model.RoleAdmin)
	if err != nil {
		return err
	}
	id := r.PathValue("id")
	if err := a.mayRevoke(r, team.Name, id); err != nil {
		return err
	}
	if err := a.store.DeleteToken(r.Context(), team.Name, id); err != nil {
		if errors.Is(err, model.ErrNotFound) {
			return notFound("token %q not found in team %q", id, team.Name)
		}
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// mayRevoke keeps a team admin from revoking the tokens of a higher role
// (the owner's): revoking is taking away, and nobody takes from above.
func (a *API) mayRevoke(r *http.Request, team, id string) error {
	toks, err := a.store.ListTokens(r.Context(), team)
	if err != nil {
		return err
	}
	for _, t := range toks {
		if t.ID != id {
			continue
		}
		role, err := a.tokenRole(r, &t)
		if err != nil {
			return err
		}
		p := principalFrom(r.Context())
		if err := mayGrant(p, role); err != nil {
			return forbidden("a %s cannot revoke a token of role %s; ask a %s of team %q", p.Role, role, role, team)
		}
		return nil
	}
	return notFound("token %q not found in team %q", id, team)
}

// tokenRole is the role a token acts with: a member's token takes the
// member's current role, as VerifyToken gives it.
func (a *API) tokenRole(r *http.Request, t *model.Token) (model.Role, error) {
	if t.Member == "" {
		return t.Role, nil
	}
	m, err := a.store.GetMember(r.Context(), t.Team, t.Member)
	if errors.Is(err, model.ErrNotFound) {
		return t.Role, nil
	}
	if err != nil {
		return "", err
	}
	return m.Role, nil
}

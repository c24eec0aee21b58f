package api

import (
	"context"
	"errors"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/berth-platform/berth/internal/model"
)

// baseDomain is the base of default domains, "" when the gateway is off.
func (a *API) baseDomain() string {
	if a.cfg.Gateway == nil {
		return ""
	}
	return strings.ToLower(a.cfg.Gateway.BaseDomain)
}

// claimDomains makes team the owner of domains (a rule's domain, a
// certificate's names) or refuses them all with 409: a domain belongs to
// the first team that names it, and a default domain to its component's
// team. The owner is "another team", never named: team names are not for
// other tenants.
func (a *API) claimDomains(ctx context.Context, field, team string, domains []string) error {
	names := make([]string, 0, len(domains))
	for _, d := range domains {
		d = strings.ToLower(strings.TrimSuffix(d, "."))
		if err := a.checkDefaultDomain(ctx, field, team, d); err != nil {
			return err
		}
		names = append(names, d)
	}
	err := a.store.ClaimDomains(ctx, team, names)
	var taken *model.DomainTakenError
	if errors.As(err, &taken) {
		what := "it"
		if taken.Owned != taken.Domain {
			what = taken.Owned // the wildcard over it, or a name under it
		}
		return errorf(http.StatusConflict, "domain_taken",
			"%s: domain %s belongs to another team (%s was claimed first); use a domain of your own, or ask a platform admin to give %s to team %q (PUT /api/v1/domains/%s)",
			field, taken.Domain, taken.Owned, what, team, taken.Owned)
	}
	return err
}

// checkDefaultDomain refuses a domain that is, or covers, the default
// domain <alias>-<port>-<team>.<base> of another team's component. It
// holds whether that component exists yet or not: a team created later
// must not find its default domains taken.
func (a *API) checkDefaultDomain(ctx context.Context, field, team, domain string) error {
	base := a.baseDomain()
	if base == "" {
		return nil
	}
	if domain == "*."+base || domain == base {
		return errorf(http.StatusConflict, "domain_taken",
			"%s: %s covers the default domains of every team's components; name your own domains (a.%s is fine if it is free)", field, domain, base)
	}
	teams := model.DefaultDomainTeams(domain, base)
	if len(teams) == 0 {
		return nil
	}
	refuse := errorf(http.StatusConflict, "domain_taken",
		"%s: %s is the default domain of a component of another team; pick another name (default domains are <component>-<port>-<team>.%s)", field, domain, base)
	if !slices.Contains(teams, team) {
		return refuse
	}
	// Names with '-' can read as the default domain of two teams; it is
	// ours only when the other reading names no team.
	for _, other := range teams {
		if other == team {
			continue
		}
		if _, err := a.store.GetTeam(ctx, other); err == nil {
			return refuse
		} else if !errors.Is(err, model.ErrNotFound) {
			return err
		}
	}
	return nil
}

// requireAdmin lets only the platform admin token through.
func requireAdmin(r *http.Request, what string) error {
	if !principalFrom(r.Context()).Admin {
		return forbidden("only a platform admin (the admin token) can %s", what)
	}
	return nil
}

func (a *API) listDomains(w http.ResponseWriter, r *http.Request) error {
	if err := requireAdmin(r, "list the domains of every team"); err != nil {
		return err
	}
	claims, err := a.store.ListDomainClaims(r.Context())
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, items(claims))
	return nil
}

// domainInPath reads and checks the {domain} of the path.
func domainInPath(r *http.Request) (string, error) {
	d := strings.ToLower(strings.TrimSuffix(r.PathValue("domain"), "."))
	if err := model.ValidateDomain("domain", d); err != nil {
		return "", err
	}
	return d, nil
}

// putDomain gives a domain to a team (a platform admin settling who owns
// it). The previous owner's rules and certificates for it stay stored but
// the gateway stops serving them.
func (a *API) putDomain(w http.ResponseWriter, r *http.Request) error {
	if err := requireAdmin(r, "give a domain to a team"); err != nil {
		return err
	}
	d, err := domainInPath(r)
	if err != nil {
		return err
	}
	var in struct {
		Team string `json:"team"`
	}
	if err := decode(w, r, &in); err != nil {
		return err
	}
	if err := model.ValidateName("team", in.Team); err != nil {
		return err
	}
	// The gateway serves a default domain for its component's team only,
	// whoever holds a claim on it.
	if teams := model.DefaultDomainTeams(d, a.baseDomain()); len(teams) > 0 && !slices.Contains(teams, in.Team) {
		return invalidField("domain", "%s is a default domain (<component>-<port>-<team>.%s) of team %s; it cannot be given to another team", d, a.baseDomain(), strings.Join(teams, " or "))
	}
	claim := &model.DomainClaim{Domain: d, Team: in.Team, CreatedAt: time.Now().UTC()}
	if err := a.store.PutDomainClaim(r.Context(), claim); err != nil {
		if errors.Is(err, model.ErrNotFound) {
			return invalidField("team", "no team %q; create it first", in.Team)
		}
		return err
	}
	writeJSON(w, http.StatusOK, claim)
	return nil
}

func (a *API) getDomain(w http.ResponseWriter, r *http.Request) error {
	if err := requireAdmin(r, "see who owns a domain"); err != nil {
		return err
	}
	d, err := domainInPath(r)
	if err != nil {
		return err
	}
	claim, err := a.store.GetDomainClaim(r.Context(), d)
	if errors.Is(err, model.ErrNotFound) {
		return notFound("no team has claimed %s", d)
	}
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, claim)
	return nil
}

// deleteDomain frees a domain for the next team that names it.
func (a *API) deleteDomain(w http.ResponseWriter, r *http.Request) error {
	if err := requireAdmin(r, "release a domain"); err != nil {
		return err
	}
	d, err := domainInPath(r)
	if err != nil {
		return err
	}
	if err := a.store.DeleteDomainClaim(r.Context(), d); err != nil {
		if errors.Is(err, model.ErrNotFound) {
			return notFound("no team has claimed %s", d)
		}
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

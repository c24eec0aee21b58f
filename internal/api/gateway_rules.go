package api

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"time"

	"github.com/berth-platform/berth/internal/model"
)

// ruleTarget checks that a rule points at an existing port of a component
// of the team.
func (a *API) ruleTarget(ctx context.Context, team, alias string, port int) error {
	c, err := a.store.GetComponentByAlias(ctx, team, alias)
	if errors.Is(err, model.ErrNotFound) {
		return invalidField("component", "no component %q in team %q", alias, team)
	}
	if err != nil {
		return err
	}
	for _, p := range c.Ports {
		if p.Port == port {
			return nil
		}
	}
	return invalidField("port", "component %s has no port %d; add it first (ports: %v)", alias, port, portNumbers(c.Ports))
}

func portNumbers(ps []model.Port) []int {
	out := []int{}
	for _, p := range ps {
		out = append(out, p.Port)
	}
	return out
}

func (a *API) listHTTPRules(w http.ResponseWriter, r *http.Request) error {
	team, err := a.teamAccess(r, model.RoleViewer)
	if err != nil {
		return err
	}
	rules, err := a.store.ListHTTPRules(r.Context(), team.Name)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, items(rules))
	return nil
}

type httpRuleInput struct {
	Domain      *string            `json:"domain"`
	Path        *string            `json:"path"`
	Component   *string            `json:"component"`
	Port        *int               `json:"port"`
	Certificate *string            `json:"certificate"`
	Weight      *int               `json:"weight"`
	Headers     *map[string]string `json:"headers"`

	RewritePath    *string  `json:"rewrite_path"`
	ConnectTimeout *int     `json:"connect_timeout"`
	ReadTimeout    *int     `json:"read_timeout"`
	SendTimeout    *int     `json:"send_timeout"`
	MaxBodySize    *int64   `json:"max_body_size"`
	RateLimit      *float64 `json:"rate_limit"`
	RateBurst      *int     `json:"rate_burst"`
	RedirectHTTPS  *bool    `json:"redirect_https"`
	AutoTLS        *bool    `json:"auto_tls"`

	// Read-only fields of a GET, accepted and ignored.
	ID        json.RawMessage `json:"id"`
	Team      json.RawMessage `json:"team"`
	CreatedAt json.RawMessage `json:"created_at"`
}

// setIf copies *src to *dst when the field was present.
func setIf[T any](dst *T, src *T) {
	if src != nil {
		*dst = *src
	}
}

func (in httpRuleInput) apply(rule *model.HTTPRule) {
	set := func(dst *string, src *string) {
		if src != nil {
			*dst = *src
		}
	}
	set(&rule.Domain, in.Domain)
	set(&rule.Path, in.Path)
	set(&rule.Component, in.Component)
	set(&rule.Certificate, in.Certificate)
	if in.Port != nil {
		rule.Port = *in.Port
	}
	if in.Weight != nil {
		rule.Weight = *in.Weight
	}
	if in.Headers != nil {
		rule.Headers = *in.Headers
	}
	o := &rule.RouteOptions
	setIf(&o.RewritePath, in.RewritePath)
	setIf(&o.ConnectTimeout, in.ConnectTimeout)
	setIf(&o.ReadTimeout, in.ReadTimeout)
	setIf(&o.SendTimeout, in.SendTimeout)
	setIf(&o.MaxBodySize, in.MaxBodySize)
	setIf(&o.RateLimit, in.RateLimit)
	setIf(&o.RateBurst, in.RateBurst)
	setIf(&o.RedirectHTTPS, in.RedirectHTTPS)
	setIf(&o.AutoTLS, in.AutoTLS)
}

func (a *API) checkHTTPRule(ctx context.Context, rule *model.HTTPRule) error {
	if err := rule.Validate(); err != nil {
		return err
	}
	if err := a.ruleTarget(ctx, rule.Team, rule.Component, rule.Port); err != nil {
		return err
	}
	if rule.Certificate != "" {
		cert, err := a.store.GetCertificate(ctx, rule.Team, rule.Certificate)
		if errors.Is(err, model.ErrNotFound) {
			return invalidField("certificate", "no certificate %q in team %q; upload it first", rule.Certificate, rule.Team)
		} else if err != nil {
			return err
		}
		if !cert.Covers(rule.Domain) {
			return invalidField("certificate", "%q covers %s, not the rule's domain %s; upload a certificate for %s", cert.Name, strings.Join(cert.Domains, ", "), rule.Domain, rule.Domain)
		}
	}
	// Last, so that a rule refused for another reason claims nothing.
	return a.claimDomains(ctx, "domain", rule.Team, []string{rule.Domain})
}

func (a *API) createHTTPRule(w http.ResponseWriter, r *http.Request) error {
	team, err := a.teamAccess(r, model.RoleDeveloper)
	if err != nil {
		return err
	}
	var in httpRuleInput
	if err := decode(w, r, &in); err != nil {
		return err
	}
	rule := &model.HTTPRule{ID: model.NewID("http"), Team: team.Name, CreatedAt: time.Now().UTC()}
	in.apply(rule)
	if err := a.checkHTTPRule(r.Context(), rule); err != nil {
		return err
	}
	// Several rules may share a domain and path: their weights split the
	// traffic (a canary).
	if err := a.store.CreateHTTPRule(r.Context(), rule); err != nil {
		return err
	}
	writeJSON(w, http.StatusCreated, rule)
	return nil
}

func (a *API) httpRuleInPath(r *http.Request, min model.Role) (*model.HTTPRule, error) {
	team, err := a.teamAccess(r, min)
	if err != nil {
		return nil, err
	}
	id := r.PathValue("id")
	rule, err := a.store.GetHTTPRule(r.Context(), team.Name, id)
	if errors.Is(err, model.ErrNotFound) {
		return nil, notFound("HTTP rule %q not found in team %q", id, team.Name)
	}
	return rule, err
}

func (a *API) getHTTPRule(w http.ResponseWriter, r *http.Request) error {
	rule, err := a.httpRuleInPath(r, model.RoleViewer)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, rule)
	return nil
}

func (a *API) updateHTTPRule(w http.ResponseWriter, r *http.Request) error {
	rule, err := a.httpRuleInPath(r, model.RoleDeveloper)
	if err != nil {
		return err
	}
	var in httpRuleInput
	if err := decode(w, r, &in); err != nil {
		return err
	}
	in.apply(rule)
	if err := a.checkHTTPRule(r.Context(), rule); err != nil {
		return err
	}
	if err := a.store.UpdateHTTPRule(r.Context(), rule); err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, rule)
	return nil
}

func (a *API) deleteHTTPRule(w http.ResponseWriter, r *http.Request) error {
	rule, err := a.httpRuleInPath(r, model.RoleDeveloper)
	if err != nil {
		return err
	}
	if err := a.store.DeleteHTTPRule(r.Context(), rule.Team, rule.ID); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (a *API) listTCPRules(w http.ResponseWriter, r *http.Request) error {
	team, err := a.teamAccess(r, model.RoleViewer)
	if err != nil {
		return err
	}
	rules, err := a.store.ListTCPRules(r.Context(), team.Name)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, items(rules))
	return nil
}

func (a *API) createTCPRule(w http.ResponseWriter, r *http.Request) error {
	team, err := a.teamAccess(r, model.RoleDeveloper)
	if err != nil {
		return err
	}
	var in struct {
		GatewayPort int    `json:"gateway_port"`
		Component   string `json:"component"`
		Port        int    `json:"port"`
	}
	if err := decode(w, r, &in); err != nil {
		return err
	}
	rule := &model.TCPRule{ID: model.NewID("tcp"), Team: team.Name, GatewayPort: in.GatewayPort,
		Component: in.Component, Port: in.Port, CreatedAt: time.Now().UTC()}
	if err := rule.Validate(); err != nil {
		return err
	}
	if err := a.checkGatewayPort(rule.GatewayPort); err != nil {
		return err
	}
	if err := a.ruleTarget(r.Context(), team.Name, rule.Component, rule.Port); err != nil {
		return err
	}
	if err := a.reserveTCPRule(r.Context(), rule); err != nil {
		return err
	}
	writeJSON(w, http.StatusCreated, rule)
	return nil
}

// checkGatewayPort keeps a tenant's TCP rule inside the gateway's range:
// any other port may be one berth itself (the API, the hub, the gateway's
// HTTP ports) or another service of the machine listens on.
func (a *API) checkGatewayPort(port int) error {
	if port == 0 || (port >= a.cfg.TCPPortLow && port <= a.cfg.TCPPortHigh) {
		return nil
	}
	return invalidField("gateway_port", "must be in the gateway's TCP range %d-%d, or left out to get a free one (got %d); a platform admin widens the range with `berth server --tcp-ports LO-HI`",
		a.cfg.TCPPortLow, a.cfg.TCPPortHigh, port)
}

// reserveTCPRule stores rule, picking a free gateway port of the range when
// it names none.
func (a *API) reserveTCPRule(ctx context.Context, rule *model.TCPRule) error {
	picked := rule.GatewayPort == 0
	// Two callers may pick the same free port; the unique key makes the
	// loser try the next one.
	for attempt := 0; attempt < 20; attempt++ {
		if picked {
			port, err := a.freeTCPPort(ctx)
			if err != nil {
				return err
			}
			rule.GatewayPort = port
		}
		err := a.store.CreateTCPRule(ctx, rule)
		if errors.Is(err, model.ErrConflict) && picked {
			continue
		}
		if errors.Is(err, model.ErrConflict) {
			return conflict("gateway port %d is taken; pick another or leave gateway_port out to get a free one", rule.GatewayPort)
		}
		return err
	}
	return conflict("could not reserve a gateway port; try again")
}

func (a *API) freeTCPPort(ctx context.Context) (int, error) {
	rules, err := a.store.ListAllTCPRules(ctx)
	if err != nil {
		return 0, err
	}
	used := map[int]bool{}
	for _, r := range rules {
		used[r.GatewayPort] = true
	}
	for p := a.cfg.TCPPortLow; p <= a.cfg.TCPPortHigh; p++ {
		if !used[p] {
			return p, nil
		}
	}
	return 0, conflict("all %d gateway ports of the range %d-%d are taken; widen it with `berth server --tcp-ports LO-HI`, or free one by deleting a TCP rule",
		a.cfg.TCPPortHigh-a.cfg.TCPPortLow+1, a.cfg.TCPPortLow, a.cfg.TCPPortHigh)
}

func (a *API) tcpRuleInPath(r *http.Request, min model.Role) (*model.TCPRule, error) {
	team, err := a.teamAccess(r, min)
	if err != nil {
		return nil, err
	}
	id := r.PathValue("id")
	rule, err := a.store.GetTCPRule(r.Context(), team.Name, id)
	if errors.Is(err, model.ErrNotFound) {
		return nil, notFound("TCP rule %q not found in team %q", id, team.Name)
	}
	return rule, err
}

func (a *API) getTCPRule(w http.ResponseWriter, r *http.Request) error {
	rule, err := a.tcpRuleInPath(r, model.RoleViewer)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, rule)
	return nil
}

func (a *API) deleteTCPRule(w http.ResponseWriter, r *http.Request) error {
	rule, err := a.tcpRuleInPath(r, model.RoleDeveloper)
	if err != nil {
		return err
	}
	if err := a.store.DeleteTCPRule(r.Context(), rule.Team, rule.ID); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

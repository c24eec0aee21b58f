package api

import (
	"context"
	"errors"
	"net/http"
	"time"

	"github.com/berth-platform/berth/internal/build/source"
	"github.com/berth-platform/berth/internal/model"
)

// componentAccess resolves team, app and component of the path.
func (a *API) componentAccess(r *http.Request, min model.Role) (*model.Component, error) {
	team, app, err := a.appAccess(r, min)
	if err != nil {
		return nil, err
	}
	alias := r.PathValue("component")
	c, err := a.store.GetComponent(r.Context(), team.Name, app.Name, alias)
	if errors.Is(err, model.ErrNotFound) {
		return nil, notFound("component %q not found in app %q", alias, app.Name)
	}
	if err != nil {
		return nil, err
	}
	return c, nil
}

// dependenciesOf lists the aliases c depends on.
func (a *API) dependenciesOf(ctx context.Context, c *model.Component) ([]string, error) {
	deps, err := a.store.ListDependencies(ctx, c.Team)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, d := range deps {
		if d.From == c.Alias {
			out = append(out, d.To)
		}
	}
	return out, nil
}

func (a *API) view(ctx context.Context, c *model.Component) (componentView, error) {
	deps, err := a.dependenciesOf(ctx, c)
	if err != nil {
		return componentView{}, err
	}
	instances, err := a.instancesOf(ctx, c)
	if err != nil {
		return componentView{}, err
	}
	httpRules, tcpRules, err := a.teamRules(ctx, c.Team)
	if err != nil {
		return componentView{}, err
	}
	return a.forCaller(ctx, viewComponent(c, deps, instances, a.innerAddresses(ctx, c), a.publications(c, httpRules, tcpRules))), nil
}

func (a *API) listComponents(w http.ResponseWriter, r *http.Request) error {
	team, app, err := a.appAccess(r, model.RoleViewer)
	if err != nil {
		return err
	}
	comps, err := a.store.ListComponents(r.Context(), team.Name, app.Name)
	if err != nil {
		return err
	}
	deps, err := a.store.ListDependencies(r.Context(), team.Name)
	if err != nil {
		return err
	}
	byFrom := map[string][]string{}
	for _, d := range deps {
		byFrom[d.From] = append(byFrom[d.From], d.To)
	}
	httpRules, tcpRules, err := a.teamRules(r.Context(), team.Name)
	if err != nil {
		return err
	}
	views := make([]componentView, 0, len(comps))
	for i := range comps {
		instances, err := a.instancesOf(r.Context(), &comps[i])
		if err != nil {
			return err
		}
		views = append(views, a.forCaller(r.Context(), viewComponent(&comps[i], byFrom[comps[i].Alias], instances, a.innerAddresses(r.Context(), &comps[i]),
			a.publications(&comps[i], httpRules, tcpRules))))
	}
	writeJSON(w, http.StatusOK, items(views))
	return nil
}

func (a *API) createComponent(w http.ResponseWriter, r *http.Request) error {
	team, app, err := a.appAccess(r, model.RoleDeveloper)
	if err != nil {
		return err
	}
	var in componentInput
	if err := decode(w, r, &in); err != nil {
		return err
	}
	now := time.Now().UTC()
	c := &model.Component{ID: model.NewID("cmp"), Team: team.Name, App: app.Name, Instances: 1, CreatedAt: now, UpdatedAt: now}
	if err := in.apply(c); err != nil {
		return err
	}
	c.Normalize()
	if err := c.Validate(); err != nil {
		return err
	}
	if c.Kind == model.KindThirdParty {
		c.EndpointKey = newEndpointKey()
	}
	if c.Kind == model.KindSource {
		c.WebhookSecret = newWebhookSecret()
	}
	if err := validateSource(c); err != nil {
		return err
	}
	if err := a.checkHubImages(c); err != nil {
		return err
	}
	if err := a.checkEndpoints(r.Context(), "endpoints", c.Endpoints); err != nil {
		return err
	}
	if err := a.checkDialledHosts(r.Context(), c); err != nil {
		return err
	}
	if err := a.publishTCP(r.Context(), c, true); err != nil {
		return err
	}
	if err := a.store.CreateComponent(r.Context(), c); err != nil {
		if errors.Is(err, model.ErrConflict) {
			return conflict("alias %q is taken in team %q (aliases are unique per team); pick another", c.Alias, team.Name)
		}
		return err
	}
	if err := a.publishTCP(r.Context(), c, false); err != nil {
		return err
	}
	v, err := a.view(r.Context(), c)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusCreated, v)
	return nil
}

func (a *API) getComponent(w http.ResponseWriter, r *http.Request) error {
	c, err := a.componentAccess(r, model.RoleViewer)
	if err != nil {
		return err
	}
	v, err := a.view(r.Context(), c)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, v)
	return nil
}

// changeComponent reads the component of the path, applies fn, validates
// and saves, retrying if another writer got in between.
func (a *API) changeComponent(r *http.Request, fn func(c *model.Component) error) (*model.Component, error) {
	for attempt := 0; ; attempt++ {
		c, err := a.componentAccess(r, model.RoleDeveloper)
		if err != nil {
			return nil, err
		}
		alias, kind := c.Alias, c.Kind
		if err := fn(c); err != nil {
			return nil, err
		}
		if c.Alias != alias {
			return nil, invalidField("alias", "cannot change; create a new component instead")
		}
		if c.Kind != kind {
			return nil, invalidField("kind", "cannot change from %s; create a new component instead", kind)
		}
		c.Normalize()
		if err := c.Validate(); err != nil {
			return nil, err
		}
		if err := validateSource(c); err != nil {
			return nil, err
		}
		if err := a.checkHubImages(c); err != nil {
			return nil, err
		}
		if err := a.checkEndpoints(r.Context(), "endpoints", c.Endpoints); err != nil {
			return nil, err
		}
		if err := a.checkDialledHosts(r.Context(), c); err != nil {
			return nil, err
		}
		if err := a.publishTCP(r.Context(), c, true); err != nil {
			return nil, err
		}
		err = a.store.UpdateComponent(r.Context(), c)
		if errors.Is(err, model.ErrStale) && attempt < 10 {
			continue
		}
		if err != nil {
			return nil, err
		}
		return c, a.publishTCP(r.Context(), c, false)
	}
}

func (a *API) updateComponent(w http.ResponseWriter, r *http.Request) error {
	var in componentInput
	if err := decode(w, r, &in); err != nil {
		return err
	}
	c, err := a.changeComponent(r, func(c *model.Component) error {
		old := c.Envs
		if err := in.apply(c); err != nil {
			return err
		}
		keepSecrets(c.Envs, old)
		return nil
	})
	if err != nil {
		return err
	}
	v, err := a.view(r.Context(), c)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, v)
	return nil
}

// keepSecrets lets a client send back what it read: a masked secret value
// means "unchanged", not "set it to asterisks".
func keepSecrets(envs, old []model.Env) {
	for i := range envs {
		if envs[i].Value != secretMask {
			continue
		}
		for _, o := range old {
			if o.Name == envs[i].Name && o.Secret {
				envs[i].Value = o.Value
			}
		}
	}
}

// innerAddresses are the stable service addresses of c's inner ports, once
// it runs.
func (a *API) innerAddresses(ctx context.Context, c *model.Component) map[int]string {
	if a.cfg.Runtime == nil || c.Desired == model.DesiredUndeployed {
		return nil
	}
	out := map[int]string{}
	for _, p := range c.Ports {
		if !p.Inner || p.Protocol == model.ProtoUDP {
			continue
		}
		if addr, err := a.cfg.Runtime.ServiceAddress(ctx, c.ID, p.Port); err == nil {
			out[p.Port] = addr
		}
	}
	return out
}

// validateSource checks what the model cannot: that a git URL is one berth
// will hand to git (no local paths, no helpers such as ext::).
func validateSource(c *model.Component) error {
	if c.Kind != model.KindSource || c.Source == nil || c.Source.Type != model.SourceGit {
		return nil
	}
	if err := source.ValidateGitURL(c.Source.URL); err != nil {
		var verr *model.ValidationError
		if errors.As(err, &verr) {
			return verr
		}
		return invalidField("source.url", "%v", err)
	}
	return nil
}

// forCaller hides the component's own keys (endpoint key, webhook secret)
// from viewers: with them one could redirect a thirdparty service's
// traffic or trigger builds.
func (a *API) forCaller(ctx context.Context, v componentView) componentView {
	if p := principalFrom(ctx); p != nil && !p.Admin && !p.Role.AtLeast(model.RoleDeveloper) {
		v.EndpointKey = ""
		if v.Webhook != nil {
			v.Webhook = &webhookView{URL: v.Webhook.URL}
		}
	}
	return v
}

package client

import (
	"context"
	"net/http"
	"net/url"
	"strconv"
)

// ComponentRef names a component: its alias within an app of a team.
type ComponentRef struct {
	Team, App, Component string
}

func (r ComponentRef) path(sub ...string) string {
	return apiPath(append([]string{"teams", r.Team, "apps", r.App, "components", r.Component}, sub...)...)
}

// String writes the reference as TEAM/APP/COMPONENT, the form event targets
// use.
func (r ComponentRef) String() string { return r.Team + "/" + r.App + "/" + r.Component }

// ListComponents lists the components of an app.
func (c *Client) ListComponents(ctx context.Context, team, app string) ([]Component, error) {
	return list[Component](ctx, c, apiPath("teams", team, "apps", app, "components"), nil)
}

// CreateComponent creates a component in an app. It does not deploy it.
func (c *Client) CreateComponent(ctx context.Context, team, app string, spec ComponentSpec) (*Component, error) {
	return send[Component](ctx, c, http.MethodPost, apiPath("teams", team, "apps", app, "components"), spec)
}

// GetComponent returns a component with its instances and status.
func (c *Client) GetComponent(ctx context.Context, ref ComponentRef) (*Component, error) {
	return get[Component](ctx, c, ref.path())
}

// UpdateComponent changes the fields set in patch.
func (c *Client) UpdateComponent(ctx context.Context, ref ComponentRef, patch ComponentPatch) (*Component, error) {
	return send[Component](ctx, c, http.MethodPatch, ref.path(), patch)
}

// DeleteComponent deletes a component with its instances, dependencies,
// versions and gateway rules, as a task: it returns the id of the delete's
// event. Its volumes go too unless opts.KeepVolumes.
func (c *Client) DeleteComponent(ctx context.Context, ref ComponentRef, opts DeleteOptions) (string, error) {
	return c.deleteTask(ctx, ref.path(), opts)
}

// ListPorts lists a component's ports.
func (c *Client) ListPorts(ctx context.Context, ref ComponentRef) ([]Port, error) {
	return list[Port](ctx, c, ref.path("ports"), nil)
}

// AddPort adds a port.
func (c *Client) AddPort(ctx context.Context, ref ComponentRef, p Port) (*Port, error) {
	return send[Port](ctx, c, http.MethodPost, ref.path("ports"), p)
}

// UpdatePort changes the fields of a port set in patch.
func (c *Client) UpdatePort(ctx context.Context, ref ComponentRef, port int, patch PortPatch) (*Port, error) {
	return send[Port](ctx, c, http.MethodPatch, ref.path("ports", strconv.Itoa(port)), patch)
}

// RemovePort removes a port.
func (c *Client) RemovePort(ctx context.Context, ref ComponentRef, port int) error {
	return c.delete(ctx, ref.path("ports", strconv.Itoa(port)))
}

// ListEnvs lists a component's variables; secret values read "******".
func (c *Client) ListEnvs(ctx context.Context, ref ComponentRef) ([]Env, error) {
	return list[Env](ctx, c, ref.path("envs"), nil)
}

// EffectiveEnvs lists what the component's container sees at its next
// start: its own variables over its dependencies' connection info, each
// with its origin. Secret values read "******".
func (c *Client) EffectiveEnvs(ctx context.Context, ref ComponentRef) (*EffectiveEnvs, error) {
	var out EffectiveEnvs
	if err := c.do(ctx, http.MethodGet, ref.path("envs"), url.Values{"effective": {"1"}}, nil, &out); err != nil {
		return nil, err
	}
	if out.Items == nil {
		out.Items = []EffectiveEnv{}
	}
	return &out, nil
}

// SetEnv creates a variable or replaces the one of the same name.
func (c *Client) SetEnv(ctx context.Context, ref ComponentRef, e Env) (*Env, error) {
	return send[Env](ctx, c, http.MethodPost, ref.path("envs"), e)
}

// UpdateEnv changes the fields of a variable set in patch.
func (c *Client) UpdateEnv(ctx context.Context, ref ComponentRef, name string, patch EnvPatch) (*Env, error) {
	return send[Env](ctx, c, http.MethodPatch, ref.path("envs", name), patch)
}

// UnsetEnv removes a variable.
func (c *Client) UnsetEnv(ctx context.Context, ref ComponentRef, name string) error {
	return c.delete(ctx, ref.path("envs", name))
}

// ListDependencies lists the components ref depends on.
func (c *Client) ListDependencies(ctx context.Context, ref ComponentRef) ([]Dependency, error) {
	return list[Dependency](ctx, c, ref.path("dependencies"), nil)
}

// AddDependency makes ref depend on the component with alias dep, which may
// be in another app of the same team.
func (c *Client) AddDependency(ctx context.Context, ref ComponentRef, dep string) error {
	return c.do(ctx, http.MethodPost, ref.path("dependencies"), nil, map[string]string{"component": dep}, nil)
}

// RemoveDependency removes the dependency of ref on dep.
func (c *Client) RemoveDependency(ctx context.Context, ref ComponentRef, dep string) error {
	return c.delete(ctx, ref.path("dependencies", dep))
}

// ListVolumes lists a component's volumes.
func (c *Client) ListVolumes(ctx context.Context, ref ComponentRef) ([]Volume, error) {
	return list[Volume](ctx, c, ref.path("volumes"), nil)
}

// AddVolume adds a volume; an empty name is chosen by the server.
func (c *Client) AddVolume(ctx context.Context, ref ComponentRef, v Volume) (*Volume, error) {
	return send[Volume](ctx, c, http.MethodPost, ref.path("volumes"), v)
}

// RemoveVolume removes a volume by name.
func (c *Client) RemoveVolume(ctx context.Context, ref ComponentRef, name string) error {
	return c.delete(ctx, ref.path("volumes", name))
}

// ListVersions lists a component's versions, newest first.
func (c *Client) ListVersions(ctx context.Context, ref ComponentRef) ([]Version, error) {
	return list[Version](ctx, c, ref.path("versions"), nil)
}

// GetVersion returns one version.
func (c *Client) GetVersion(ctx context.Context, ref ComponentRef, number int64) (*Version, error) {
	return get[Version](ctx, c, ref.path("versions", strconv.FormatInt(number, 10)))
}

// DeleteVersion deletes a version.
func (c *Client) DeleteVersion(ctx context.Context, ref ComponentRef, number int64) error {
	return c.delete(ctx, ref.path("versions", strconv.FormatInt(number, 10)))
}

// ListInstances lists the running copies of a component.
func (c *Client) ListInstances(ctx context.Context, ref ComponentRef) ([]Instance, error) {
	return list[Instance](ctx, c, ref.path("instances"), nil)
}

// ListComponentEvents lists the events of a component, newest first.
func (c *Client) ListComponentEvents(ctx context.Context, ref ComponentRef) ([]Event, error) {
	return list[Event](ctx, c, ref.path("events"), nil)
}

// action starts an asynchronous operation and returns the id of its event,
// which FollowLog and WaitEvent take.
func (c *Client) action(ctx context.Context, ref ComponentRef, name string, body any) (string, error) {
	var out struct {
		EventID string `json:"event_id"`
	}
	if err := c.do(ctx, http.MethodPost, ref.path(name), nil, body, &out); err != nil {
		return "", err
	}
	return out.EventID, nil
}

// Deploy builds (for source components) and rolls out the component. A
// non-empty image also changes the image of an image component.
func (c *Client) Deploy(ctx context.Context, ref ComponentRef, image string) (string, error) {
	var body any
	if image != "" {
		body = map[string]string{"image": image}
	}
	return c.action(ctx, ref, "deploy", body)
}

// Start starts a stopped component.
func (c *Client) Start(ctx context.Context, ref ComponentRef) (string, error) {
	return c.action(ctx, ref, "start", nil)
}

// Stop stops every instance of a component.
func (c *Client) Stop(ctx context.Context, ref ComponentRef) (string, error) {
	return c.action(ctx, ref, "stop", nil)
}

// Restart replaces every instance of a component.
func (c *Client) Restart(ctx context.Context, ref ComponentRef) (string, error) {
	return c.action(ctx, ref, "restart", nil)
}

// Scale changes the number of instances.
func (c *Client) Scale(ctx context.Context, ref ComponentRef, instances int) (string, error) {
	return c.action(ctx, ref, "scale", map[string]int{"instances": instances})
}

// Rollback deploys an earlier version.
func (c *Client) Rollback(ctx context.Context, ref ComponentRef, version int64) (string, error) {
	return c.action(ctx, ref, "rollback", map[string]int64{"version": version})
}

// GatewayErrors lists the last requests the gateway answered itself for
// the component (it was unreachable, too slow, rate limited...), newest
// first.
func (c *Client) GatewayErrors(ctx context.Context, ref ComponentRef) ([]GatewayError, error) {
	return list[GatewayError](ctx, c, ref.path("gateway-errors"), nil)
}

// ListEndpoints lists a thirdparty component's endpoints with their health.
func (c *Client) ListEndpoints(ctx context.Context, ref ComponentRef) (*Endpoints, error) {
	e, err := get[Endpoints](ctx, c, ref.path("endpoints"))
	if err != nil {
		return nil, err
	}
	for _, l := range []*[]string{&e.Static, &e.Registered} {
		if *l == nil {
			*l = []string{}
		}
	}
	if e.Items == nil {
		e.Items = []Instance{}
	}
	return e, nil
}

// RegisterEndpoints replaces the endpoints a thirdparty service registered
// for itself (the static ones stay) and returns the registered list. It
// authenticates with the component's endpoint key, not the client's token,
// which is not sent: the service needs no berth login. An empty list
// removes the registered endpoints.
func (c *Client) RegisterEndpoints(ctx context.Context, ref ComponentRef, key string, endpoints []string) ([]string, error) {
	if endpoints == nil {
		endpoints = []string{} // null is not a list to the server
	}
	req, err := c.newRequest(ctx, http.MethodPut, ref.path("endpoints"), nil, map[string][]string{"endpoints": endpoints})
	if err != nil {
		return nil, err
	}
	req.Header.Del("Authorization")
	req.Header.Set("X-Endpoint-Key", key)
	var out struct {
		Registered []string `json:"registered"`
	}
	if err := c.roundTrip(req, &out); err != nil {
		return nil, err
	}
	if out.Registered == nil {
		out.Registered = []string{}
	}
	return out.Registered, nil
}

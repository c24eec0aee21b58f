package client

import (
	"context"
	"net/http"
)

// ListApps lists a team's apps.
func (c *Client) ListApps(ctx context.Context, team string) ([]App, error) {
	return list[App](ctx, c, apiPath("teams", team, "apps"), nil)
}

// CreateApp creates an app in a team.
func (c *Client) CreateApp(ctx context.Context, team string, spec AppSpec) (*App, error) {
	return send[App](ctx, c, http.MethodPost, apiPath("teams", team, "apps"), spec)
}

// GetApp returns one app.
func (c *Client) GetApp(ctx context.Context, team, app string) (*App, error) {
	return get[App](ctx, c, apiPath("teams", team, "apps", app))
}

// SetAppLabels replaces an app's labels.
func (c *Client) SetAppLabels(ctx context.Context, team, app string, labels map[string]string) (*App, error) {
	if labels == nil {
		labels = map[string]string{} // null would read as "leave unchanged"
	}
	return send[App](ctx, c, http.MethodPatch, apiPath("teams", team, "apps", app),
		map[string]any{"labels": labels})
}

// DeleteApp deletes an app with its components, as a task: it returns the
// id of the delete's event. The server refuses (409) while components of
// other apps depend on the app's, unless opts.Force.
func (c *Client) DeleteApp(ctx context.Context, team, app string, opts DeleteOptions) (string, error) {
	return c.deleteTask(ctx, apiPath("teams", team, "apps", app), opts)
}

// AppTopology returns an app as a graph of its components, their
// dependencies and the gateway's entries.
func (c *Client) AppTopology(ctx context.Context, team, app string) (*Topology, error) {
	t, err := get[Topology](ctx, c, apiPath("teams", team, "apps", app, "topology"))
	if err != nil {
		return nil, err
	}
	if t.Nodes == nil {
		t.Nodes = []TopologyNode{}
	}
	if t.Edges == nil {
		t.Edges = []TopologyEdge{}
	}
	return t, nil
}

// StartApp starts every deployed component of an app in dependency order
// and returns the id of the event recording it.
func (c *Client) StartApp(ctx context.Context, team, app string) (string, error) {
	return c.appAction(ctx, team, app, "start")
}

// StopApp stops every component of an app, dependents first.
func (c *Client) StopApp(ctx context.Context, team, app string) (string, error) {
	return c.appAction(ctx, team, app, "stop")
}

func (c *Client) appAction(ctx context.Context, team, app, name string) (string, error) {
	var out struct {
		EventID string `json:"event_id"`
	}
	if err := c.do(ctx, http.MethodPost, apiPath("teams", team, "apps", app, name), nil, nil, &out); err != nil {
		return "", err
	}
	return out.EventID, nil
}

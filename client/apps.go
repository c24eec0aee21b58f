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

// DeleteApp deletes an app; the server refuses while it has components.
func (c *Client) DeleteApp(ctx context.Context, team, app string) error {
	return c.delete(ctx, apiPath("teams", team, "apps", app))
}

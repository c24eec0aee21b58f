package client

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
)

// Health reports whether the server process is alive (GET /healthz).
func (c *Client) Health(ctx context.Context) error {
	return c.do(ctx, http.MethodGet, "/healthz", nil, nil, nil)
}

// Ready returns the server's start-up state (GET /readyz). A server that is
// not ready answers 503 with the same body, which is returned without error
// so that callers can show the phases.
func (c *Client) Ready(ctx context.Context) (*Readiness, error) {
	req, err := c.newRequest(ctx, http.MethodGet, "/readyz", nil, nil)
	if err != nil {
		return nil, err
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK && resp.StatusCode != http.StatusServiceUnavailable {
		return nil, decodeError(resp)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return nil, err
	}
	var r Readiness
	if err := json.Unmarshal(body, &r); err != nil {
		return nil, fmt.Errorf("GET /readyz: decode response (HTTP %d): %w", resp.StatusCode, err)
	}
	return &r, nil
}

// WhoAmI returns who the token acts as.
func (c *Client) WhoAmI(ctx context.Context) (*Identity, error) {
	return get[Identity](ctx, c, apiPath("whoami"))
}

// ListTeams lists the teams the token may see.
func (c *Client) ListTeams(ctx context.Context) ([]Team, error) {
	return list[Team](ctx, c, apiPath("teams"), nil)
}

// CreateTeam creates a team (admin token only).
func (c *Client) CreateTeam(ctx context.Context, name string) (*Team, error) {
	return send[Team](ctx, c, http.MethodPost, apiPath("teams"), map[string]string{"name": name})
}

// GetTeam returns one team.
func (c *Client) GetTeam(ctx context.Context, team string) (*Team, error) {
	return get[Team](ctx, c, apiPath("teams", team))
}

// DeleteTeam deletes a team and everything it owns, as a task: it
// returns the id of the delete's event. The team's tokens go with it, so
// follow the event with the admin token.
func (c *Client) DeleteTeam(ctx context.Context, team string) (string, error) {
	return c.deleteTask(ctx, apiPath("teams", team), DeleteOptions{})
}

// ListMembers lists a team's members.
func (c *Client) ListMembers(ctx context.Context, team string) ([]Member, error) {
	return list[Member](ctx, c, apiPath("teams", team, "members"), nil)
}

// AddMember adds a member with one of the Role* roles.
func (c *Client) AddMember(ctx context.Context, team, name, role string) (*Member, error) {
	return send[Member](ctx, c, http.MethodPost, apiPath("teams", team, "members"),
		map[string]string{"name": name, "role": role})
}

// SetMemberRole changes a member's role.
func (c *Client) SetMemberRole(ctx context.Context, team, name, role string) (*Member, error) {
	return send[Member](ctx, c, http.MethodPatch, apiPath("teams", team, "members", name),
		map[string]string{"role": role})
}

// RemoveMember removes a member and the member's tokens.
func (c *Client) RemoveMember(ctx context.Context, team, name string) error {
	return c.delete(ctx, apiPath("teams", team, "members", name))
}

// ListTokens lists a team's tokens (without secrets).
func (c *Client) ListTokens(ctx context.Context, team string) ([]Token, error) {
	return list[Token](ctx, c, apiPath("teams", team, "tokens"), nil)
}

// CreateToken creates a token; the returned secret cannot be read again.
func (c *Client) CreateToken(ctx context.Context, team string, req TokenRequest) (*NewToken, error) {
	return send[NewToken](ctx, c, http.MethodPost, apiPath("teams", team, "tokens"), req)
}

// RevokeToken deletes a token; calls with it fail from then on.
func (c *Client) RevokeToken(ctx context.Context, team, id string) error {
	return c.delete(ctx, apiPath("teams", team, "tokens", id))
}

package client

import (
	"context"
	"net/http"
)

// ListHTTPRules lists a team's HTTP rules.
func (c *Client) ListHTTPRules(ctx context.Context, team string) ([]HTTPRule, error) {
	return list[HTTPRule](ctx, c, apiPath("teams", team, "http-rules"), nil)
}

// CreateHTTPRule routes a domain (and path prefix) to a component port.
func (c *Client) CreateHTTPRule(ctx context.Context, team string, spec HTTPRuleSpec) (*HTTPRule, error) {
	return send[HTTPRule](ctx, c, http.MethodPost, apiPath("teams", team, "http-rules"), spec)
}

// GetHTTPRule returns one HTTP rule.
func (c *Client) GetHTTPRule(ctx context.Context, team, id string) (*HTTPRule, error) {
	return get[HTTPRule](ctx, c, apiPath("teams", team, "http-rules", id))
}

// UpdateHTTPRule changes the fields of a rule set in patch.
func (c *Client) UpdateHTTPRule(ctx context.Context, team, id string, patch HTTPRulePatch) (*HTTPRule, error) {
	return send[HTTPRule](ctx, c, http.MethodPatch, apiPath("teams", team, "http-rules", id), patch)
}

// DeleteHTTPRule deletes an HTTP rule.
func (c *Client) DeleteHTTPRule(ctx context.Context, team, id string) error {
	return c.delete(ctx, apiPath("teams", team, "http-rules", id))
}

// ListTCPRules lists a team's TCP rules.
func (c *Client) ListTCPRules(ctx context.Context, team string) ([]TCPRule, error) {
	return list[TCPRule](ctx, c, apiPath("teams", team, "tcp-rules"), nil)
}

// CreateTCPRule publishes a component port on a gateway port.
func (c *Client) CreateTCPRule(ctx context.Context, team string, spec TCPRuleSpec) (*TCPRule, error) {
	return send[TCPRule](ctx, c, http.MethodPost, apiPath("teams", team, "tcp-rules"), spec)
}

// GetTCPRule returns one TCP rule.
func (c *Client) GetTCPRule(ctx context.Context, team, id string) (*TCPRule, error) {
	return get[TCPRule](ctx, c, apiPath("teams", team, "tcp-rules", id))
}

// DeleteTCPRule deletes a TCP rule.
func (c *Client) DeleteTCPRule(ctx context.Context, team, id string) error {
	return c.delete(ctx, apiPath("teams", team, "tcp-rules", id))
}

// ListCertificates lists a team's certificates.
func (c *Client) ListCertificates(ctx context.Context, team string) ([]Certificate, error) {
	return list[Certificate](ctx, c, apiPath("teams", team, "certificates"), nil)
}

// CreateCertificate uploads a certificate and its key.
func (c *Client) CreateCertificate(ctx context.Context, team string, spec CertificateSpec) (*Certificate, error) {
	return send[Certificate](ctx, c, http.MethodPost, apiPath("teams", team, "certificates"), spec)
}

// GetCertificate returns a certificate (without its key).
func (c *Client) GetCertificate(ctx context.Context, team, name string) (*Certificate, error) {
	return get[Certificate](ctx, c, apiPath("teams", team, "certificates", name))
}

// DeleteCertificate deletes a certificate.
func (c *Client) DeleteCertificate(ctx context.Context, team, name string) error {
	return c.delete(ctx, apiPath("teams", team, "certificates", name))
}

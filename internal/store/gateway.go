package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/berth-platform/berth/internal/model"
)

func (s *sqlStore) CreateHTTPRule(ctx context.Context, r *model.HTTPRule) error {
	if r == nil {
		return errNil("http rule")
	}
	if r.ID == "" {
		r.ID = newID()
	}
	r.CreatedAt = nowOr(r.CreatedAt)
	headers, err := jsonText(r.Headers)
	if err != nil {
		return fmt.Errorf("create http rule for %s%s: %w", r.Domain, r.Path, err)
	}
	options, err := jsonText(r.RouteOptions)
	if err != nil {
		return fmt.Errorf("create http rule for %s%s: %w", r.Domain, r.Path, err)
	}
	_, err = s.w().exec(ctx, `INSERT INTO http_rules
		(id, team, domain, path, component, port, certificate, weight, headers, options, created_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		r.ID, r.Team, r.Domain, r.Path, r.Component, r.Port, r.Certificate, r.Weight, headers, options, s.d.timeArg(r.CreatedAt))
	switch constraintOf(err) {
	case uniqueViolation:
		return conflict("http rule %q already exists", r.ID)
	case foreignKeyViolation:
		return notFound("component %q in team %q", r.Component, r.Team)
	}
	if err != nil {
		return fmt.Errorf("create http rule for %s%s: %w", r.Domain, r.Path, err)
	}
	return nil
}

const httpRuleCols = `id, team, domain, path, component, port, certificate, weight, headers, options, created_at`

func scanHTTPRule(row rowScanner) (model.HTTPRule, error) {
	var r model.HTTPRule
	err := row.Scan(&r.ID, &r.Team, &r.Domain, &r.Path, &r.Component, &r.Port, &r.Certificate, &r.Weight,
		jsonCol{&r.Headers}, jsonCol{&r.RouteOptions}, timeCol{&r.CreatedAt})
	return r, err
}

func (s *sqlStore) GetHTTPRule(ctx context.Context, team, id string) (*model.HTTPRule, error) {
	r, err := scanHTTPRule(s.r().queryRow(ctx, `SELECT `+httpRuleCols+` FROM http_rules WHERE team = ? AND id = ?`, team, id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, notFound("http rule %q in team %q", id, team)
	}
	if err != nil {
		return nil, fmt.Errorf("get http rule %q in team %q: %w", id, team, err)
	}
	return &r, nil
}

func (s *sqlStore) ListHTTPRules(ctx context.Context, team string) ([]model.HTTPRule, error) {
	rows, err := s.r().query(ctx, `SELECT `+httpRuleCols+` FROM http_rules WHERE team = ?
		ORDER BY domain, path, created_at, id`, team)
	rs, err := collect(rows, err, scanHTTPRule)
	if err != nil {
		return nil, fmt.Errorf("list http rules of team %q: %w", team, err)
	}
	return rs, nil
}

// UpdateHTTPRule writes everything but the ID, team and creation time.
func (s *sqlStore) UpdateHTTPRule(ctx context.Context, r *model.HTTPRule) error {
	if r == nil {
		return errNil("http rule")
	}
	headers, err := jsonText(r.Headers)
	if err != nil {
		return fmt.Errorf("update http rule %q in team %q: %w", r.ID, r.Team, err)
	}
	options, err := jsonText(r.RouteOptions)
	if err != nil {
		return fmt.Errorf("update http rule %q in team %q: %w", r.ID, r.Team, err)
	}
	err = s.w().queryRow(ctx, `UPDATE http_rules SET
		domain = ?, path = ?, component = ?, port = ?, certificate = ?, weight = ?, headers = ?, options = ?
		WHERE team = ? AND id = ? RETURNING created_at`,
		r.Domain, r.Path, r.Component, r.Port, r.Certificate, r.Weight, headers, options, r.Team, r.ID).Scan(timeCol{&r.CreatedAt})
	if constraintOf(err) == foreignKeyViolation {
		return notFound("component %q in team %q", r.Component, r.Team)
	}
	if errors.Is(err, sql.ErrNoRows) {
		return notFound("http rule %q in team %q", r.ID, r.Team)
	}
	if err != nil {
		return fmt.Errorf("update http rule %q in team %q: %w", r.ID, r.Team, err)
	}
	return nil
}

// ListAllHTTPRules lists the rules of every team (for the gateway).
func (s *sqlStore) ListAllHTTPRules(ctx context.Context) ([]model.HTTPRule, error) {
	rows, err := s.r().query(ctx, `SELECT `+httpRuleCols+` FROM http_rules ORDER BY domain, path, created_at, id`)
	rs, err := collect(rows, err, scanHTTPRule)
	if err != nil {
		return nil, fmt.Errorf("list http rules: %w", err)
	}
	return rs, nil
}

func (s *sqlStore) DeleteHTTPRule(ctx context.Context, team, id string) error {
	n, err := affected(s.w().exec(ctx, `DELETE FROM http_rules WHERE team = ? AND id = ?`, team, id))
	if err != nil {
		return fmt.Errorf("delete http rule %q in team %q: %w", id, team, err)
	}
	if n == 0 {
		return notFound("http rule %q in team %q", id, team)
	}
	return nil
}

// CreateTCPRule needs the gateway port chosen: picking a free one from the
// gateway's range is the caller's job (see ListAllTCPRules), and a
// concurrent pick of the same port ends in ErrConflict here.
func (s *sqlStore) CreateTCPRule(ctx context.Context, r *model.TCPRule) error {
	if r == nil {
		return errNil("tcp rule")
	}
	if r.GatewayPort < 1 || r.GatewayPort > 65535 {
		return &model.ValidationError{Field: "gateway_port", Rule: fmt.Sprintf("must be chosen, between 1 and 65535, before the rule is stored (got %d)", r.GatewayPort)}
	}
	if r.ID == "" {
		r.ID = newID()
	}
	r.CreatedAt = nowOr(r.CreatedAt)
	_, err := s.w().exec(ctx, `INSERT INTO tcp_rules (id, team, gateway_port, component, port, created_at)
		VALUES (?, ?, ?, ?, ?, ?)`,
		r.ID, r.Team, r.GatewayPort, r.Component, r.Port, s.d.timeArg(r.CreatedAt))
	switch constraintOf(err) {
	case uniqueViolation:
		return conflict("gateway port %d is taken", r.GatewayPort)
	case foreignKeyViolation:
		return notFound("component %q in team %q", r.Component, r.Team)
	}
	if err != nil {
		return fmt.Errorf("create tcp rule on gateway port %d: %w", r.GatewayPort, err)
	}
	return nil
}

const tcpRuleCols = `id, team, gateway_port, component, port, created_at`

func scanTCPRule(row rowScanner) (model.TCPRule, error) {
	var r model.TCPRule
	err := row.Scan(&r.ID, &r.Team, &r.GatewayPort, &r.Component, &r.Port, timeCol{&r.CreatedAt})
	return r, err
}

func (s *sqlStore) GetTCPRule(ctx context.Context, team, id string) (*model.TCPRule, error) {
	r, err := scanTCPRule(s.r().queryRow(ctx, `SELECT `+tcpRuleCols+` FROM tcp_rules WHERE team = ? AND id = ?`, team, id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, notFound("tcp rule %q in team %q", id, team)
	}
	if err != nil {
		return nil, fmt.Errorf("get tcp rule %q in team %q: %w", id, team, err)
	}
	return &r, nil
}

func (s *sqlStore) ListTCPRules(ctx context.Context, team string) ([]model.TCPRule, error) {
	rows, err := s.r().query(ctx, `SELECT `+tcpRuleCols+` FROM tcp_rules WHERE team = ? ORDER BY gateway_port`, team)
	rs, err := collect(rows, err, scanTCPRule)
	if err != nil {
		return nil, fmt.Errorf("list tcp rules of team %q: %w", team, err)
	}
	return rs, nil
}

func (s *sqlStore) ListAllTCPRules(ctx context.Context) ([]model.TCPRule, error) {
	rows, err := s.r().query(ctx, `SELECT `+tcpRuleCols+` FROM tcp_rules ORDER BY gateway_port`)
	rs, err := collect(rows, err, scanTCPRule)
	if err != nil {
		return nil, fmt.Errorf("list tcp rules: %w", err)
	}
	return rs, nil
}

func (s *sqlStore) DeleteTCPRule(ctx context.Context, team, id string) error {
	n, err := affected(s.w().exec(ctx, `DELETE FROM tcp_rules WHERE team = ? AND id = ?`, team, id))
	if err != nil {
		return fmt.Errorf("delete tcp rule %q in team %q: %w", id, team, err)
	}
	if n == 0 {
		return notFound("tcp rule %q in team %q", id, team)
	}
	return nil
}

func (s *sqlStore) CreateCertificate(ctx context.Context, c *model.Certificate) error {
	if c == nil {
		return errNil("certificate")
	}
	if c.ID == "" {
		c.ID = newID()
	}
	c.CreatedAt = nowOr(c.CreatedAt)
	c.NotAfter = storeTime(c.NotAfter)
	domains, err := jsonText(c.Domains)
	if err != nil {
		return fmt.Errorf("create certificate %q in team %q: %w", c.Name, c.Team, err)
	}
	if c.Source == "" {
		c.Source = model.CertUploaded
	}
	key, err := s.keys.seal(c.KeyPEM)
	if err != nil {
		return fmt.Errorf("create certificate %q in team %q: %w", c.Name, c.Team, err)
	}
	_, err = s.w().exec(ctx, `INSERT INTO certificates (id, team, name, cert_pem, key_pem, domains, not_after, source, created_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		c.ID, c.Team, c.Name, c.CertPEM, key, domains, s.d.timeArg(c.NotAfter), c.Source, s.d.timeArg(c.CreatedAt))
	switch constraintOf(err) {
	case uniqueViolation:
		return conflict("certificate %q in team %q already exists", c.Name, c.Team)
	case foreignKeyViolation:
		return notFound("team %q", c.Team)
	}
	if err != nil {
		return fmt.Errorf("create certificate %q in team %q: %w", c.Name, c.Team, err)
	}
	return nil
}

const certificateCols = `id, team, name, cert_pem, key_pem, domains, not_after, source, created_at`

// scanCertificate reads a certificate row, its private key opened.
func (s *sqlStore) scanCertificate(row rowScanner) (model.Certificate, error) {
	var c model.Certificate
	err := row.Scan(&c.ID, &c.Team, &c.Name, &c.CertPEM, &c.KeyPEM, jsonCol{&c.Domains},
		timeCol{&c.NotAfter}, &c.Source, timeCol{&c.CreatedAt})
	if err != nil {
		return c, err
	}
	if c.KeyPEM, err = s.keys.open(c.KeyPEM); err != nil {
		return c, fmt.Errorf("certificate %q of team %q: %w", c.Name, c.Team, err)
	}
	return c, nil
}

func (s *sqlStore) GetCertificate(ctx context.Context, team, name string) (*model.Certificate, error) {
	c, err := s.scanCertificate(s.r().queryRow(ctx, `SELECT `+certificateCols+` FROM certificates WHERE team = ? AND name = ?`, team, name))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, notFound("certificate %q in team %q", name, team)
	}
	if err != nil {
		return nil, fmt.Errorf("get certificate %q in team %q: %w", name, team, err)
	}
	return &c, nil
}

func (s *sqlStore) ListCertificates(ctx context.Context, team string) ([]model.Certificate, error) {
	rows, err := s.r().query(ctx, `SELECT `+certificateCols+` FROM certificates WHERE team = ? ORDER BY name`, team)
	cs, err := collect(rows, err, s.scanCertificate)
	if err != nil {
		return nil, fmt.Errorf("list certificates of team %q: %w", team, err)
	}
	return cs, nil
}

// ListAllCertificates lists the certificates of every team, keys included
// (for the gateway).
func (s *sqlStore) ListAllCertificates(ctx context.Context) ([]model.Certificate, error) {
	rows, err := s.r().query(ctx, `SELECT `+certificateCols+` FROM certificates ORDER BY team, name`)
	cs, err := collect(rows, err, s.scanCertificate)
	if err != nil {
		return nil, fmt.Errorf("list certificates: %w", err)
	}
	return cs, nil
}

// ReplaceCertificate stores a renewed certificate under the same name, or
// creates it.
func (s *sqlStore) ReplaceCertificate(ctx context.Context, c *model.Certificate) error {
	if c == nil {
		return errNil("certificate")
	}
	domains, err := jsonText(c.Domains)
	if err != nil {
		return fmt.Errorf("replace certificate %q in team %q: %w", c.Name, c.Team, err)
	}
	key, err := s.keys.seal(c.KeyPEM)
	if err != nil {
		return fmt.Errorf("replace certificate %q in team %q: %w", c.Name, c.Team, err)
	}
	n, err := affected(s.w().exec(ctx, `UPDATE certificates SET cert_pem = ?, key_pem = ?, domains = ?, not_after = ?, source = ?
		WHERE team = ? AND name = ?`, c.CertPEM, key, domains, s.d.timeArg(storeTime(c.NotAfter)), c.Source, c.Team, c.Name))
	if err != nil {
		return fmt.Errorf("replace certificate %q in team %q: %w", c.Name, c.Team, err)
	}
	if n == 0 {
		return s.CreateCertificate(ctx, c)
	}
	return nil
}

func (s *sqlStore) DeleteCertificate(ctx context.Context, team, name string) error {
	n, err := affected(s.w().exec(ctx, `DELETE FROM certificates WHERE team = ? AND name = ?`, team, name))
	if err != nil {
		return fmt.Errorf("delete certificate %q in team %q: %w", name, team, err)
	}
	if n == 0 {
		return notFound("certificate %q in team %q", name, team)
	}
	return nil
}

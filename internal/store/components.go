package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/berth-platform/berth/internal/model"
)

// componentSpec is the part of a component kept as one JSON document: what
// the runtime reads and no query filters on. Unlike model.Component it has
// no omitempty, so nil and empty slices read back as written. A field added
// to model.Component must be added here (or get a column) to be stored.
type componentSpec struct {
	Image     string         `json:"image"`
	Source    *model.Source  `json:"source"`
	Endpoints []string       `json:"endpoints"`
	Instances int            `json:"instances"`
	Memory    int64          `json:"memory"`
	CPU       int64          `json:"cpu"`
	Cmd       []string       `json:"cmd"`
	Args      []string       `json:"args"`
	Ports     []model.Port   `json:"ports"`
	Envs      []model.Env    `json:"envs"`
	Volumes   []model.Volume `json:"volumes"`
	Readiness *probeSpec     `json:"readiness"`
	Liveness  *probeSpec     `json:"liveness"`
	// SettleSeconds is how long a deploy's new instances must stay ready.
	SettleSeconds int `json:"settle_seconds"`
	// RestartEvent must survive a restart of berth: it is part of what the
	// running instances were started with, and adoption compares it.
	RestartEvent string `json:"restart_event"`

	RegisteredEndpoints []string `json:"registered_endpoints"`
	EndpointKey         string   `json:"endpoint_key"`
	InjectedEnv         []string `json:"injected_env"`
	RestartPending      string   `json:"restart_pending"`
	Gated               bool     `json:"gated"`
	BuildState          string   `json:"build_state"`
	BuildMessage        string   `json:"build_message"`
	WebhookSecret       string   `json:"webhook_secret"`
}

// probeSpec shadows model.Probe's omitempty Command for the same reason.
type probeSpec struct {
	model.Probe
	Command []string `json:"command"`
}

func toProbeSpec(p *model.Probe) *probeSpec {
	if p == nil {
		return nil
	}
	return &probeSpec{Probe: *p, Command: p.Command}
}

func (p *probeSpec) probe() *model.Probe {
	if p == nil {
		return nil
	}
	out := p.Probe
	out.Command = p.Command
	return &out
}

// specOf is the spec column of c, its secrets sealed.
func (s *sqlStore) specOf(c *model.Component) (string, error) {
	sp := componentSpec{
		Image: c.Image, Source: c.Source, Endpoints: c.Endpoints,
		Instances: c.Instances, Memory: c.Memory, CPU: c.CPU,
		Cmd: c.Cmd, Args: c.Args, Ports: c.Ports, Envs: c.Envs, Volumes: c.Volumes,
		Readiness: toProbeSpec(c.Readiness), Liveness: toProbeSpec(c.Liveness),
		SettleSeconds:       c.SettleSeconds,
		RestartEvent:        c.RestartEvent,
		RegisteredEndpoints: c.RegisteredEndpoints, EndpointKey: c.EndpointKey,
		InjectedEnv: c.InjectedEnv, RestartPending: c.RestartPending, Gated: c.Gated,
		BuildState: c.BuildState, BuildMessage: c.BuildMessage, WebhookSecret: c.WebhookSecret,
	}
	if err := s.keys.sealSpec(&sp); err != nil {
		return "", err
	}
	return jsonText(sp)
}

func (sp *componentSpec) applyTo(c *model.Component) {
	c.Image, c.Source, c.Endpoints = sp.Image, sp.Source, sp.Endpoints
	c.Instances, c.Memory, c.CPU = sp.Instances, sp.Memory, sp.CPU
	c.Cmd, c.Args, c.Ports, c.Envs, c.Volumes = sp.Cmd, sp.Args, sp.Ports, sp.Envs, sp.Volumes
	c.Readiness, c.Liveness = sp.Readiness.probe(), sp.Liveness.probe()
	c.SettleSeconds = sp.SettleSeconds
	c.RestartEvent = sp.RestartEvent
	c.RegisteredEndpoints, c.EndpointKey = sp.RegisteredEndpoints, sp.EndpointKey
	c.InjectedEnv, c.RestartPending, c.Gated = sp.InjectedEnv, sp.RestartPending, sp.Gated
	c.BuildState, c.BuildMessage, c.WebhookSecret = sp.BuildState, sp.BuildMessage, sp.WebhookSecret
}

// CreateComponent stores c at revision 1.
func (s *sqlStore) CreateComponent(ctx context.Context, c *model.Component) error {
	if c == nil {
		return errNil("component")
	}
	if c.ID == "" {
		c.ID = newID()
	}
	c.CreatedAt = nowOr(c.CreatedAt)
	c.UpdatedAt = c.CreatedAt
	c.Revision = 1
	spec, err := s.specOf(c)
	if err != nil {
		return fmt.Errorf("create component %q in team %q: %w", c.Alias, c.Team, err)
	}
	_, err = s.w().exec(ctx, `INSERT INTO components
		(id, team, app, alias, kind, desired, deploy_version, status, status_message, spec, revision, created_at, updated_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		c.ID, c.Team, c.App, c.Alias, string(c.Kind), string(c.Desired), c.DeployVersion,
		string(c.Status), c.StatusMessage, spec, c.Revision, s.d.timeArg(c.CreatedAt), s.d.timeArg(c.UpdatedAt))
	switch constraintOf(err) {
	case uniqueViolation:
		return conflict("component %q in team %q already exists", c.Alias, c.Team)
	case foreignKeyViolation:
		return notFound("app %q in team %q", c.App, c.Team)
	}
	if err != nil {
		return fmt.Errorf("create component %q in team %q: %w", c.Alias, c.Team, err)
	}
	return nil
}

const componentCols = `id, team, app, alias, kind, desired, deploy_version, status, status_message, spec, revision, created_at, updated_at`

// scanComponent reads a component row, its secrets opened.
func (s *sqlStore) scanComponent(row rowScanner) (model.Component, error) {
	var c model.Component
	var sp componentSpec
	err := row.Scan(&c.ID, &c.Team, &c.App, &c.Alias, &c.Kind, &c.Desired, &c.DeployVersion,
		&c.Status, &c.StatusMessage, jsonCol{&sp}, &c.Revision, timeCol{&c.CreatedAt}, timeCol{&c.UpdatedAt})
	if err != nil {
		return c, err
	}
	if err := s.keys.openSpec(&sp); err != nil {
		return c, fmt.Errorf("component %s: %w", c.ID, err)
	}
	sp.applyTo(&c)
	return c, nil
}

// getComponent reads the one component that where (a condition with ?
// placeholders) selects; what names it in errors.
func (s *sqlStore) getComponent(ctx context.Context, what, where string, args ...any) (*model.Component, error) {
	c, err := s.scanComponent(s.r().queryRow(ctx, `SELECT `+componentCols+` FROM components WHERE `+where, args...))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, notFound("%s", what)
	}
	if err != nil {
		return nil, fmt.Errorf("get %s: %w", what, err)
	}
	return &c, nil
}

func (s *sqlStore) GetComponent(ctx context.Context, team, app, alias string) (*model.Component, error) {
	return s.getComponent(ctx, fmt.Sprintf("component %q in app %q of team %q", alias, app, team),
		`team = ? AND app = ? AND alias = ?`, team, app, alias)
}

func (s *sqlStore) GetComponentByAlias(ctx context.Context, team, alias string) (*model.Component, error) {
	return s.getComponent(ctx, fmt.Sprintf("component %q in team %q", alias, team),
		`team = ? AND alias = ?`, team, alias)
}

func (s *sqlStore) GetComponentByID(ctx context.Context, id string) (*model.Component, error) {
	return s.getComponent(ctx, fmt.Sprintf("component with id %q", id), `id = ?`, id)
}

func (s *sqlStore) ListComponents(ctx context.Context, team, app string) ([]model.Component, error) {
	rows, err := s.r().query(ctx, `SELECT `+componentCols+` FROM components
		WHERE team = ? AND (? = '' OR app = ?) ORDER BY app, alias`, team, app, app)
	cs, err := collect(rows, err, s.scanComponent)
	if err != nil {
		return nil, fmt.Errorf("list components of team %q: %w", team, err)
	}
	return cs, nil
}

func (s *sqlStore) ListAllComponents(ctx context.Context) ([]model.Component, error) {
	rows, err := s.r().query(ctx, `SELECT `+componentCols+` FROM components ORDER BY team, app, alias`)
	cs, err := collect(rows, err, s.scanComponent)
	if err != nil {
		return nil, fmt.Errorf("list components: %w", err)
	}
	return cs, nil
}

// UpdateComponent finds the component by ID within its team, so a changed
// alias or app is a rename or a move; dependencies and gateway rules follow
// a rename through their ON UPDATE CASCADE foreign keys.
func (s *sqlStore) UpdateComponent(ctx context.Context, c *model.Component) error {
	if c == nil {
		return errNil("component")
	}
	spec, err := s.specOf(c)
	if err != nil {
		return fmt.Errorf("update component %q in team %q: %w", c.Alias, c.Team, err)
	}
	now := storeTime(time.Now())
	return s.tx(ctx, func(h handle) error {
		var rev int64
		var created time.Time
		err := h.queryRow(ctx, `UPDATE components SET
			app = ?, alias = ?, kind = ?, desired = ?, deploy_version = ?, status = ?, status_message = ?,
			spec = ?, revision = revision + 1, updated_at = ?
			WHERE id = ? AND team = ? AND revision = ?
			RETURNING revision, created_at`,
			c.App, c.Alias, string(c.Kind), string(c.Desired), c.DeployVersion, string(c.Status), c.StatusMessage,
			spec, s.d.timeArg(now), c.ID, c.Team, c.Revision).Scan(&rev, timeCol{&created})
		switch constraintOf(err) {
		case uniqueViolation:
			return conflict("component %q in team %q already exists", c.Alias, c.Team)
		case foreignKeyViolation:
			return notFound("app %q in team %q", c.App, c.Team)
		}
		if errors.Is(err, sql.ErrNoRows) {
			// Tell a lost race from a missing component.
			var stored int64
			err := h.queryRow(ctx, `SELECT revision FROM components WHERE id = ? AND team = ?`, c.ID, c.Team).Scan(&stored)
			if errors.Is(err, sql.ErrNoRows) {
				return notFound("component %q in team %q", c.Alias, c.Team)
			}
			if err != nil {
				return fmt.Errorf("update component %q in team %q: %w", c.Alias, c.Team, err)
			}
			return fmt.Errorf("component %q in team %q: revision %d, stored %d: %w", c.Alias, c.Team, c.Revision, stored, model.ErrStale)
		}
		if err != nil {
			return fmt.Errorf("update component %q in team %q: %w", c.Alias, c.Team, err)
		}
		c.Revision, c.UpdatedAt, c.CreatedAt = rev, now, created
		return nil
	})
}

// DeleteComponent leaves dependencies, versions and gateway rules to their
// ON DELETE CASCADE foreign keys.
func (s *sqlStore) DeleteComponent(ctx context.Context, team, app, alias string) error {
	n, err := affected(s.w().exec(ctx, `DELETE FROM components WHERE team = ? AND app = ? AND alias = ?`, team, app, alias))
	if err != nil {
		return fmt.Errorf("delete component %q in team %q: %w", alias, team, err)
	}
	if n == 0 {
		return notFound("component %q in app %q of team %q", alias, app, team)
	}
	return nil
}

func (s *sqlStore) AddDependency(ctx context.Context, d model.Dependency) error {
	_, err := s.w().exec(ctx, `INSERT INTO dependencies (team, from_alias, to_alias) VALUES (?, ?, ?)`, d.Team, d.From, d.To)
	switch constraintOf(err) {
	case uniqueViolation:
		return conflict("dependency %q -> %q in team %q already exists", d.From, d.To, d.Team)
	case foreignKeyViolation:
		return notFound("component %q or %q in team %q", d.From, d.To, d.Team)
	}
	if err != nil {
		return fmt.Errorf("add dependency %q -> %q in team %q: %w", d.From, d.To, d.Team, err)
	}
	return nil
}

func (s *sqlStore) RemoveDependency(ctx context.Context, d model.Dependency) error {
	n, err := affected(s.w().exec(ctx, `DELETE FROM dependencies WHERE team = ? AND from_alias = ? AND to_alias = ?`, d.Team, d.From, d.To))
	if err != nil {
		return fmt.Errorf("remove dependency %q -> %q in team %q: %w", d.From, d.To, d.Team, err)
	}
	if n == 0 {
		return notFound("dependency %q -> %q in team %q", d.From, d.To, d.Team)
	}
	return nil
}

func (s *sqlStore) ListDependencies(ctx context.Context, team string) ([]model.Dependency, error) {
	rows, err := s.r().query(ctx, `SELECT team, from_alias, to_alias FROM dependencies WHERE team = ? ORDER BY from_alias, to_alias`, team)
	ds, err := collect(rows, err, func(row rowScanner) (model.Dependency, error) {
		var d model.Dependency
		err := row.Scan(&d.Team, &d.From, &d.To)
		return d, err
	})
	if err != nil {
		return nil, fmt.Errorf("list dependencies of team %q: %w", team, err)
	}
	return ds, nil
}

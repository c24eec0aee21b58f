// Package store persists berth's state: SQLite (embedded, the default) or
// PostgreSQL (for HA), behind one interface with versioned migrations.
//
// Errors wrap model.ErrNotFound, model.ErrConflict (unique key taken) and
// model.ErrStale (a component update carried an old revision).
package store

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/berth-platform/berth/internal/model"
)

// Store is everything berth keeps. Names are team-scoped: a team name, an
// app name within it, a component alias within the team.
type Store interface {
	// Dialect is "sqlite" or "postgres".
	Dialect() string
	Ping(ctx context.Context) error
	Close() error

	// Settings are small server-wide values (e.g. the admin token's hash).
	GetSetting(ctx context.Context, key string) (string, error)
	PutSetting(ctx context.Context, key, value string) error

	CreateTeam(ctx context.Context, t *model.Team) error
	GetTeam(ctx context.Context, name string) (*model.Team, error)
	ListTeams(ctx context.Context) ([]model.Team, error)
	// DeleteTeam removes the team and everything it owns.
	DeleteTeam(ctx context.Context, name string) error

	// PutMember creates or updates (the role of) a member.
	PutMember(ctx context.Context, m *model.Member) error
	GetMember(ctx context.Context, team, name string) (*model.Member, error)
	ListMembers(ctx context.Context, team string) ([]model.Member, error)
	// DeleteMember also deletes the member's tokens.
	DeleteMember(ctx context.Context, team, name string) error

	CreateToken(ctx context.Context, t *model.Token) error
	GetTokenByHash(ctx context.Context, hash string) (*model.Token, error)
	ListTokens(ctx context.Context, team string) ([]model.Token, error)
	DeleteToken(ctx context.Context, team, id string) error
	TouchToken(ctx context.Context, id string, at time.Time) error

	CreateApp(ctx context.Context, a *model.App) error
	GetApp(ctx context.Context, team, name string) (*model.App, error)
	ListApps(ctx context.Context, team string) ([]model.App, error)
	UpdateApp(ctx context.Context, a *model.App) error
	// DeleteApp fails with ErrConflict while the app has components.
	DeleteApp(ctx context.Context, team, name string) error

	// CreateComponent fails with ErrConflict when the alias is taken in the team.
	CreateComponent(ctx context.Context, c *model.Component) error
	// GetComponent finds a component by alias within a team's app.
	GetComponent(ctx context.Context, team, app, alias string) (*model.Component, error)
	// GetComponentByAlias finds a component by alias anywhere in the team.
	GetComponentByAlias(ctx context.Context, team, alias string) (*model.Component, error)
	GetComponentByID(ctx context.Context, id string) (*model.Component, error)
	// ListComponents lists a team's components; app "" means every app.
	ListComponents(ctx context.Context, team, app string) ([]model.Component, error)
	// ListAllComponents lists every component of every team (for the worker).
	ListAllComponents(ctx context.Context) ([]model.Component, error)
	// UpdateComponent writes c if its Revision still matches the stored one
	// (else ErrStale), then increments c.Revision and sets UpdatedAt.
	UpdateComponent(ctx context.Context, c *model.Component) error
	// DeleteComponent also deletes its dependencies (both ways), versions and
	// gateway rules.
	DeleteComponent(ctx context.Context, team, app, alias string) error

	// AddDependency fails with ErrConflict if it exists already.
	AddDependency(ctx context.Context, d model.Dependency) error
	RemoveDependency(ctx context.Context, d model.Dependency) error
	// ListDependencies lists every dependency edge of a team.
	ListDependencies(ctx context.Context, team string) ([]model.Dependency, error)

	// CreateVersion assigns v.Number (one more than the highest so far for the
	// component, or the given number if set and free) and stores v.
	CreateVersion(ctx context.Context, v *model.Version) error
	UpdateVersion(ctx context.Context, v *model.Version) error
	GetVersion(ctx context.Context, componentID string, number int64) (*model.Version, error)
	// ListVersions returns a component's versions, newest first.
	ListVersions(ctx context.Context, componentID string) ([]model.Version, error)
	DeleteVersion(ctx context.Context, componentID string, number int64) error

	CreateHTTPRule(ctx context.Context, r *model.HTTPRule) error
	GetHTTPRule(ctx context.Context, team, id string) (*model.HTTPRule, error)
	ListHTTPRules(ctx context.Context, team string) ([]model.HTTPRule, error)
	UpdateHTTPRule(ctx context.Context, r *model.HTTPRule) error
	DeleteHTTPRule(ctx context.Context, team, id string) error
	// ListAllHTTPRules lists the rules of every team (for the gateway).
	ListAllHTTPRules(ctx context.Context) ([]model.HTTPRule, error)

	// CreateTCPRule fails with ErrConflict if the gateway port is taken.
	CreateTCPRule(ctx context.Context, r *model.TCPRule) error
	GetTCPRule(ctx context.Context, team, id string) (*model.TCPRule, error)
	ListTCPRules(ctx context.Context, team string) ([]model.TCPRule, error)
	// ListAllTCPRules lists rules of every team (to find free gateway ports).
	ListAllTCPRules(ctx context.Context) ([]model.TCPRule, error)
	DeleteTCPRule(ctx context.Context, team, id string) error

	// CreateCertificate fails with ErrConflict if the name is taken in the team.
	CreateCertificate(ctx context.Context, c *model.Certificate) error
	GetCertificate(ctx context.Context, team, name string) (*model.Certificate, error)
	ListCertificates(ctx context.Context, team string) ([]model.Certificate, error)
	DeleteCertificate(ctx context.Context, team, name string) error
	// ListAllCertificates lists every team's certificates, keys included.
	ListAllCertificates(ctx context.Context) ([]model.Certificate, error)
	// ReplaceCertificate overwrites a certificate of that name (a renewal),
	// or creates it.
	ReplaceCertificate(ctx context.Context, c *model.Certificate) error

	// ClaimDomains makes team own each domain, all or none; a domain owned
	// by another team (or under its wildcard, or for a wildcard a name
	// under it owned by another team) fails with *model.DomainTakenError.
	ClaimDomains(ctx context.Context, team string, domains []string) error
	ListDomainClaims(ctx context.Context) ([]model.DomainClaim, error)
	GetDomainClaim(ctx context.Context, domain string) (*model.DomainClaim, error)
	// PutDomainClaim gives a domain to a team, whoever owned it.
	PutDomainClaim(ctx context.Context, c *model.DomainClaim) error
	DeleteDomainClaim(ctx context.Context, domain string) error

	// PutRegistry creates or replaces a team's registry entry (by host).
	PutRegistry(ctx context.Context, r *model.Registry) error
	GetRegistry(ctx context.Context, team, host string) (*model.Registry, error)
	ListRegistries(ctx context.Context, team string) ([]model.Registry, error)
	DeleteRegistry(ctx context.Context, team, host string) error

	// CreateEvent stores the event and, when task is not nil, enqueues the
	// task in the same transaction, so an accepted operation is never lost.
	CreateEvent(ctx context.Context, e *model.Event, task *model.Task) error
	GetEvent(ctx context.Context, id string) (*model.Event, error)
	// ListEvents returns events newest first.
	ListEvents(ctx context.Context, f model.EventFilter) ([]model.Event, error)
	UpdateEvent(ctx context.Context, e *model.Event) error
	// AppendLog stores lines after the event's last one, assigning each its
	// Seq (1, 2, ...) and filling Time if zero; it returns the lines as stored.
	AppendLog(ctx context.Context, eventID string, lines []model.LogLine) ([]model.LogLine, error)
	// ReadLog returns up to limit lines with Seq > after, in order.
	ReadLog(ctx context.Context, eventID string, after int64, limit int) ([]model.LogLine, error)

	// ClaimTask leases the oldest claimable task to owner until now+lease and
	// increments its Attempts. A task is claimable when it is queued, or
	// running with an expired lease, and no older unfinished task has the
	// same target. It returns (nil, nil) when nothing is claimable.
	ClaimTask(ctx context.Context, owner string, now time.Time, lease time.Duration) (*model.Task, error)
	// RenewTask extends the lease; ErrNotFound if owner lost it.
	RenewTask(ctx context.Context, id, owner string, until time.Time) error
	// FinishTask records the outcome if owner still holds the lease (else
	// ErrNotFound: another worker owns it now, and this outcome must not count).
	FinishTask(ctx context.Context, id, owner string, status model.TaskStatus, errMsg string) error
	// ReleaseTasks expires the leases of every running task not owned by
	// keepOwner, so they are claimable at once. A single-node server calls it
	// at start, when no other server can hold a lease.
	ReleaseTasks(ctx context.Context, keepOwner string) (int, error)
	GetTask(ctx context.Context, id string) (*model.Task, error)
	// CountTasks counts tasks by status.
	CountTasks(ctx context.Context) (map[model.TaskStatus]int, error)
}

// Open opens the store named by dsn: "" or a path for SQLite under dataDir,
// "postgres://..." for PostgreSQL. It runs pending migrations. With a
// dataDir, secrets are sealed at rest with the key DATA/secret.key
// (created on first start), and rows written before are sealed now.
func Open(ctx context.Context, dsn, dataDir string) (Store, error) {
	s, err := open(ctx, dsn, dataDir)
	if err != nil {
		return nil, err
	}
	if dataDir == "" {
		return s, nil
	}
	if err := s.(*sqlStore).useSecretKey(ctx, dataDir); err != nil {
		s.Close()
		return nil, err
	}
	return s, nil
}

func open(ctx context.Context, dsn, dataDir string) (Store, error) {
	if strings.HasPrefix(dsn, "postgres://") || strings.HasPrefix(dsn, "postgresql://") {
		s, err := openPostgres(ctx, dsn)
		if err != nil {
			return nil, fmt.Errorf("open postgres: %w", err)
		}
		return s, nil
	}
	path := dsn
	if path == "" {
		path = dataDir + "/berth.db"
	}
	path = strings.TrimPrefix(path, "sqlite://")
	s, err := openSQLite(ctx, path)
	if err != nil {
		return nil, fmt.Errorf("open sqlite %s: %w", path, err)
	}
	return s, nil
}

package store

import (
	"cmp"
	"context"
	"embed"
	"fmt"
	"io/fs"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Each engine has its own migration files, numbered from 0001; a file never
// changes once released, a schema change is a new file.
//
//go:embed migrations/sqlite/*.sql migrations/postgres/*.sql
var migrationFiles embed.FS

type migration struct {
	version int64
	name    string // the file name, for messages
	sql     string
}

// loadMigrations reads the migrations of one engine in version order.
func loadMigrations(engine string) ([]migration, error) {
	dir := "migrations/" + engine
	entries, err := fs.ReadDir(migrationFiles, dir)
	if err != nil {
		return nil, fmt.Errorf("read migrations: %w", err)
	}
	var ms []migration
	for _, e := range entries {
		name := e.Name()
		num, _, ok := strings.Cut(strings.TrimSuffix(name, ".sql"), "_")
		v, err := strconv.ParseInt(num, 10, 64)
		if !ok || err != nil || v < 1 {
			return nil, fmt.Errorf("migration %s/%s: name must be NNNN_description.sql", dir, name)
		}
		body, err := fs.ReadFile(migrationFiles, dir+"/"+name)
		if err != nil {
			return nil, fmt.Errorf("read migration %s: %w", name, err)
		}
		ms = append(ms, migration{version: v, name: name, sql: string(body)})
	}
	slices.SortFunc(ms, func(a, b migration) int { return cmp.Compare(a.version, b.version) })
	for i := 1; i < len(ms); i++ {
		if ms[i].version == ms[i-1].version {
			return nil, fmt.Errorf("migrations %s and %s share version %d", ms[i-1].name, ms[i].name, ms[i].version)
		}
	}
	return ms, nil
}

// migrate applies the pending migrations, each in its own transaction, so a
// failing one leaves the schema at the previous version.
func (s *sqlStore) migrate(ctx context.Context) error {
	ms, err := loadMigrations(s.d.name)
	if err != nil {
		return err
	}
	if len(ms) == 0 {
		return fmt.Errorf("no migrations embedded for %s", s.d.name)
	}
	latest := ms[len(ms)-1].version
	for _, m := range ms {
		if err := s.tx(ctx, func(h handle) error { return s.applyMigration(ctx, h, m, latest) }); err != nil {
			return fmt.Errorf("migration %s: %w", m.name, err)
		}
	}
	return nil
}

func (s *sqlStore) applyMigration(ctx context.Context, h handle, m migration, latest int64) error {
	// Servers starting together against one PostgreSQL must not apply a
	// migration twice; the lock is taken before the bookkeeping table is
	// even created, because concurrent CREATE TABLE IF NOT EXISTS can fail.
	if s.d.xactLock != nil {
		if err := s.d.xactLock(ctx, h, "berth.migrations"); err != nil {
			return err
		}
	}
	if _, err := h.exec(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
		version    BIGINT PRIMARY KEY,
		name       TEXT NOT NULL,
		applied_at `+s.d.timeType+` NOT NULL)`); err != nil {
		return fmt.Errorf("create schema_migrations: %w", err)
	}
	var current int64
	if err := h.queryRow(ctx, `SELECT COALESCE(MAX(version), 0) FROM schema_migrations`).Scan(&current); err != nil {
		return fmt.Errorf("read schema version: %w", err)
	}
	if current > latest {
		return fmt.Errorf("the database schema is at version %d, newer than this berth knows (%d): run a newer berth", current, latest)
	}
	var n int
	if err := h.queryRow(ctx, `SELECT COUNT(*) FROM schema_migrations WHERE version = ?`, m.version).Scan(&n); err != nil {
		return fmt.Errorf("read schema_migrations: %w", err)
	}
	if n > 0 {
		return nil
	}
	// Not through h.exec: the file is not rebound, and without arguments
	// both drivers accept several statements in one call.
	if _, err := h.q.ExecContext(ctx, m.sql); err != nil {
		return fmt.Errorf("apply: %w", err)
	}
	if _, err := h.exec(ctx, `INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)`,
		m.version, m.name, s.d.timeArg(storeTime(time.Now()))); err != nil {
		return fmt.Errorf("record: %w", err)
	}
	return nil
}

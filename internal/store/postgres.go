package store

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // registers the "pgx" driver
)

var postgresDialect = &dialect{
	name:       "postgres",
	numbered:   true,
	timeType:   "TIMESTAMPTZ",
	timeArg:    func(t time.Time) any { return t },
	skipLocked: " FOR UPDATE SKIP LOCKED",
	xactLock: func(ctx context.Context, h handle, key string) error {
		// Advisory locks take a number; hashing the name can only make two
		// unrelated names share a lock, which costs waiting, not safety.
		if _, err := h.exec(ctx, `SELECT pg_advisory_xact_lock(hashtextextended(?, 0))`, key); err != nil {
			return fmt.Errorf("lock %s: %w", key, err)
		}
		return nil
	},
}

// postgresMaxConns bounds each server's pool: several servers share one
// PostgreSQL, whose max_connections defaults to 100.
const postgresMaxConns = 16

// openPostgres connects to dsn and migrates the database.
func openPostgres(ctx context.Context, dsn string) (Store, error) {
	db, err := sql.Open("pgx", dsn)
	if err != nil {
		return nil, err
	}
	db.SetMaxOpenConns(postgresMaxConns)
	db.SetMaxIdleConns(postgresMaxConns / 4)
	db.SetConnMaxIdleTime(5 * time.Minute)
	if err := db.PingContext(ctx); err != nil {
		db.Close()
		return nil, err
	}
	s := &sqlStore{d: postgresDialect, db: db, rdb: db}
	if err := s.migrate(ctx); err != nil {
		db.Close()
		return nil, err
	}
	return s, nil
}

package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/google/uuid"
)

// sqlStore implements Store for both engines on database/sql; what differs
// between them is in d and in the migration files.
type sqlStore struct {
	d *dialect
	// db takes every write and transaction. On SQLite it holds a single
	// connection: SQLite has one writer at a time, and queueing in the pool
	// beats failing with SQLITE_BUSY when API calls write concurrently.
	db *sql.DB
	// rdb serves reads. On SQLite it is a separate read-only pool, so reads
	// (WAL lets them run beside the writer) never wait for the writer's
	// connection; on PostgreSQL it is db.
	rdb *sql.DB
	// keys seal secrets at rest; nil (a store opened without a data
	// directory) keeps them in clear.
	keys *keyring
}

func (s *sqlStore) Dialect() string { return s.d.name }

func (s *sqlStore) Ping(ctx context.Context) error {
	if err := s.db.PingContext(ctx); err != nil {
		return fmt.Errorf("ping %s: %w", s.d.name, err)
	}
	if s.rdb != s.db {
		if err := s.rdb.PingContext(ctx); err != nil {
			return fmt.Errorf("ping %s readers: %w", s.d.name, err)
		}
	}
	return nil
}

func (s *sqlStore) Close() error {
	var errs []error
	if s.rdb != s.db {
		errs = append(errs, s.rdb.Close())
	}
	errs = append(errs, s.db.Close())
	return errors.Join(errs...)
}

// querier is what *sql.DB and *sql.Tx share.
type querier interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// handle runs queries written with ? placeholders on a pool or inside a
// transaction, so one method body serves both.
type handle struct {
	q querier
	d *dialect
}

func (h handle) exec(ctx context.Context, query string, args ...any) (sql.Result, error) {
	return h.q.ExecContext(ctx, h.d.rebind(query), args...)
}

func (h handle) query(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	return h.q.QueryContext(ctx, h.d.rebind(query), args...)
}

func (h handle) queryRow(ctx context.Context, query string, args ...any) *sql.Row {
	return h.q.QueryRowContext(ctx, h.d.rebind(query), args...)
}

// w is the handle for single-statement writes.
func (s *sqlStore) w() handle { return handle{s.db, s.d} }

// r is the handle for reads.
func (s *sqlStore) r() handle { return handle{s.rdb, s.d} }

// tx runs fn in a transaction on the writer pool, committing when fn
// returns nil. fn must use only the handle it is given: on SQLite the pool
// has a single connection, which the transaction holds.
func (s *sqlStore) tx(ctx context.Context, fn func(h handle) error) error {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("begin transaction: %w", err)
	}
	if err := fn(handle{tx, s.d}); err != nil {
		_ = tx.Rollback() // the error from fn is the one worth reporting
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("commit: %w", err)
	}
	return nil
}

// rowScanner is a *sql.Row or *sql.Rows.
type rowScanner interface {
	Scan(dest ...any) error
}

// collect scans every row with scan. It returns an empty, non-nil slice
// when there are none, so that listings encode as [] rather than null.
func collect[T any](rows *sql.Rows, err error, scan func(rowScanner) (T, error)) ([]T, error) {
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := []T{}
	for rows.Next() {
		v, err := scan(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	return out, nil
}

// affected reports how many rows a write changed.
func affected(res sql.Result, err error) (int64, error) {
	if err != nil {
		return 0, err
	}
	return res.RowsAffected()
}

// newID names a new row when the caller left its ID empty.
func newID() string { return uuid.NewString() }

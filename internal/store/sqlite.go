package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	_ "modernc.org/sqlite" // registers the "sqlite" driver
)

var sqliteDialect = &dialect{
	name:     "sqlite",
	timeType: "TEXT",
	timeArg:  func(t time.Time) any { return t.Format(sqliteTimeLayout) },
}

// Connection settings. WAL lets readers run beside the writer; NORMAL
// synchronous is safe in WAL mode (a power loss may drop the last commits,
// never corrupt); foreign keys are off by default in SQLite and the schema
// relies on them for cascades. The busy timeout covers other processes (a
// backup, a second berth by mistake) holding the lock.
const (
	sqliteCommon = "_pragma=busy_timeout(10000)&_pragma=foreign_keys(1)"
	// _txlock=immediate takes the write lock at BEGIN: a deferred transaction
	// that reads and then writes fails with SQLITE_BUSY instead of waiting
	// when another process wrote in between.
	sqliteWriter = sqliteCommon + "&_pragma=journal_mode(WAL)&_pragma=synchronous(NORMAL)&_txlock=immediate"
	sqliteReader = sqliteCommon + "&_pragma=query_only(1)"
)

// openSQLite opens (creating if needed) the database file at path and
// migrates it.
func openSQLite(ctx context.Context, path string) (Store, error) {
	if path == "" {
		return nil, fmt.Errorf("empty database path")
	}
	// An in-memory database lives in its connection, so it cannot have a
	// second pool for readers.
	memory := path == ":memory:" || strings.HasPrefix(path, "file::memory:") || strings.Contains(path, "mode=memory")
	if !memory {
		if err := os.MkdirAll(filepath.Dir(strings.TrimPrefix(path, "file:")), 0o750); err != nil {
			return nil, fmt.Errorf("create database directory: %w", err)
		}
		if err := privateDBFiles(path); err != nil {
			return nil, err
		}
	}
	sep := "?"
	if strings.Contains(path, "?") {
		sep = "&"
	}

	db, err := sql.Open("sqlite", path+sep+sqliteWriter)
	if err != nil {
		return nil, err
	}
	db.SetMaxOpenConns(1)
	db.SetMaxIdleConns(1)
	db.SetConnMaxLifetime(0)
	db.SetConnMaxIdleTime(0)
	if err := db.PingContext(ctx); err != nil {
		db.Close()
		return nil, err
	}
	s := &sqlStore{d: sqliteDialect, db: db, rdb: db}
	if err := s.migrate(ctx); err != nil {
		db.Close()
		return nil, err
	}
	if memory {
		return s, nil
	}

	rdb, err := sql.Open("sqlite", path+sep+sqliteReader)
	if err != nil {
		db.Close()
		return nil, err
	}
	rdb.SetMaxOpenConns(max(4, runtime.NumCPU()))
	rdb.SetMaxIdleConns(max(4, runtime.NumCPU()))
	if err := rdb.PingContext(ctx); err != nil {
		rdb.Close()
		db.Close()
		return nil, fmt.Errorf("open readers: %w", err)
	}
	s.rdb = rdb
	return s, nil
}

// privateDBFiles makes the database owner-only before SQLite opens it:
// SQLite creates files 0644, and gives the WAL and shared-memory files the
// mode of the database, so a database created (or tightened) 0600 here
// keeps all three from other users. Files of older installs are tightened.
func privateDBFiles(path string) error {
	file, _, _ := strings.Cut(strings.TrimPrefix(path, "file:"), "?")
	f, err := os.OpenFile(file, os.O_RDONLY|os.O_CREATE, 0o600)
	if err != nil {
		return fmt.Errorf("create database file: %w", err)
	}
	f.Close()
	for _, p := range []string{file, file + "-wal", file + "-shm", file + "-journal"} {
		fi, err := os.Stat(p)
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			return fmt.Errorf("database file: %w", err)
		}
		if fi.Mode().Perm()&0o077 != 0 {
			if err := os.Chmod(p, fi.Mode().Perm()&^0o077); err != nil {
				return fmt.Errorf("make %s private: %w", p, err)
			}
		}
	}
	return nil
}

package store

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"errors"
	"net/url"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/berth-platform/berth/internal/model"
)

// Every test runs against both engines through eachEngine: SQLite always,
// PostgreSQL when BERTH_TEST_POSTGRES holds a postgres:// DSN. Each run gets
// a database of its own (a fresh file, or a fresh PostgreSQL schema), so
// tests run in parallel without seeing each other's rows.

const postgresEnv = "BERTH_TEST_POSTGRES"

// eachEngine runs fn once per engine as parallel subtests, with a fresh
// store and the DSN that reopens it.
func eachEngine(t *testing.T, fn func(t *testing.T, s Store, dsn string)) {
	t.Helper()
	for _, engine := range []string{"sqlite", "postgres"} {
		t.Run(engine, func(t *testing.T) {
			t.Parallel()
			dsn := newTestDSN(t, engine)
			fn(t, openTestStore(t, dsn), dsn)
		})
	}
}

// each is eachEngine for tests that do not reopen the store.
func each(t *testing.T, fn func(t *testing.T, s Store)) {
	t.Helper()
	eachEngine(t, func(t *testing.T, s Store, _ string) { fn(t, s) })
}

// newTestDSN makes an empty database for one test and returns its DSN.
func newTestDSN(t *testing.T, engine string) string {
	t.Helper()
	if engine == "sqlite" {
		return filepath.Join(t.TempDir(), "berth.db")
	}
	base := os.Getenv(postgresEnv)
	if base == "" {
		if os.Getenv("CI") == "true" {
			t.Fatalf("%s is empty, but CI=true and CI must run the PostgreSQL variant: set %s to a postgres:// DSN, "+
				"e.g. %s=$(scripts/postgres-test.sh /tmp/pgtest 55432), and stop that server afterwards with scripts/postgres-test.sh stop /tmp/pgtest",
				postgresEnv, postgresEnv, postgresEnv)
		}
		t.Skipf("PostgreSQL variant skipped: %s is not set; to run it, set it to a postgres:// DSN, e.g. %s=$(scripts/postgres-test.sh /tmp/pgtest 55432)",
			postgresEnv, postgresEnv)
	}
	u, err := url.Parse(base)
	if err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") {
		t.Fatalf("%s must be a postgres:// URL (Open recognizes no other form), got %q", postgresEnv, base)
	}
	var b [6]byte
	_, _ = rand.Read(b[:])
	schema := "berth_test_" + hex.EncodeToString(b[:])

	admin, err := sql.Open("pgx", base)
	if err != nil {
		t.Fatalf("connect to %s: %v", postgresEnv, err)
	}
	if _, err := admin.ExecContext(context.Background(), `CREATE SCHEMA `+schema); err != nil {
		admin.Close()
		t.Fatalf("create test schema: %v", err)
	}
	// Registered before openTestStore's cleanup, so it runs after the store
	// is closed.
	t.Cleanup(func() {
		defer admin.Close()
		if _, err := admin.ExecContext(context.Background(), `DROP SCHEMA `+schema+` CASCADE`); err != nil {
			t.Errorf("drop test schema %s: %v", schema, err)
		}
	})
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	return u.String()
}

func openTestStore(t *testing.T, dsn string) Store {
	t.Helper()
	s, err := Open(context.Background(), dsn, "")
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return s
}

// must fails the test on err; it keeps fixtures short.
func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// wantErr checks that err wraps target and, when msg is not empty, reads msg.
func wantErr(t *testing.T, err, target error, msg string) {
	t.Helper()
	if !errors.Is(err, target) {
		t.Fatalf("got error %v, want one wrapping %v", err, target)
	}
	if msg != "" && err.Error() != msg {
		t.Fatalf("got message %q, want %q", err.Error(), msg)
	}
}

// same compares with reflect.DeepEqual: the store keeps nil and empty
// slices and maps apart, and returns times exactly as storeTime left them in
// the caller's struct.
func same(t *testing.T, what string, got, want any) {
	t.Helper()
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("%s:\n got %#v\nwant %#v", what, got, want)
	}
}

// bg is the context of test calls; cleanups use their own, as t.Context is
// canceled before they run.
var bg = context.Background()

// fixture creates team, app and components with the given aliases.
func fixture(t *testing.T, s Store, team, app string, aliases ...string) []*model.Component {
	t.Helper()
	if _, err := s.GetTeam(bg, team); errors.Is(err, model.ErrNotFound) {
		must(t, s.CreateTeam(bg, &model.Team{Name: team}))
	}
	if _, err := s.GetApp(bg, team, app); errors.Is(err, model.ErrNotFound) {
		must(t, s.CreateApp(bg, &model.App{Team: team, Name: app}))
	}
	var cs []*model.Component
	for _, a := range aliases {
		c := &model.Component{Team: team, App: app, Alias: a, Kind: model.KindImage, Image: "nginx:1.25"}
		c.Normalize()
		must(t, s.CreateComponent(bg, c))
		cs = append(cs, c)
	}
	return cs
}

func TestOpenDialect(t *testing.T) {
	eachEngine(t, func(t *testing.T, s Store, dsn string) {
		want := "sqlite"
		if strings.HasPrefix(dsn, "postgres") {
			want = "postgres"
		}
		if s.Dialect() != want {
			t.Fatalf("Dialect() = %q, want %q", s.Dialect(), want)
		}
		must(t, s.Ping(bg))
	})
}

func TestOpenDefaultPath(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	s, err := Open(bg, "", dir)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if _, err := os.Stat(filepath.Join(dir, "berth.db")); err != nil {
		t.Fatalf("the database is not at dataDir/berth.db: %v", err)
	}
}

func TestOpenMemory(t *testing.T) {
	s, err := Open(bg, ":memory:", "")
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	must(t, s.CreateTeam(bg, &model.Team{Name: "shop"}))
	if _, err := s.GetTeam(bg, "shop"); err != nil {
		t.Fatalf("an in-memory store must read its own writes: %v", err)
	}
}

func TestMigrationsIdempotent(t *testing.T) {
	eachEngine(t, func(t *testing.T, s Store, dsn string) {
		must(t, s.CreateTeam(bg, &model.Team{Name: "shop"}))
		ms, err := loadMigrations(s.Dialect())
		must(t, err)
		for range 2 {
			s2 := openTestStore(t, dsn)
			if _, err := s2.GetTeam(bg, "shop"); err != nil {
				t.Fatalf("data lost on reopen: %v", err)
			}
			var n int
			must(t, s2.(*sqlStore).db.QueryRowContext(bg, `SELECT COUNT(*) FROM schema_migrations`).Scan(&n))
			if n != len(ms) {
				t.Fatalf("schema_migrations has %d rows after reopening, want %d", n, len(ms))
			}
		}
	})
}

func TestMigrationsRefuseNewerSchema(t *testing.T) {
	eachEngine(t, func(t *testing.T, s Store, dsn string) {
		_, err := s.(*sqlStore).db.ExecContext(bg, s.(*sqlStore).d.rebind(
			`INSERT INTO schema_migrations (version, name, applied_at) VALUES (9999, 'future', ?)`),
			s.(*sqlStore).d.timeArg(storeTime(time.Now())))
		must(t, err)
		s2, err := Open(bg, dsn, "")
		if err == nil {
			s2.Close()
			t.Fatal("Open accepted a schema newer than its migrations")
		}
		if !strings.Contains(err.Error(), "newer") {
			t.Fatalf("unexpected error: %v", err)
		}
	})
}

func TestSettings(t *testing.T) {
	each(t, func(t *testing.T, s Store) {
		_, err := s.GetSetting(bg, "admin")
		wantErr(t, err, model.ErrNotFound, `setting "admin": not found`)
		must(t, s.PutSetting(bg, "admin", "h1"))
		must(t, s.PutSetting(bg, "admin", "h2"))
		v, err := s.GetSetting(bg, "admin")
		must(t, err)
		same(t, "setting", v, "h2")
	})
}

func TestTimesAreUTCMicroseconds(t *testing.T) {
	each(t, func(t *testing.T, s Store) {
		loc := time.FixedZone("UTC+8", 8*3600)
		in := time.Date(2025, 3, 4, 5, 6, 7, 123456789, loc)
		team := &model.Team{Name: "shop", CreatedAt: in}
		must(t, s.CreateTeam(bg, team))
		got, err := s.GetTeam(bg, "shop")
		must(t, err)
		want := time.Date(2025, 3, 3, 21, 6, 7, 123456000, time.UTC)
		if got.CreatedAt != want || got.CreatedAt.Location() != time.UTC {
			t.Fatalf("got %v (%v), want %v in UTC", got.CreatedAt, got.CreatedAt.Location(), want)
		}
		same(t, "team", *got, *team)
	})
}

package e2e

import (
	"context"
	"database/sql"
	"fmt"
	"net/url"
	"os"
	"testing"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib"
)

// postgresDSN makes a fresh database on the server of BERTH_TEST_POSTGRES
// and drops it after the test. Outside CI, no server means skip; in CI the
// test command always provides one, so its absence fails.
func postgresDSN(t *testing.T) string {
	t.Helper()
	base := os.Getenv("BERTH_TEST_POSTGRES")
	if base == "" {
		if os.Getenv("CI") == "true" {
			t.Fatal("BERTH_TEST_POSTGRES is empty in CI: run the suite with ./scripts/test.sh, which starts PostgreSQL")
		}
		t.Skip("BERTH_TEST_POSTGRES not set: run ./scripts/test.sh to test on PostgreSQL too")
	}
	admin, err := sql.Open("pgx", base)
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	name := fmt.Sprintf("berth_e2e_%d", time.Now().UnixNano())
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := admin.ExecContext(ctx, "CREATE DATABASE "+name); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		db, err := sql.Open("pgx", base)
		if err != nil {
			return
		}
		defer db.Close()
		_, _ = db.Exec("DROP DATABASE IF EXISTS " + name + " WITH (FORCE)")
	})
	u, err := url.Parse(base)
	if err != nil {
		t.Fatal(err)
	}
	u.Path = "/" + name
	return u.String()
}

// On PostgreSQL nothing tells a new server that the old one is dead, so
// the interrupted tasks come back when their leases expire.
func TestSIGKILLOnPostgres(t *testing.T) {
	dsn := postgresDSN(t)
	s := startServer(t, "--database", dsn, "--debug-task-delay", "2s", "--workers", "1")
	setupShop(s)
	s.must(201, "POST", comps, map[string]any{"alias": "a", "image": "nginx"})
	var first, second struct {
		EventID string `json:"event_id"`
	}
	s.must(202, "POST", comps+"/a/deploy", nil).json(t, &first)
	s.must(202, "POST", comps+"/a/scale", map[string]any{"instances": 2}).json(t, &second)
	time.Sleep(500 * time.Millisecond)
	s.kill()
	s.args = []string{"--runtime", "none", "--database", dsn}
	s.start()
	for _, id := range []string{first.EventID, second.EventID} {
		if ev := s.waitEvent(id); ev["status"] != "success" {
			t.Fatalf("event %s: %v", id, ev)
		}
	}
	var hist struct{ Lines []struct{ Text string } }
	s.must(200, "GET", "/api/v1/events/"+first.EventID+"/log", nil).json(t, &hist)
	found := false
	for _, l := range hist.Lines {
		found = found || l.Text == "berth restarted while this deploy ran; resuming it (attempt 2)"
	}
	if !found {
		t.Fatalf("the interrupted deploy does not say it resumed: %v", hist.Lines)
	}
	var c map[string]any
	s.must(200, "GET", comps+"/a", nil).json(t, &c)
	if c["replicas"] != 2.0 || c["deploy_version"] != 1.0 {
		t.Fatalf("after recovery: %v", c)
	}
}

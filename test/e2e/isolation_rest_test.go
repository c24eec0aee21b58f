package e2e

import (
	"bytes"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// The secret values the attacker greps the data directory for.
const (
	restEnvSecret = "env-at-rest-5c1d9e"
	restGitSecret = "git-at-rest-5c1d9e"
	restRegSecret = "registry-at-rest-5c1d9e"
)

// TestAtRestDataDirectoryIsPrivate plays another user of the machine who
// reads berth's data directory: it must be 0700 with owner-only files, and
// the database, WAL included, must not hold a team's secrets in clear.
func TestAtRestDataDirectoryIsPrivate(t *testing.T) {
	s := startServer(t)
	restFixture(t, s)

	wantMode := map[string]os.FileMode{
		"": 0o700, "logs": 0o700, "berth.db": 0o600, "secret.key": 0o600, "admin-token": 0o600,
		"berth.lock": 0o600, "logs/berth.log": 0o600,
	}
	if _, err := os.Stat(filepath.Join(s.data, "berth.db-wal")); err == nil {
		wantMode["berth.db-wal"] = 0o600
	}
	for name, want := range wantMode {
		fi, err := os.Stat(filepath.Join(s.data, name))
		if err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		if got := fi.Mode().Perm(); got != want {
			t.Errorf("DATA/%s has mode %o, want %o", name, got, want)
		}
	}
	noClearSecrets(t, s.data)

	// An install that an older berth left world-readable is tightened at
	// its next start.
	s.stop()
	for _, f := range []string{"", "logs", "berth.db", "secret.key", "logs/berth.log"} {
		mode := os.FileMode(0o644)
		if f == "" || f == "logs" {
			mode = 0o755
		}
		if err := os.Chmod(filepath.Join(s.data, f), mode); err != nil {
			t.Fatal(err)
		}
	}
	s.start()
	for _, f := range []string{"", "logs", "berth.db", "secret.key", "logs/berth.log"} {
		fi, err := os.Stat(filepath.Join(s.data, f))
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm()&0o077 != 0 {
			t.Errorf("after a restart DATA/%s still has mode %o", f, fi.Mode().Perm())
		}
	}
}

// TestAtRestRotateSecretKey restarts with --rotate-secret-key: the key file
// changes, the secrets still read (the component is served), and none is in
// clear.
func TestAtRestRotateSecretKey(t *testing.T) {
	s := startServer(t)
	comps := restFixture(t, s)
	before, err := os.ReadFile(filepath.Join(s.data, "secret.key"))
	if err != nil {
		t.Fatal(err)
	}
	s.stop()
	s.args = append(s.args, "--rotate-secret-key")
	s.start()
	after, err := os.ReadFile(filepath.Join(s.data, "secret.key"))
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Equal(before, after) {
		t.Error("--rotate-secret-key kept DATA/secret.key")
	}
	var got struct {
		Envs []struct{ Name, Value string }
	}
	s.must(200, "GET", comps+"/web", nil).json(t, &got)
	if len(got.Envs) != 1 || got.Envs[0].Value != "******" {
		t.Errorf("after the rotation the component reads back envs %+v", got.Envs)
	}
	noClearSecrets(t, s.data)
}

// restFixture stores a secret env, a git password and a registry password
// in team "rest" and returns the components path.
func restFixture(t *testing.T, s *server) string {
	t.Helper()
	s.must(201, "POST", "/api/v1/teams", map[string]any{"name": "rest"})
	s.must(201, "POST", "/api/v1/teams/rest/apps", map[string]any{"name": "a"})
	comps := "/api/v1/teams/rest/apps/a/components"
	s.must(201, "POST", comps, map[string]any{"alias": "web", "image": "nginx",
		"envs": []any{map[string]any{"name": "TOKEN", "value": restEnvSecret, "secret": true}}})
	s.must(201, "POST", comps, map[string]any{"alias": "src", "kind": "source",
		"source": map[string]any{"url": "https://git.example.com/rest/app.git", "username": "ci", "password": restGitSecret}})
	s.must(201, "POST", "/api/v1/teams/rest/registries", map[string]any{"host": "registry.example.com", "username": "u", "password": restRegSecret})
	return comps
}

// noClearSecrets greps every file at the top of the data directory (the
// database, its WAL and shared memory, the logs) for the fixture's secrets.
func noClearSecrets(t *testing.T, data string) {
	t.Helper()
	files, _ := filepath.Glob(filepath.Join(data, "berth.db*"))
	logs, _ := filepath.Glob(filepath.Join(data, "logs", "*.log"))
	if len(files) == 0 {
		t.Fatal("no berth.db in the data directory")
	}
	for _, f := range append(files, logs...) {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, sec := range []string{restEnvSecret, restGitSecret, restRegSecret} {
			if bytes.Contains(b, []byte(sec)) {
				t.Errorf("%s holds the secret %q in clear", filepath.Base(f), sec)
			}
		}
	}
}

// TestSourceCredentialsDroppedOnHostChange plays a developer who moves a
// source to a host they control and sends back the masked password read
// from GET: the stored password must not follow the URL.
func TestSourceCredentialsDroppedOnHostChange(t *testing.T) {
	s := startServer(t)
	comps := restFixture(t, s)
	type source struct{ URL, Username, Password string }
	// patch answers with the component's source, decoded afresh (a decode
	// into an old value would keep fields the answer leaves out).
	patch := func(src map[string]any) source {
		var got struct{ Source source }
		s.must(200, "PATCH", comps+"/src", map[string]any{"source": src}).json(t, &got)
		return got.Source
	}

	// Same host: the masked password keeps the stored one.
	if got := patch(map[string]any{"url": "https://git.example.com/rest/other.git", "username": "ci", "password": "******"}); got.Password != "******" {
		t.Fatalf("a move on the same host lost the password: %+v", got)
	}

	// Another host: dropped, user name included.
	if got := patch(map[string]any{"url": "https://attacker.example.net/x.git", "username": "ci", "password": "******"}); got.Password != "" || got.Username != "" {
		t.Errorf("the credentials followed the URL to another host: %+v", got)
	}
	// Moving back does not bring them back.
	if got := patch(map[string]any{"url": "https://git.example.com/rest/app.git", "password": "******"}); got.Password != "" {
		t.Errorf("the dropped password came back: %+v", got)
	}
	// New credentials for the new host are taken.
	if got := patch(map[string]any{"url": "https://other.example.org/x.git", "username": "me", "password": "fresh"}); got.Password != "******" || got.Username != "me" {
		t.Errorf("new credentials with a new host: %+v", got)
	}
}

// TestTeamAdminCannotRevokeOwner plays a team admin who revokes the owner's
// token to take the team over.
func TestTeamAdminCannotRevokeOwner(t *testing.T) {
	s := startServer(t)
	s.must(201, "POST", "/api/v1/teams", map[string]any{"name": "crew"})
	base := "/api/v1/teams/crew"
	type created struct {
		Token  struct{ ID string }
		Secret string
	}
	var owner, admin, dev created
	s.must(201, "POST", base+"/tokens", map[string]any{"name": "owner", "role": "owner"}).json(t, &owner)
	s.must(201, "POST", base+"/tokens", map[string]any{"name": "admin", "role": "admin"}).json(t, &admin)
	s.must(201, "POST", base+"/members", map[string]any{"name": "olga", "role": "owner"})
	var olga created
	s.must(201, "POST", base+"/tokens", map[string]any{"name": "olga", "member": "olga"}).json(t, &olga)
	s.mustAs(admin.Secret, 201, "POST", base+"/tokens", map[string]any{"name": "dev", "role": "developer"}).json(t, &dev)

	for _, victim := range []created{owner, olga} {
		r := s.do(admin.Secret, "DELETE", base+"/tokens/"+victim.Token.ID, nil)
		if r.Status != 403 || r.errorCode() != "forbidden" || !strings.Contains(r.errorMessage(), "owner") {
			t.Errorf("team admin revoking an owner's token: %d %s, want 403 naming the owner role", r.Status, r.Body)
		}
		s.mustAs(victim.Secret, 200, "GET", base, nil)
	}
	// A member's token is the member's: demoting the owner is refused too.
	if r := s.do(admin.Secret, "PATCH", base+"/members/olga", map[string]any{"role": "viewer"}); r.Status != 403 {
		t.Errorf("team admin demoting the owner: %d %s, want 403", r.Status, r.Body)
	}
	// Below their role an admin may revoke; the owner may revoke the admin.
	s.mustAs(admin.Secret, 204, "DELETE", base+"/tokens/"+dev.Token.ID, nil)
	s.mustAs(owner.Secret, 204, "DELETE", base+"/tokens/"+admin.Token.ID, nil)
	s.mustAs(owner.Secret, 404, "DELETE", base+"/tokens/tok-missing", nil)
}

// TestMetricsNeedAdminOrOwnAddress: /metrics names every team and
// component, so on the API address it is the platform admin's.
func TestMetricsNeedAdminOrOwnAddress(t *testing.T) {
	metricsAddr := freePort(t)
	s := startServer(t, "--metrics-listen", metricsAddr)
	s.must(201, "POST", "/api/v1/teams", map[string]any{"name": "m"})
	owner := s.teamToken("m", "owner")

	if r := s.do("", "GET", "/metrics", nil); r.Status != 401 {
		t.Errorf("GET /metrics without a token: %d, want 401", r.Status)
	}
	if r := s.do(owner, "GET", "/metrics", nil); r.Status != 403 || strings.Contains(string(r.Body), "berth_api_requests_total") {
		t.Errorf("GET /metrics with a team owner's token: %d %.200s, want 403", r.Status, r.Body)
	}
	if body := string(s.must(200, "GET", "/metrics", nil).Body); !strings.Contains(body, "berth_api_requests_total") {
		t.Errorf("GET /metrics with the admin token lacks berth_api_requests_total")
	}
	resp, err := http.Get("http://" + metricsAddr + "/metrics")
	if err != nil {
		t.Fatalf("GET /metrics on --metrics-listen: %v", err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(body), "berth_api_requests_total") {
		t.Errorf("GET /metrics on --metrics-listen: %d %.200s", resp.StatusCode, body)
	}
	if code, _ := httpGet("http://" + metricsAddr + "/api/v1/teams"); code != 404 {
		t.Errorf("the metrics address serves the API too: GET /api/v1/teams answered %d", code)
	}
}

// TestAtRestInstanceLogsArePrivate runs an instance that prints its secret
// env: its log file, and the directories above it, are berth's alone.
func TestAtRestInstanceLogsArePrivate(t *testing.T) {
	requireRuntime(t)
	image := pushBusybox(t)
	var s *server
	flags := runtimeFlags(t, func() string { return s.data })
	s = startServer(t, flags...)
	setupShop(s)
	s.must(201, "POST", comps, map[string]any{
		"alias": "talker", "image": image, "memory": "32Mi",
		"cmd":  []string{"sh", "-c", "echo token=$TOKEN; exec sleep 3600"},
		"envs": []any{map[string]any{"name": "TOKEN", "value": restEnvSecret, "secret": true}},
	})
	if ev := s.action("talker", "deploy", nil); ev["status"] != "success" {
		t.Fatalf("deploy: %v", ev)
	}
	s.waitComponent("talker", 30*time.Second, func(c componentState) bool { return c.Status == "running" })
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(string(s.must(200, "GET", comps+"/talker/logs?tail=5", nil).Body), restEnvSecret) {
		if time.Now().After(deadline) {
			t.Fatal("the instance's output never reached its log")
		}
		time.Sleep(200 * time.Millisecond)
	}
	// The deploy's task and events keep no copy of the value in clear.
	noClearSecrets(t, s.data)
	logs, _ := filepath.Glob(filepath.Join(s.data, "logs", "instances", "*", "*.log"))
	if len(logs) == 0 {
		t.Fatal("no instance log under DATA/logs/instances")
	}
	for _, p := range append(logs, filepath.Join(s.data, "logs", "containerd.log")) {
		for path, want := p, os.FileMode(0o600); strings.HasPrefix(path, filepath.Join(s.data, "logs")); path, want = filepath.Dir(path), 0o700 {
			fi, err := os.Stat(path)
			if err != nil {
				t.Fatal(err)
			}
			if fi.Mode().Perm() != want {
				t.Errorf("%s has mode %o, want %o", path, fi.Mode().Perm(), want)
			}
		}
	}
}

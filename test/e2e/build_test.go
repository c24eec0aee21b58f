package e2e

import (
	"archive/zip"
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/berth-platform/berth/internal/testgit"
	"github.com/berth-platform/berth/internal/testimage"
)

// requireBuildKit skips (or fails in CI) without buildkitd.
func requireBuildKit(t *testing.T) {
	t.Helper()
	requireRuntime(t)
	if _, err := exec.LookPath("buildkitd"); err != nil {
		if _, err := exec.LookPath("/usr/local/bin/buildkitd"); err != nil {
			if os.Getenv("CI") == "true" {
				t.Fatal("buildkitd is needed: go install github.com/moby/buildkit/cmd/buildkitd@v0.18.2 (scripts/test.sh does)")
			}
			t.Skip("buildkitd is not installed (scripts/test.sh installs it)")
		}
	}
}

// pushToHub puts busybox into berth's hub as shop/busybox and returns its
// reference, which Dockerfiles built by berth can start FROM.
func (s *server) pushToHub() string {
	s.t.Helper()
	img, err := testimage.Busybox()
	if err != nil {
		s.t.Fatal(err)
	}
	ref := s.addr + "/shop/busybox:latest"
	r, err := name.ParseReference(ref, name.Insecure)
	if err != nil {
		s.t.Fatal(err)
	}
	if err := remote.Write(r, img, remote.WithAuth(&authn.Basic{Username: "admin", Password: s.token})); err != nil {
		s.t.Fatalf("push busybox to the hub: %v", err)
	}
	return ref
}

// build runs a build of alias and waits for its event.
func (s *server) build(alias string, body any) (map[string]any, string) {
	s.t.Helper()
	var acc struct {
		EventID string `json:"event_id"`
	}
	s.must(202, "POST", comps+"/"+alias+"/build", body).json(s.t, &acc)
	ev := s.waitEventFor(acc.EventID, 5*time.Minute)
	return ev, s.eventLog(acc.EventID)
}

// A Dockerfile app from git: the build log keeps Rainbond's stage lines, the
// version records the commit, the app answers through the gateway; an
// unchanged rebuild hits the cache; a failing build shows the step's own
// output and the last good version keeps serving; bad input is explained.
func TestBuildFromGit(t *testing.T) {
	requireBuildKit(t)
	var s *server
	flags := runtimeFlags(t, func() string { return s.data })
	s = startServer(t, flags...)
	if !strings.Contains(s.out.String(), "✓ buildkit") || !strings.Contains(s.out.String(), "✓ hub") {
		t.Fatalf("no hub or buildkit phase:\n%s", s.out)
	}
	setupShop(s)
	base := s.pushToHub()
	git := testgit.Serve(t, "", "")
	work := git.Repo("site")
	dockerfile := "FROM " + base + "\nCOPY index.html /www/index.html\nEXPOSE 8080\nCMD [\"httpd\", \"-f\", \"-p\", \"8080\", \"-h\", \"/www\"]\n"
	commit := git.Commit(work, "first page", map[string]string{"Dockerfile": dockerfile, "index.html": "version one\n"})

	s.must(201, "POST", comps, map[string]any{
		"alias": "site", "kind": "source", "source": map[string]any{"url": git.URL("site"), "branch": "main"}, "memory": "32Mi",
		"ports":     []map[string]any{{"port": 8080, "protocol": "http", "outer": true}},
		"readiness": map[string]any{"type": "http", "port": 8080, "period_seconds": 1},
	})
	ev, log := s.build("site", nil)
	if ev["status"] != "success" {
		t.Fatalf("build: %v\n%s", ev, log)
	}
	if !inOrder(log, "Start clone source code from "+git.URL("site"), "CodeVersion:"+commit, "Author:Ada", "Commit:first page",
		"pull or clone code successfully, start code build", "Start make code package", "detected dockerfile", "make code package success",
		"create build code job success", "code build success", "build runtime image success", "Build success", "1 instance(s) of version 1 ready") {
		t.Errorf("build log lacks a stage line or has them out of order:\n%s", log)
	}
	gc := s.gatewayClient(nil)
	if a := s.gatewayDo(gc, "GET", "http://site-8080-shop.berth.test/", nil); a.Status != 200 || a.Body != "version one\n" {
		t.Fatalf("built app through the gateway: %d %q", a.Status, a.Body)
	}
	var versions struct {
		Items []struct {
			Number                        int64
			Image, Digest, Commit, Author string
			Status                        string
		}
	}
	s.must(200, "GET", comps+"/site/versions", nil).json(t, &versions)
	if len(versions.Items) != 1 || versions.Items[0].Commit != commit || versions.Items[0].Author == "" ||
		!strings.HasPrefix(versions.Items[0].Digest, "sha256:") || !strings.HasPrefix(versions.Items[0].Image, s.addr+"/shop/site:v") {
		t.Errorf("version: %+v", versions.Items)
	}

	// Unchanged: every step from the cache.
	ev, log = s.build("site", nil)
	if ev["status"] != "success" || !strings.Contains(log, "build runtime image success: 1 of 1 steps from the cache") ||
		!strings.Contains(log, "is the same image as the running version 1") {
		t.Errorf("unchanged rebuild did not hit the cache, or rolled the same image out again: %v\n%s", ev, log)
	}

	// A failing step: its own output, build_failure, the last good version
	// still serves.
	git.Commit(work, "break it", map[string]string{"Dockerfile": dockerfile + "RUN echo 'main.go:3:2: undefined: fmt.Printn' >&2 && exit 1\n"})
	ev, log = s.build("site", nil)
	if ev["status"] != "failure" || !strings.Contains(log, "main.go:3:2: undefined: fmt.Printn") || !strings.Contains(log, "build failed at step") {
		t.Errorf("failing build: %v\n%s", ev, log)
	}
	c := s.waitComponent("site", 10*time.Second, func(c componentState) bool { return c.Status == "build_failure" })
	if !strings.Contains(c.StatusMessage, "keeps running") {
		t.Errorf("build_failure message: %q", c.StatusMessage)
	}
	if a := s.gatewayDo(gc, "GET", "http://site-8080-shop.berth.test/", nil); a.Status != 200 || a.Body != "version one\n" {
		t.Errorf("the last good version stopped serving: %d %q", a.Status, a.Body)
	}

	// Unknown language: the message lists what berth looks for.
	other := git.Repo("notes")
	git.Commit(other, "notes", map[string]string{"README.md": "just notes\n"})
	s.must(201, "POST", comps, map[string]any{"alias": "notes", "kind": "source", "source": map[string]any{"url": git.URL("notes")}})
	ev, log = s.build("notes", nil)
	if ev["status"] != "failure" || !strings.Contains(log, "package.json") || !strings.Contains(log, "go.mod") || !strings.Contains(log, "Dockerfile") {
		t.Errorf("nothing detected: %v\n%s", ev, log)
	}

	// Refused credentials and a wrong URL.
	private := testgit.Serve(t, "ada", "right")
	pw := private.Repo("secret")
	private.Commit(pw, "x", map[string]string{"index.html": "x"})
	s.must(201, "POST", comps, map[string]any{"alias": "secret", "kind": "source",
		"source": map[string]any{"url": private.URL("secret"), "username": "ada", "password": "wrong"}})
	var got struct{ Source struct{ Password string } }
	s.must(200, "GET", comps+"/secret", nil).json(t, &got)
	if got.Source.Password != "******" {
		t.Errorf("the git password is shown: %q", got.Source.Password)
	}
	ev, log = s.build("secret", nil)
	if ev["status"] != "failure" || !strings.Contains(strings.ToLower(log), "authorization failed") || strings.Contains(log, "wrong") {
		t.Errorf("refused credentials: %v\n%s", ev, log)
	}
	s.must(201, "POST", comps, map[string]any{"alias": "gone", "kind": "source", "source": map[string]any{"url": git.URL("no-such-repo")}})
	if ev, log = s.build("gone", nil); ev["status"] != "failure" || !strings.Contains(strings.ToLower(log), "not found") && !strings.Contains(strings.ToLower(log), "does not exist") {
		t.Errorf("missing repository: %v\n%s", ev, log)
	}
	for _, bad := range []string{"ext::sh -c touch% /tmp/pwned", "file:///etc", "/srv/repo", "--upload-pack=touch /tmp/x"} {
		r := s.do(s.token, "POST", comps, map[string]any{"alias": "bad", "kind": "source", "source": map[string]any{"url": bad}})
		if r.Status != 422 || !strings.Contains(r.errorMessage(), "source.url") {
			t.Errorf("git URL %q: %d %s", bad, r.Status, r.Body)
		}
	}
}

// Packages arrive through a resumable upload; a zip that escapes its
// directory is refused naming the entry.
func TestBuildRefusesAPathTraversalZip(t *testing.T) {
	requireBuildKit(t)
	var s *server
	flags := runtimeFlags(t, func() string { return s.data })
	s = startServer(t, flags...)
	setupShop(s)
	s.must(201, "POST", comps, map[string]any{"alias": "pkg", "kind": "source", "source": map[string]any{"type": "package"}})
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	w, _ := zw.Create("../../etc/cron.d/evil")
	fmt.Fprint(w, "* * * * * root touch /tmp/pwned\n")
	zw.Close()
	data := buf.Bytes()

	var up struct {
		ID     string
		Offset int64
	}
	s.must(201, "POST", comps+"/pkg/uploads", map[string]any{"name": "app.zip", "size": len(data)}).json(t, &up)
	send := func(offset int, chunk []byte) *http.Response {
		req, _ := http.NewRequest("PATCH", s.url+comps+"/pkg/uploads/"+up.ID, bytes.NewReader(chunk))
		req.Header.Set("Authorization", "Bearer "+s.token)
		req.Header.Set("Upload-Offset", fmt.Sprint(offset))
		req.Header.Set("Content-Type", "application/offset+octet-stream")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp
	}
	half := len(data) / 2
	if resp := send(0, data[:half]); resp.StatusCode != 204 || resp.Header.Get("Upload-Offset") != fmt.Sprint(half) {
		t.Fatalf("first chunk: %d offset %s", resp.StatusCode, resp.Header.Get("Upload-Offset"))
	}
	if resp := send(1, data[half:]); resp.StatusCode != 409 {
		t.Errorf("a chunk at the wrong offset: %d", resp.StatusCode)
	}
	r := s.must(409, "POST", comps+"/pkg/build", map[string]any{"upload_id": up.ID})
	if !strings.Contains(r.errorMessage(), fmt.Sprint(half)) {
		t.Errorf("building an incomplete upload: %s", r.Body)
	}
	if resp := send(half, data[half:]); resp.StatusCode != 204 {
		t.Fatalf("second chunk: %d", resp.StatusCode)
	}
	ev, log := s.build("pkg", map[string]any{"upload_id": up.ID})
	if ev["status"] != "failure" || !strings.Contains(log, "../../etc/cron.d/evil") {
		t.Errorf("path traversal zip: %v\n%s", ev, log)
	}
}

// Builds as operations: an image re-tagged into the hub, a build
// cancelled mid-way, BUILD_* variables reaching the build, versions beyond
// --keep-versions collected with their images, and git push webhooks.
func TestBuildOperations(t *testing.T) {
	requireBuildKit(t)
	var s *server
	flags := runtimeFlags(t, func() string { return s.data })
	s = startServer(t, append(flags, "--keep-versions", "2")...)
	setupShop(s)
	base := s.pushToHub()

	// An image from another registry, re-tagged into the hub and run.
	reg := testimage.Serve("", "")
	defer reg.Close()
	img, err := testimage.Busybox()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := reg.Push("tools/busybox:1", img); err != nil {
		t.Fatal(err)
	}
	s.must(201, "POST", "/api/v1/teams/shop/registries", map[string]any{"host": reg.Host, "plain_http": true})
	s.must(201, "POST", comps, map[string]any{"alias": "tool", "kind": "source", "memory": "16Mi",
		"source": map[string]any{"type": "image", "image": reg.Host + "/tools/busybox:1"}, "cmd": []string{"sleep", "3600"}})
	ev, log := s.build("tool", nil)
	if ev["status"] != "success" || !strings.Contains(log, "re-tagged as "+s.addr+"/shop/tool:v1") {
		t.Fatalf("image re-tag: %v\n%s", ev, log)
	}

	git := testgit.Serve(t, "", "")
	work := git.Repo("app")
	dockerfile := func(extra string) string {
		// The sources are copied in, so that each change is a new image.
		return "FROM " + base + "\nARG GREETING\nRUN echo \"greeting=$GREETING\" > /greeting" + extra + "\nCOPY Dockerfile README* /src/\nCMD [\"sleep\", \"3600\"]\n"
	}
	git.Commit(work, "v1", map[string]string{"Dockerfile": dockerfile("")})
	var created struct {
		ID      string
		Webhook struct{ URL, Secret string }
	}
	s.must(201, "POST", comps, map[string]any{"alias": "app", "kind": "source", "memory": "16Mi",
		"source": map[string]any{"url": git.URL("app"), "branch": "main"},
		"envs":   []map[string]any{{"name": "BUILD_GREETING", "value": "hello-from-build-env"}}}).json(t, &created)

	// A build that would take a minute, cancelled.
	git.Commit(work, "slow", map[string]string{"Dockerfile": dockerfile(" && sleep 60")})
	var acc struct {
		EventID string `json:"event_id"`
	}
	s.must(202, "POST", comps+"/app/build", nil).json(t, &acc)
	deadline := time.Now().Add(30 * time.Second)
	for !strings.Contains(s.eventLog(acc.EventID), "create build code job success") && time.Now().Before(deadline) {
		time.Sleep(100 * time.Millisecond)
	}
	time.Sleep(time.Second)
	began := time.Now()
	s.must(202, "POST", "/api/v1/events/"+acc.EventID+"/cancel", nil)
	ev = s.waitEventFor(acc.EventID, 30*time.Second)
	if ev["status"] != "failure" || ev["reason"] != "Cancelled" || time.Since(began) > 15*time.Second {
		t.Errorf("cancelled build: %v after %s", ev, time.Since(began))
	}

	// Three good builds with --keep-versions 2: the oldest goes, image too.
	git.Commit(work, "v1 again", map[string]string{"Dockerfile": dockerfile("")})
	for i := 0; i < 3; i++ {
		if i > 0 {
			git.Commit(work, fmt.Sprint("change ", i), map[string]string{"README": fmt.Sprint(i)})
		}
		if ev, log := s.build("app", nil); ev["status"] != "success" {
			t.Fatalf("build %d: %v\n%s", i, ev, log)
		}
	}
	if got := s.exec("app", "cat", "/greeting"); !strings.Contains(got, "greeting=hello-from-build-env") {
		t.Errorf("BUILD_GREETING did not reach the build: %q", got)
	}
	var versions struct{ Items []struct{ Number int64 } }
	s.must(200, "GET", comps+"/app/versions", nil).json(t, &versions)
	if len(versions.Items) != 2 {
		t.Errorf("versions kept: %+v, want 2", versions.Items)
	}
	oldest := versions.Items[len(versions.Items)-1].Number
	tags, err := remote.List(mustRepo(t, s.addr+"/shop/app"), remote.WithAuth(&authn.Basic{Username: "admin", Password: s.token}))
	if err != nil {
		t.Fatal(err)
	}
	for _, tag := range tags {
		var n int64
		fmt.Sscanf(tag, "v%d", &n)
		if n < oldest {
			t.Errorf("the image of collected version %s is still in the hub (tags %v)", tag, tags)
		}
	}

	// Webhooks: a push to the branch builds; a bad signature or another
	// branch does not.
	commit := git.Commit(work, "pushed", map[string]string{"README": "pushed"})
	push := fmt.Sprintf(`{"ref":"refs/heads/main","after":%q,"repository":{"default_branch":"main"}}`, commit)
	hook := func(body, signature string) (int, string) {
		req, _ := http.NewRequest("POST", s.url+created.Webhook.URL, strings.NewReader(body))
		req.Header.Set("X-GitHub-Event", "push")
		req.Header.Set("X-Hub-Signature-256", "sha256="+signature)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var out map[string]string
		json.NewDecoder(resp.Body).Decode(&out)
		return resp.StatusCode, out["event_id"] + out["ignored"]
	}
	if code, _ := hook(push, sign("wrong secret", push)); code != 401 {
		t.Errorf("webhook with a bad signature: %d", code)
	}
	other := strings.Replace(push, "refs/heads/main", "refs/heads/dev", 1)
	if code, why := hook(other, sign(created.Webhook.Secret, other)); code != 200 || !strings.Contains(why, "dev") {
		t.Errorf("push to another branch: %d %s", code, why)
	}
	code, id := hook(push, sign(created.Webhook.Secret, push))
	if code != 202 {
		t.Fatalf("webhook push: %d %s", code, id)
	}
	ev = s.waitEventFor(id, 2*time.Minute)
	if log := s.eventLog(id); ev["status"] != "success" || !strings.Contains(log, "CodeVersion:"+commit) {
		t.Errorf("webhook build: %v\n%s", ev, log)
	}

	// Deleting the component removes the checkout it kept between builds.
	checkout := filepath.Join(s.data, "builds", "checkouts", created.ID)
	if _, err := os.Stat(checkout); err != nil {
		t.Fatalf("no kept checkout at %s: %v", checkout, err)
	}
	// And the hub repository its builds pushed to.
	repo := filepath.Join(s.data, "hub", "registry", "docker", "registry", "v2", "repositories", "shop", "app")
	if _, err := os.Stat(repo); err != nil {
		t.Fatalf("no hub repository at %s: %v", repo, err)
	}
	s.deleteAndWait(comps + "/app")
	if _, err := os.Stat(checkout); !os.IsNotExist(err) {
		t.Errorf("the checkout of a deleted component is still there (%v)", err)
	}
	if _, err := os.Stat(repo); !os.IsNotExist(err) {
		t.Errorf("the hub repository of a deleted component is still there (%v)", err)
	}
}

func sign(secret, body string) string {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write([]byte(body))
	return hex.EncodeToString(m.Sum(nil))
}

func mustRepo(t *testing.T, repo string) name.Repository {
	r, err := name.NewRepository(repo, name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

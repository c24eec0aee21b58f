package hub

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/google/go-containerregistry/pkg/v1/validate"
)

// testAuth plays berth's API-token check: the password is the token.
func testAuth(_ context.Context, _, password string) (Principal, error) {
	switch password {
	case "alpha-token":
		return Principal{Subject: "alice", Teams: []string{"alpha"}, Pull: true, Push: true}, nil
	case "beta-token":
		return Principal{Subject: "bob", Teams: []string{"beta"}, Pull: true, Push: true}, nil
	case "alpha-owner":
		return Principal{Subject: "olga", Teams: []string{"alpha"}, Pull: true, Push: true, Delete: true}, nil
	case "alpha-reader":
		return Principal{Subject: "rita", Teams: []string{"alpha"}, Pull: true}, nil
	case "store-down":
		return Principal{}, errors.New("database unreachable")
	}
	return Principal{}, fmt.Errorf("unknown api token: %w", ErrUnauthorized)
}

// testWriter sends slog output to the test log and goes quiet once the test
// ends, since the logrus bridge is process-wide and outlives any one test.
type testWriter struct {
	mu sync.Mutex
	t  *testing.T
}

func (w *testWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.t != nil {
		w.t.Log(strings.TrimRight(string(p), "\n"))
	}
	return len(p), nil
}

type testHub struct {
	*Hub
	srv  *httptest.Server
	host string // 127.0.0.1:port
}

func startHub(t *testing.T, root string, mod func(*Config)) *testHub {
	t.Helper()
	w := &testWriter{t: t}
	t.Cleanup(func() { w.mu.Lock(); w.t = nil; w.mu.Unlock() })
	cfg := Config{
		Root:          root,
		Auth:          testAuth,
		GCQuietPeriod: -1,
		Logger:        slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelInfo})),
	}
	if mod != nil {
		mod(&cfg)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	h, err := New(ctx, cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	srv := httptest.NewServer(h.Handler())
	th := &testHub{Hub: h, srv: srv, host: strings.TrimPrefix(srv.URL, "http://")}
	var once sync.Once
	t.Cleanup(func() { once.Do(th.stop) })
	return th
}

func (th *testHub) stop() {
	th.srv.Close()
	_ = th.Close()
}

func (th *testHub) ref(t *testing.T, s string) name.Reference {
	t.Helper()
	ref, err := name.ParseReference(th.host + "/" + s)
	if err != nil {
		t.Fatal(err)
	}
	return ref
}

func basic(password string) remote.Option {
	return remote.WithAuth(&authn.Basic{Username: "anyone", Password: password})
}

func (th *testHub) internalAuth() remote.Option {
	u, p := th.InternalCredentials()
	return remote.WithAuth(&authn.Basic{Username: u, Password: p})
}

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func randomImage(t *testing.T) v1.Image {
	t.Helper()
	img, err := random.Image(4096, 2)
	if err != nil {
		t.Fatal(err)
	}
	return img
}

func mustDigest(t *testing.T, d interface{ Digest() (v1.Hash, error) }) v1.Hash {
	t.Helper()
	h, err := d.Digest()
	if err != nil {
		t.Fatal(err)
	}
	return h
}

func push(t *testing.T, ctx context.Context, ref name.Reference, img v1.Image, auth remote.Option) {
	t.Helper()
	if err := remote.Write(ref, img, auth, remote.WithContext(ctx)); err != nil {
		t.Fatalf("push %s: %v", ref, err)
	}
}

// pullAndVerify fetches ref and reads every layer, checking digests.
func pullAndVerify(t *testing.T, ctx context.Context, ref name.Reference, want v1.Hash, auth remote.Option) {
	t.Helper()
	img, err := remote.Image(ref, auth, remote.WithContext(ctx))
	if err != nil {
		t.Fatalf("pull %s: %v", ref, err)
	}
	if got := mustDigest(t, img); got != want {
		t.Fatalf("pull %s: digest %s, want %s", ref, got, want)
	}
	if err := validate.Image(img); err != nil {
		t.Fatalf("pull %s: %v", ref, err)
	}
}

// wantDenied checks err is the registry refusing access.
func wantDenied(t *testing.T, what string, err error) {
	t.Helper()
	if err == nil {
		t.Fatalf("%s: succeeded, want 401/403", what)
	}
	var terr *transport.Error
	if !errors.As(err, &terr) || (terr.StatusCode != http.StatusUnauthorized && terr.StatusCode != http.StatusForbidden) {
		t.Fatalf("%s: %v, want 401/403", what, err)
	}
}

func TestPushPull(t *testing.T) {
	th := startHub(t, t.TempDir(), nil)
	ctx := testCtx(t)
	img := randomImage(t)
	ref := th.ref(t, "alpha/web:v1")

	push(t, ctx, ref, img, basic("alpha-token"))
	pullAndVerify(t, ctx, ref, mustDigest(t, img), basic("alpha-token"))
	// A pull-only token of the same team can read it too.
	pullAndVerify(t, ctx, ref, mustDigest(t, img), basic("alpha-reader"))

	tags, err := th.Tags(ctx, "alpha/web")
	if err != nil || !slices.Equal(tags, []string{"v1"}) {
		t.Fatalf("Tags = %v, %v", tags, err)
	}
	d, err := th.Digest(ctx, "alpha/web", "v1")
	if err != nil || d != mustDigest(t, img).String() {
		t.Fatalf("Digest = %s, %v; want %s", d, err, mustDigest(t, img))
	}
	if _, err := th.Digest(ctx, "alpha/web", "nope"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Digest(missing tag) = %v, want ErrNotFound", err)
	}
	if _, err := th.Tags(ctx, "alpha/none"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Tags(missing repo) = %v, want ErrNotFound", err)
	}
}

func TestTeamIsolation(t *testing.T) {
	th := startHub(t, t.TempDir(), nil)
	ctx := testCtx(t)
	betaImg := randomImage(t)
	betaRef := th.ref(t, "beta/db:v1")
	push(t, ctx, betaRef, betaImg, basic("beta-token"))

	_, err := remote.Image(betaRef, basic("alpha-token"), remote.WithContext(ctx))
	wantDenied(t, "alpha pulls beta", err)

	err = remote.Write(th.ref(t, "beta/evil:v1"), randomImage(t), basic("alpha-token"), remote.WithContext(ctx))
	wantDenied(t, "alpha pushes into beta", err)
	err = remote.Write(betaRef, randomImage(t), basic("alpha-token"), remote.WithContext(ctx))
	wantDenied(t, "alpha overwrites beta's tag", err)

	err = remote.Write(th.ref(t, "alpha/web:v1"), randomImage(t), basic("alpha-reader"), remote.WithContext(ctx))
	wantDenied(t, "pull-only token pushes", err)

	// Top-level repositories belong to no team.
	err = remote.Write(th.ref(t, "alpha:v1"), randomImage(t), basic("alpha-token"), remote.WithContext(ctx))
	wantDenied(t, "alpha pushes top-level repo", err)

	// Deleting over the API needs the delete action, which team tokens lack.
	err = remote.Delete(th.ref(t, "beta/db@"+mustDigest(t, betaImg).String()), basic("beta-token"), remote.WithContext(ctx))
	wantDenied(t, "team token deletes", err)

	// Beta's image is untouched and still pulls; the internal credential
	// reaches everything.
	pullAndVerify(t, ctx, betaRef, mustDigest(t, betaImg), basic("beta-token"))
	pullAndVerify(t, ctx, betaRef, mustDigest(t, betaImg), th.internalAuth())

	// A token for alpha must not open beta even if presented directly.
	tok := fetchToken(t, th.srv.URL, "x", "alpha-token", "repository:beta/db:pull")
	resp := getWithBearer(t, th.srv.URL+"/v2/beta/db/manifests/v1", tok)
	if resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("alpha token on beta manifest: %d, want 401", resp.StatusCode)
	}
	if c := resp.Header.Get("WWW-Authenticate"); !strings.Contains(c, `error="insufficient_scope"`) {
		t.Fatalf("challenge %q lacks insufficient_scope", c)
	}
}

func TestBadPassword(t *testing.T) {
	th := startHub(t, t.TempDir(), nil)
	ctx := testCtx(t)
	ref := th.ref(t, "alpha/web:v1")
	push(t, ctx, ref, randomImage(t), basic("alpha-token"))

	_, err := remote.Image(ref, basic("wrong"), remote.WithContext(ctx))
	wantDenied(t, "pull with bad password", err)
	err = remote.Write(th.ref(t, "alpha/web:v2"), randomImage(t), basic("wrong"), remote.WithContext(ctx))
	wantDenied(t, "push with bad password", err)
	_, err = remote.Image(ref, remote.WithContext(ctx)) // anonymous
	wantDenied(t, "anonymous pull", err)

	u, _ := th.InternalCredentials()
	_, err = remote.Image(ref, remote.WithAuth(&authn.Basic{Username: u, Password: "guess"}), remote.WithContext(ctx))
	wantDenied(t, "internal user with wrong password", err)
}

func TestTokenEndpoint(t *testing.T) {
	th := startHub(t, t.TempDir(), nil)
	base := th.srv.URL
	tokenURL := base + TokenPath

	// The registry's challenge points clients at the token endpoint on the
	// address they used, over the scheme they used.
	resp, err := http.Get(base + "/v2/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	want := fmt.Sprintf(`Bearer realm=%q,service=%q`, tokenURL, DefaultService)
	if resp.StatusCode != http.StatusUnauthorized || resp.Header.Get("WWW-Authenticate") != want {
		t.Fatalf("GET /v2/: %d %q, want 401 %q", resp.StatusCode, resp.Header.Get("WWW-Authenticate"), want)
	}

	status := func(req *http.Request) int {
		t.Helper()
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	get := func(user, pass string, query string) *http.Request {
		req, _ := http.NewRequest(http.MethodGet, tokenURL+"?"+query, nil)
		if pass != "" {
			req.SetBasicAuth(user, pass)
		}
		return req
	}
	post := func(form url.Values) *http.Request {
		req, _ := http.NewRequest(http.MethodPost, tokenURL, strings.NewReader(form.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		return req
	}
	for _, tc := range []struct {
		name string
		req  *http.Request
		want int
	}{
		{"no credentials", get("", "", "service=berth-hub"), http.StatusUnauthorized},
		{"bad password", get("u", "nope", "service=berth-hub"), http.StatusUnauthorized},
		{"authenticator failure", get("u", "store-down", ""), http.StatusInternalServerError},
		{"foreign service", get("u", "alpha-token", "service=docker.io"), http.StatusBadRequest},
		{"basic ok", get("u", "alpha-token", "service=berth-hub&scope=repository:alpha/web:pull"), http.StatusOK},
		{"oauth password", post(url.Values{"grant_type": {"password"}, "username": {"u"}, "password": {"alpha-token"}, "service": {"berth-hub"}}), http.StatusOK},
		{"oauth refresh_token as password", post(url.Values{"grant_type": {"refresh_token"}, "refresh_token": {"alpha-token"}}), http.StatusOK},
		{"oauth bad password", post(url.Values{"grant_type": {"password"}, "username": {"u"}, "password": {"nope"}}), http.StatusUnauthorized},
		{"oauth unknown grant", post(url.Values{"grant_type": {"client_credentials"}}), http.StatusBadRequest},
	} {
		if got := status(tc.req); got != tc.want {
			t.Errorf("%s: status %d, want %d", tc.name, got, tc.want)
		}
	}

	// The OAuth form (containerd's first try) scopes the token like GET does.
	resp, err = http.DefaultClient.Do(post(url.Values{
		"grant_type": {"password"}, "username": {"u"}, "password": {"alpha-token"},
		"service": {"berth-hub"}, "client_id": {"containerd-client"},
		"scope": {"repository:alpha/web:pull,push repository:beta/db:pull"},
	}))
	if err != nil {
		t.Fatal(err)
	}
	var body struct {
		AccessToken string `json:"access_token"`
		ExpiresIn   int    `json:"expires_in"`
		Scope       string `json:"scope"`
	}
	err = json.NewDecoder(resp.Body).Decode(&body)
	resp.Body.Close()
	if err != nil {
		t.Fatal(err)
	}
	if body.Scope != "repository:alpha/web:pull,push" || body.ExpiresIn != int(DefaultTokenTTL/time.Second) {
		t.Fatalf("oauth response scope %q expires_in %d", body.Scope, body.ExpiresIn)
	}
	claims := decodeClaims(t, body.AccessToken)
	if claims.Sub != "alice" || claims.Iss != DefaultIssuer || len(claims.Access) != 1 ||
		claims.Access[0].Name != "alpha/web" || !slices.Equal(claims.Access[0].Actions, []string{"pull", "push"}) {
		t.Fatalf("claims %+v", claims)
	}
	// Usable against the registry.
	r := getWithBearer(t, base+"/v2/alpha/web/tags/list", body.AccessToken)
	if r.StatusCode != http.StatusNotFound { // authorized; the repository is just empty
		t.Fatalf("tags/list with token: %d, want 404", r.StatusCode)
	}

	// The catalog is for everyone, each seeing what it owns (catalog_test.go).
	u, p := th.InternalCredentials()
	tok := fetchToken(t, base, u, p, "registry:catalog:*")
	if r := getWithBearer(t, base+"/v2/_catalog", tok); r.StatusCode != http.StatusOK {
		t.Fatalf("catalog with internal token: %d", r.StatusCode)
	}
}

func TestScopes(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want access
		ok   bool
	}{
		{"repository:alpha/web:pull,push", access{Type: "repository", Name: "alpha/web", Actions: []string{"pull", "push"}}, true},
		{"repository(plugin):alpha/p:pull", access{Type: "repository", Class: "plugin", Name: "alpha/p", Actions: []string{"pull"}}, true},
		{"repository:host:5000/alpha/web:pull", access{Type: "repository", Name: "host:5000/alpha/web", Actions: []string{"pull"}}, true},
		{"registry:catalog:*", access{Type: "registry", Name: "catalog", Actions: []string{"*"}}, true},
		{"repository:alpha/web", access{}, false},
		{"repository::pull", access{}, false},
		{"garbage", access{}, false},
	} {
		got, ok := parseScope(tc.in)
		if ok != tc.ok || got.Type != tc.want.Type || got.Class != tc.want.Class || got.Name != tc.want.Name || !slices.Equal(got.Actions, tc.want.Actions) {
			t.Errorf("parseScope(%q) = %+v, %v; want %+v, %v", tc.in, got, ok, tc.want, tc.ok)
		}
	}

	team := Principal{Teams: []string{"alpha"}, Pull: true, Push: true}
	got := scopeStrings(grant(team, []string{
		"repository:alpha/web:pull",
		"repository:alpha/web:push,delete", // merged; delete dropped
		"repository:alphabet/web:pull",     // prefix is not the team
		"repository:alpha:pull",            // top level
		"repository:beta/db:*",
		"repository:alpha/x/y:*",
		"registry:catalog:*", // granted; serveCatalog shows alpha's own only
	}))
	want := []string{"repository:alpha/web:pull,push", "repository:alpha/x/y:pull,push", "registry:catalog:*"}
	if !slices.Equal(got, want) {
		t.Fatalf("grant = %v, want %v", got, want)
	}
}

func TestGarbageCollect(t *testing.T) {
	root := t.TempDir()
	th := startHub(t, root, nil)
	ctx := testCtx(t)
	auth := th.internalAuth()

	base := randomImage(t)
	layerA, err := random.Layer(8192, types.DockerLayer)
	if err != nil {
		t.Fatal(err)
	}
	layerB, err := random.Layer(8192, types.DockerLayer)
	if err != nil {
		t.Fatal(err)
	}
	imgA, err := mutate.AppendLayers(base, layerA)
	if err != nil {
		t.Fatal(err)
	}
	imgB, err := mutate.AppendLayers(base, layerB)
	if err != nil {
		t.Fatal(err)
	}
	push(t, ctx, th.ref(t, "alpha/a:v1"), imgA, auth)
	push(t, ctx, th.ref(t, "alpha/b:v1"), imgB, auth)
	// A multi-arch index: its child manifests are untagged, yet must survive
	// RemoveUntagged because the tagged index references them.
	idx, err := random.Index(1024, 1, 2)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.WriteIndex(th.ref(t, "alpha/multi:v1"), idx, auth, remote.WithContext(ctx)); err != nil {
		t.Fatal(err)
	}

	// Nothing is garbage yet.
	stats, err := th.GarbageCollect(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if stats.BlobsDeleted != 0 || stats.ManifestsDeleted != 0 {
		t.Fatalf("first GC deleted something: %+v", stats)
	}

	before := countFiles(t, root)
	if err := th.DeleteTag(ctx, "alpha/a", "v1"); err != nil {
		t.Fatal(err)
	}
	if err := th.DeleteTag(ctx, "alpha/a", "v1"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("second DeleteTag = %v, want ErrNotFound", err)
	}
	stats, err = th.GarbageCollect(ctx)
	if err != nil {
		t.Fatal(err)
	}
	after := countFiles(t, root)
	t.Logf("GC: %+v; files %d -> %d", stats, before, after)

	// imgA's own layer, config and manifest go; the shared base stays.
	sizeA, _ := layerA.Size()
	if stats.BlobsDeleted != 3 || stats.ManifestsDeleted != 1 || stats.RepositoriesRemoved != 1 || stats.BytesFreed < sizeA {
		t.Fatalf("GC stats %+v, want 3 blobs, 1 manifest, 1 repository, >= %d bytes", stats, sizeA)
	}
	if after >= before {
		t.Fatalf("files under root: %d before, %d after", before, after)
	}
	if blobExists(t, root, mustDigest(t, layerA)) {
		t.Fatal("deleted image's layer still on disk")
	}
	baseLayers, _ := base.Layers()
	for _, l := range baseLayers {
		if !blobExists(t, root, mustDigest(t, l)) {
			t.Fatal("shared base layer was swept")
		}
	}

	pullAndVerify(t, ctx, th.ref(t, "alpha/b:v1"), mustDigest(t, imgB), auth)
	gotIdx, err := remote.Index(th.ref(t, "alpha/multi:v1"), auth, remote.WithContext(ctx))
	if err != nil {
		t.Fatal(err)
	}
	if err := validate.Index(gotIdx); err != nil {
		t.Fatalf("index after GC: %v", err)
	}
	_, err = remote.Image(th.ref(t, "alpha/a:v1"), auth, remote.WithContext(ctx))
	var terr *transport.Error
	if !errors.As(err, &terr) || terr.StatusCode != http.StatusNotFound {
		t.Fatalf("pull deleted image: %v, want 404", err)
	}
	if _, err := th.Tags(ctx, "alpha/a"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Tags of collected repo = %v, want ErrNotFound", err)
	}

	// DeleteManifest by tag drops the manifest and its tags; the next GC
	// frees its unique content, again leaving the base alone.
	if err := th.DeleteManifest(ctx, "alpha/b", "v1"); err != nil {
		t.Fatal(err)
	}
	if _, err := th.Digest(ctx, "alpha/b", "v1"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("tag survived DeleteManifest: %v", err)
	}
	if err := th.DeleteManifest(ctx, "alpha/b", mustDigest(t, imgB).String()); !errors.Is(err, ErrNotFound) {
		t.Fatalf("second DeleteManifest = %v, want ErrNotFound", err)
	}
	stats, err = th.GarbageCollect(ctx)
	if err != nil {
		t.Fatal(err)
	}
	// imgB's layer, config and manifest, plus the base layers, which only
	// imgB still referenced.
	if want := 3 + len(baseLayers); stats.BlobsDeleted != want {
		t.Fatalf("second GC deleted %d blobs, want %d", stats.BlobsDeleted, want)
	}

	// Deleting over the API with the internal credential works too.
	if err := remote.Delete(th.ref(t, "alpha/multi@"+mustDigest(t, idx).String()), auth, remote.WithContext(ctx)); err != nil {
		t.Fatalf("API delete: %v", err)
	}
	if _, err := th.GarbageCollect(ctx); err != nil {
		t.Fatal(err)
	}
	var left []string
	_ = filepath.WalkDir(filepath.Join(root, "registry", "docker", "registry", "v2", "blobs"), func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			left = append(left, p)
		}
		return nil
	})
	if len(left) != 0 {
		t.Fatalf("blobs left after deleting everything: %v", left)
	}
}

// TestGCDuringPushes runs collections while pushes reuse a layer that is
// garbage (its only image was untagged): the pushers see the layer via HEAD
// and skip uploading it, so a sweep in the middle of a push would leave a
// manifest pointing at nothing. Every pushed image must pull afterwards.
func TestGCDuringPushes(t *testing.T) {
	th := startHub(t, t.TempDir(), func(c *Config) { c.GCQuietPeriod = 300 * time.Millisecond })
	ctx := testCtx(t)
	auth := th.internalAuth()

	base := randomImage(t)
	push(t, ctx, th.ref(t, "alpha/base:v1"), base, auth)
	if err := th.DeleteTag(ctx, "alpha/base", "v1"); err != nil {
		t.Fatal(err)
	}

	const n = 4
	imgs := make([]v1.Image, n)
	for i := range imgs {
		l, err := random.Layer(2048, types.DockerLayer)
		if err != nil {
			t.Fatal(err)
		}
		if imgs[i], err = mutate.AppendLayers(base, l); err != nil {
			t.Fatal(err)
		}
	}
	errc := make(chan error, 1)
	go func() {
		for i, img := range imgs {
			ref, _ := name.ParseReference(fmt.Sprintf("%s/alpha/app%d:v1", th.host, i))
			if err := remote.Write(ref, img, auth, remote.WithContext(ctx)); err != nil {
				errc <- err
				return
			}
		}
		errc <- nil
	}()
	var pushErr error
	done := false
	for gcs := 0; gcs < 3 || !done; gcs++ {
		if _, err := th.GarbageCollect(ctx); err != nil {
			t.Fatal(err)
		}
		select {
		case pushErr = <-errc:
			done = true
		default:
		}
	}
	if pushErr != nil {
		t.Fatalf("push: %v", pushErr)
	}
	for i, img := range imgs {
		pullAndVerify(t, ctx, th.ref(t, fmt.Sprintf("alpha/app%d:v1", i)), mustDigest(t, img), auth)
	}
}

func TestGCWaitsForQuiet(t *testing.T) {
	th := startHub(t, t.TempDir(), func(c *Config) { c.GCQuietPeriod = time.Hour })
	ctx := testCtx(t)
	push(t, ctx, th.ref(t, "alpha/web:v1"), randomImage(t), th.internalAuth())
	short, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
	defer cancel()
	if _, err := th.GarbageCollect(short); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("GC right after a push with an hour's quiet period: %v, want deadline exceeded", err)
	}
	// The failed wait must not leave pushes blocked.
	push(t, ctx, th.ref(t, "alpha/web:v2"), randomImage(t), th.internalAuth())
}

func TestRestartKeepsImagesAndKey(t *testing.T) {
	root := t.TempDir()
	th := startHub(t, root, nil)
	ctx := testCtx(t)
	img := randomImage(t)
	push(t, ctx, th.ref(t, "alpha/web:v1"), img, basic("alpha-token"))
	tok := fetchToken(t, th.srv.URL, "u", "alpha-token", "repository:alpha/web:pull")
	user, pass := th.InternalCredentials()
	cert, err := os.ReadFile(filepath.Join(root, "auth", "signing.crt"))
	if err != nil {
		t.Fatal(err)
	}
	th.stop()

	th2 := startHub(t, root, nil)
	if u, p := th2.InternalCredentials(); u != user || p != pass {
		t.Fatal("internal credential changed across restart")
	}
	cert2, err := os.ReadFile(filepath.Join(root, "auth", "signing.crt"))
	if err != nil || string(cert2) != string(cert) {
		t.Fatalf("signing certificate changed across restart (%v)", err)
	}
	// A token issued before the restart still opens the image.
	resp := getWithBearer(t, th2.srv.URL+"/v2/alpha/web/manifests/v1", tok)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("old token after restart: %d", resp.StatusCode)
	}
	pullAndVerify(t, ctx, th2.ref(t, "alpha/web:v1"), mustDigest(t, img), basic("alpha-token"))
	pullAndVerify(t, ctx, th2.ref(t, "alpha/web:v1"), mustDigest(t, img), th2.internalAuth())
}

func TestNewValidates(t *testing.T) {
	ctx := context.Background()
	if _, err := New(ctx, Config{Auth: testAuth}); err == nil {
		t.Error("New without root succeeded")
	}
	if _, err := New(ctx, Config{Root: t.TempDir()}); err == nil {
		t.Error("New without authenticator succeeded")
	}
	root := t.TempDir()
	if err := os.MkdirAll(filepath.Join(root, "auth"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, "auth", "signing.key"), []byte("not a key"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := New(ctx, Config{Root: root, Auth: testAuth}); err == nil {
		t.Error("New with a corrupt signing key succeeded")
	}
}

type testClaims struct {
	Iss    string `json:"iss"`
	Sub    string `json:"sub"`
	Access []struct {
		Type    string   `json:"type"`
		Name    string   `json:"name"`
		Actions []string `json:"actions"`
	} `json:"access"`
}

func decodeClaims(t *testing.T, tok string) testClaims {
	t.Helper()
	parts := strings.Split(tok, ".")
	if len(parts) != 3 {
		t.Fatalf("token has %d parts", len(parts))
	}
	raw, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatal(err)
	}
	var c testClaims
	if err := json.Unmarshal(raw, &c); err != nil {
		t.Fatal(err)
	}
	return c
}

func fetchToken(t *testing.T, base, user, pass, scope string) string {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, base+TokenPath+"?service="+DefaultService+"&scope="+url.QueryEscape(scope), nil)
	req.SetBasicAuth(user, pass)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body struct {
		Token string `json:"token"`
	}
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("token: status %d", resp.StatusCode)
	}
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil || body.Token == "" {
		t.Fatalf("token body: %v", err)
	}
	return body.Token
}

func getWithBearer(t *testing.T, u, tok string) *http.Response {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, u, nil)
	req.Header.Set("Authorization", "Bearer "+tok)
	req.Header.Set("Accept", string(types.DockerManifestSchema2)+", "+string(types.OCIManifestSchema1))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp
}

func countFiles(t *testing.T, root string) int {
	t.Helper()
	n := 0
	err := filepath.WalkDir(root, func(_ string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() {
			n++
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func blobExists(t *testing.T, root string, h v1.Hash) bool {
	t.Helper()
	p := filepath.Join(root, "registry", "docker", "registry", "v2", "blobs", h.Algorithm, h.Hex[:2], h.Hex, "data")
	_, err := os.Stat(p)
	return err == nil
}

func TestDeniedScopes(t *testing.T) {
	team := Principal{Teams: []string{"alpha"}, Pull: true}
	req := []string{"repository:alpha/web:pull", "repository:alpha/web:push", "repository:beta/db:pull", "registry:catalog:*", "junk"}
	got := deniedScopes(req, grant(team, req))
	want := []string{"repository:alpha/web:push", "repository:beta/db:pull"}
	if !slices.Equal(got, want) {
		t.Fatalf("deniedScopes = %v, want %v", got, want)
	}
}

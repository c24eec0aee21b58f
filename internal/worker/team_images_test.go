package worker

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/berth-platform/berth/internal/hub"
	"github.com/berth-platform/berth/internal/model"
	"github.com/berth-platform/berth/internal/runtime"
	"github.com/berth-platform/berth/internal/store"
)

const testHub = "127.0.0.1:7070"

// testHubRegistry mints credentials the way the hub does: one per team,
// never the internal one.
func testHubRegistry() *ImageRegistry {
	return &ImageRegistry{Prefix: testHub, Username: hub.InternalUsername, Password: "internal", PlainHTTP: true,
		TeamPull: func(team string) (string, string) { return "pull/" + team, "p-" + team },
		TeamBuild: func(team, repo string) (string, string, error) {
			return "build/" + repo, "b-" + repo, nil
		}}
}

// Team alpha's workload of beta's hub image gets no credential at all, its
// own gets alpha's: the internal credential is never handed out.
func TestPullAuthIsTheTeamsOwn(t *testing.T) {
	r := testHubRegistry()
	_, err := r.pullAuth("alpha", testHub+"/beta/secret:v1")
	var f *Failure
	if !errors.As(err, &f) || f.Reason != "ImageNotAllowed" || !errors.Is(err, hub.ErrImageNotAllowed) {
		t.Fatalf("beta's image for alpha: %v, want ImageNotAllowed", err)
	}
	if _, err := r.pullAuth("alpha", "localhost:7070/beta/secret:v1"); err == nil {
		t.Fatal("beta's image under the name localhost was allowed")
	}
	for _, img := range []string{testHub + "/alpha/web:v1", testHub + "/berth/base-go-runner:latest"} {
		auth, err := r.pullAuth("alpha", img)
		if err != nil || auth == nil || auth.Username != "pull/alpha" || auth.Password == "internal" {
			t.Errorf("%s: %+v, %v; want alpha's pull credential", img, auth, err)
		}
	}
	if auth, err := r.pullAuth("alpha", "docker.io/library/nginx:1.25"); auth != nil || err != nil {
		t.Errorf("another registry: %+v, %v; want no hub credential", auth, err)
	}
}

// On an external registry berth's prefix follows the same rule; the rest of
// that registry gets no berth credential.
func TestPullAuthExternalRegistry(t *testing.T) {
	r := &ImageRegistry{Prefix: "reg.example.com/berth-builds", Username: "u", Password: "p"}
	if _, err := r.pullAuth("alpha", "reg.example.com/berth-builds/beta/secret:v1"); err == nil {
		t.Error("beta's built image for alpha was allowed")
	}
	if auth, _ := r.pullAuth("alpha", "reg.example.com/berth-builds/alpha/web:v1"); auth == nil || auth.Username != "u" {
		t.Errorf("alpha's own built image: %+v", auth)
	}
	if auth, err := r.pullAuth("alpha", "reg.example.com/other/x:v1"); auth != nil || err != nil {
		t.Errorf("outside the prefix: %+v, %v; want no berth credential", auth, err)
	}
}

func TestBuildAuthPushesTheComponentsRepository(t *testing.T) {
	a, err := testHubRegistry().buildAuth(&model.Component{Team: "alpha", Alias: "web"})
	if err != nil || a.Username != "build/alpha/web" || a.Password == "internal" {
		t.Fatalf("build credential: %+v, %v", a, err)
	}
}

func TestDockerfileImagesRefusesAnotherTeamsHubImage(t *testing.T) {
	r := testHubRegistry()
	for name, df := range map[string]string{
		"FROM":             "FROM " + testHub + "/beta/secret:v1\nRUN true\n",
		"FROM via ARG":     "ARG BASE=" + testHub + "/alpha/base:v1\nFROM ${BASE}\n",
		"COPY --from":      "FROM busybox\nCOPY --from=" + testHub + "/beta/secret:v1 /key /key\n",
		"RUN --mount from": "FROM busybox\nRUN --mount=type=bind,from=localhost:7070/beta/secret:v1,target=/s cat /s/key\n",
	} {
		args := map[string]string{"BASE": testHub + "/beta/secret:v1"}
		err := r.checkDockerfileImages("alpha", []byte(df), args)
		if !errors.Is(err, hub.ErrImageNotAllowed) {
			t.Errorf("%s: %v, want refused", name, err)
			continue
		}
		if !strings.Contains(err.Error(), "Dockerfile line") || !strings.Contains(err.Error(), "beta/secret") {
			t.Errorf("%s: message %q does not name the line and the repository", name, err)
		}
	}
	ok := "FROM " + testHub + "/alpha/base:v1 AS build\nFROM " + testHub + "/berth/base-static-runner\n" +
		"COPY --from=build /app /app\nCOPY --from=0 /x /x\nFROM scratch\n"
	if err := r.checkDockerfileImages("alpha", []byte(ok), nil); err != nil {
		t.Errorf("own images, base images and stages: %v", err)
	}
}

func TestDeniedHintNamesTheRule(t *testing.T) {
	r := testHubRegistry()
	msg := "failed to resolve source metadata for " + testHub + "/bank/secret:v1: pull access denied: insufficient_scope: authorization failed"
	if h := r.deniedHint(msg); !strings.Contains(h, "its own team") || !strings.Contains(h, "ONBUILD") {
		t.Errorf("hint %q", h)
	}
	if h := r.deniedHint("failed to resolve source metadata for docker.io/library/nginx: insufficient_scope"); h != "" {
		t.Errorf("another registry got a hub hint: %q", h)
	}
}

// recordingDriver records what Apply is handed; nothing else is called.
type recordingDriver struct {
	runtime.Driver
	applied []runtime.ComponentSpec
}

func (d *recordingDriver) Apply(_ context.Context, spec runtime.ComponentSpec) error {
	d.applied = append(d.applied, spec)
	return nil
}

// The reconciler refuses, at pull time, a stored component naming another
// team's hub image (one written before the API's rule, say), and runs the
// team's own with the team's credential, never the internal one.
func TestReconcilerPullsWithTheTeamsCredential(t *testing.T) {
	st, err := store.Open(context.Background(), "", t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	drv := &recordingDriver{}
	r := NewReconciler(st, drv)
	r.Registry = testHubRegistry()
	c := &model.Component{ID: "cmp-1", Team: "shop", App: "web", Alias: "thief", Kind: model.KindImage,
		Image: testHub + "/bank/secret:v1", Desired: model.DesiredRunning, DeployVersion: 1, Instances: 1}
	if err := r.Apply(context.Background(), c, nil); !errors.Is(err, hub.ErrImageNotAllowed) || len(drv.applied) > 0 {
		t.Fatalf("bank's image for shop: %v, %d applies; want refused before the runtime", err, len(drv.applied))
	}
	c.Image = testHub + "/shop/web:v1"
	if err := r.Apply(context.Background(), c, nil); err != nil || len(drv.applied) != 1 {
		t.Fatalf("shop's own image: %v", err)
	}
	if a := drv.applied[0].Registry; a == nil || a.Username != "pull/shop" || a.Password == "internal" {
		t.Fatalf("shop's own image pulled with %+v, want shop's pull credential", a)
	}
}

package e2e

import (
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/berth-platform/berth/internal/testgit"
	"github.com/berth-platform/berth/internal/testimage"
)

// pushAs puts img into the hub as repo (team/name:tag) with a berth token
// and returns its reference.
func (s *server) pushAs(token, repo string, img v1.Image) string {
	s.t.Helper()
	ref := s.addr + "/" + repo
	r, err := name.ParseReference(ref, name.Insecure)
	if err != nil {
		s.t.Fatal(err)
	}
	if err := remote.Write(r, img, remote.WithAuth(&authn.Basic{Username: "x", Password: token})); err != nil {
		s.t.Fatalf("push %s: %v", ref, err)
	}
	return ref
}

// Team shop plays the attacker against team bank's hub image. Before, the
// worker and BuildKit used the hub's internal credential for any reference
// on the hub's host, so an image component or a Dockerfile of shop could
// run and build from bank/secret although shop's tokens could not pull it.
func TestHubImagesStayInTheirTeam(t *testing.T) {
	requireBuildKit(t)
	var s *server
	flags := runtimeFlags(t, func() string { return s.data })
	s = startServer(t, flags...)
	setupShop(s)
	s.must(201, "POST", "/api/v1/teams", map[string]any{"name": "bank"})
	busybox, err := testimage.Busybox()
	if err != nil {
		t.Fatal(err)
	}
	secret := s.pushAs(s.teamToken("bank", "developer"), "bank/secret:v1", busybox)
	shopDev := s.teamToken("shop", "developer")
	own := s.pushAs(shopDev, "shop/busybox:v1", busybox)
	hubPort := s.addr[strings.LastIndex(s.addr, ":")+1:]

	// Create and update name the rule, under every loopback name of the hub.
	for _, img := range []string{secret, "localhost:" + hubPort + "/bank/secret:v1", s.addr + "/berth/anything:v1"} {
		r := s.do(shopDev, "POST", comps, map[string]any{"alias": "thief", "image": img, "cmd": []string{"sleep", "3600"}})
		if r.Status != 422 || r.errorCode() != "image_not_allowed" || !strings.Contains(r.errorMessage(), "image:") ||
			!strings.Contains(r.errorMessage(), "shop/...") {
			t.Errorf("image component of %s: %d %s, want 422 image_not_allowed naming the rule", img, r.Status, r.Body)
		}
	}
	r := s.do(shopDev, "POST", comps, map[string]any{"alias": "retag", "kind": "source", "source": map[string]any{"type": "image", "image": secret}})
	if r.Status != 422 || r.errorCode() != "image_not_allowed" || !strings.Contains(r.errorMessage(), "source.image") {
		t.Errorf("re-tag of bank's image: %d %s", r.Status, r.Body)
	}
	// Shop's own hub image re-tags: pulled and pushed with shop's credentials.
	s.mustAs(shopDev, 201, "POST", comps, map[string]any{"alias": "retag", "kind": "source", "cmd": []string{"sleep", "3600"},
		"source": map[string]any{"type": "image", "image": own}})
	if ev, log := s.build("retag", nil); ev["status"] != "success" || !strings.Contains(log, "re-tagged as "+s.addr+"/shop/retag:v1") {
		t.Errorf("re-tag of shop's own hub image: %v\n%s", ev, log)
	}
	s.mustAs(shopDev, 201, "POST", comps, map[string]any{"alias": "mine", "image": own, "cmd": []string{"sleep", "3600"}, "memory": "16Mi"})
	r = s.do(shopDev, "PATCH", comps+"/mine", map[string]any{"image": secret})
	if r.Status != 422 || r.errorCode() != "image_not_allowed" || !strings.Contains(r.errorMessage(), "bank/secret") {
		t.Errorf("PATCH to bank's image: %d %s", r.Status, r.Body)
	}
	// Its own hub image runs, pulled with shop's credential.
	var acc struct {
		EventID string `json:"event_id"`
	}
	s.mustAs(shopDev, 202, "POST", comps+"/mine/deploy", nil).json(t, &acc)
	if ev := s.waitEvent(acc.EventID); ev["status"] != "success" {
		t.Fatalf("deploy of shop's own hub image: %v\n%s", ev, s.eventLog(acc.EventID))
	}

	git := testgit.Serve(t, "", "")
	work := git.Repo("steal")
	git.Commit(work, "steal", map[string]string{"Dockerfile": "FROM " + secret + "\nCMD [\"sleep\", \"3600\"]\n"})
	s.mustAs(shopDev, 201, "POST", comps, map[string]any{"alias": "steal", "kind": "source",
		"source": map[string]any{"url": git.URL("steal"), "branch": "main"}})
	ev, log := s.build("steal", nil)
	if ev["status"] != "failure" || !strings.Contains(log, "Dockerfile line 1 (FROM)") || !strings.Contains(log, "bank/secret") {
		t.Errorf("build FROM bank's image: %v\n%s", ev, log)
	}

	// A reference the Dockerfile does not show: an ONBUILD trigger in
	// shop's own base image. Only the build's credential stops it.
	trigger, err := mutate.Config(busybox, v1.Config{OnBuild: []string{"COPY --from=" + secret + " /bin/busybox /stolen"}})
	if err != nil {
		t.Fatal(err)
	}
	onbuild := s.pushAs(shopDev, "shop/onbuild:v1", trigger)
	git.Commit(work, "hidden", map[string]string{"Dockerfile": "FROM " + onbuild + "\nCMD [\"sleep\", \"3600\"]\n"})
	ev, log = s.build("steal", nil)
	if ev["status"] != "failure" || strings.Contains(log, "Build success") ||
		!strings.Contains(log, "bank/secret") || !strings.Contains(log, "may only use hub repositories of its own team") {
		t.Errorf("build whose ONBUILD copies from bank's image: %v\n%s", ev, log)
	}

	// Shop's own hub images and the platform's base images build, push
	// with the build's credential and deploy with shop's.
	base := s.pushAs(s.token, "berth/base-test-runner:latest", busybox)
	git.Commit(work, "honest", map[string]string{"Dockerfile": "FROM " + base + "\nCOPY --from=" + own + " /bin/busybox /bin/bb\nCMD [\"sleep\", \"3600\"]\n"})
	if ev, log = s.build("steal", nil); ev["status"] != "success" || !strings.Contains(log, "ready") {
		t.Errorf("build FROM a base image and shop's own hub image: %v\n%s", ev, log)
	}
}

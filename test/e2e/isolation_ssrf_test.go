package e2e

import (
	"net"
	"strings"
	"testing"

	"github.com/berth-platform/berth/internal/testgit"
)

// A tenant names a git repository or an image registry at the host's own
// addresses: berth clones and pulls from its host, so it would connect to
// a service only the host reaches (berth's own API here). Refused with
// 422 unless a platform admin allows the range; berth's hub is the
// platform's registry and always allowed.
func TestSourcesAndImagesCannotReachTheHost(t *testing.T) {
	s := startServer(t, noEndpointAllowance)
	setupShop(s)
	dev := s.teamToken("shop", "developer")
	_, apiPort, _ := net.SplitHostPort(s.addr)
	refused := func(what string, r response, code, names string) {
		t.Helper()
		if r.Status != 422 || r.errorCode() != code || !strings.Contains(r.errorMessage(), names) ||
			!strings.Contains(r.errorMessage(), "--allow-endpoint-cidr") {
			t.Errorf("%s: %d %s, want 422 %s naming %s and --allow-endpoint-cidr", what, r.Status, r.Body, code, names)
		}
	}
	gitSource := func(alias, url string) map[string]any {
		return map[string]any{"alias": alias, "kind": "source", "source": map[string]any{"url": url, "branch": "main"}}
	}
	for _, host := range []string{"127.0.0.1:" + apiPort, "localhost:" + apiPort, "[::1]:" + apiPort, "169.254.169.254", net.JoinHostPort(hostAddress(t), apiPort)} {
		refused("git source at "+host, s.do(dev, "POST", comps, gitSource("src", "http://"+host+"/x.git")), "source_host_not_allowed", host)
	}
	refused("ssh git source on the host", s.do(dev, "POST", comps, gitSource("src", "git@127.0.0.1:x.git")), "source_host_not_allowed", "127.0.0.1")

	loopbackRegistry := "127.0.0.1:1/x:1" // any loopback port but the hub's
	refused("image on a loopback registry", s.do(dev, "POST", comps, map[string]any{"alias": "img", "kind": "image", "image": loopbackRegistry}), "image_host_not_allowed", "127.0.0.1:1")
	refused("re-tag from a loopback registry", s.do(dev, "POST", comps, map[string]any{"alias": "img", "kind": "source",
		"source": map[string]any{"type": "image", "image": loopbackRegistry}}), "image_host_not_allowed", "127.0.0.1:1")

	// The hub, on the API's loopback address, is not the tenant's choice.
	if r := s.do(dev, "POST", comps, map[string]any{"alias": "own", "kind": "image", "image": s.addr + "/shop/own:v1"}); r.Status != 201 {
		t.Errorf("an image of the team's own hub repository: %d %s", r.Status, r.Body)
	}
	// Outside addresses stay fine, and a PATCH is checked like a create.
	if r := s.do(dev, "POST", comps, gitSource("ext", "https://192.0.2.10/x.git")); r.Status != 201 {
		t.Fatalf("an outside git source: %d %s", r.Status, r.Body)
	}
	refused("PATCH of the source to the host", s.do(dev, "PATCH", comps+"/ext", map[string]any{"source": map[string]any{"url": "http://127.0.0.1:" + apiPort + "/x.git"}}), "source_host_not_allowed", "127.0.0.1")
	if r := s.do(dev, "POST", comps, map[string]any{"alias": "extimg", "kind": "image", "image": "192.0.2.10:5000/x:1"}); r.Status != 201 {
		t.Fatalf("an outside image: %d %s", r.Status, r.Body)
	}
	refused("PATCH of the image to the host", s.do(dev, "PATCH", comps+"/extimg", map[string]any{"image": loopbackRegistry}), "image_host_not_allowed", "127.0.0.1:1")

	// The admin allows loopback: accepted; link-local still not.
	allowed := startServer(t, "--allow-endpoint-cidr", "127.0.0.0/8")
	setupShop(allowed)
	if r := allowed.do(allowed.token, "POST", comps, gitSource("src", "http://127.0.0.1:"+apiPort+"/x.git")); r.Status != 201 {
		t.Errorf("a loopback git source inside an allowed range: %d %s", r.Status, r.Body)
	}
	if r := allowed.do(allowed.token, "POST", comps, map[string]any{"alias": "img", "kind": "image", "image": loopbackRegistry}); r.Status != 201 {
		t.Errorf("a loopback image inside an allowed range: %d %s", r.Status, r.Body)
	}
	refused("link-local outside the allowed range", allowed.do(allowed.token, "POST", comps, gitSource("meta", "http://169.254.169.254/x.git")), "source_host_not_allowed", "169.254.169.254")
}

// A source saved while the admin allowed loopback (or a name that now
// resolves there) is checked again when the build clones: the range
// withdrawn, the build fails before git connects, saying why.
func TestBuildChecksTheGitHostAgainWhenItClones(t *testing.T) {
	requireBuildKit(t)
	var s *server
	flags := runtimeFlags(t, func() string { return s.data })
	s = startServer(t, append(flags, "--allow-endpoint-cidr", "127.0.0.0/8")...)
	setupShop(s)
	git := testgit.Serve(t, "", "")
	git.Commit(git.Repo("site"), "page", map[string]string{"Dockerfile": "FROM scratch\n"})
	s.must(201, "POST", comps, map[string]any{"alias": "site", "kind": "source", "source": map[string]any{"url": git.URL("site"), "branch": "main"}})

	s.stop()
	s.args = withoutFlag(s.args, "--allow-endpoint-cidr")
	s.start()
	ev, log := s.build("site", nil)
	if ev["status"] != "failure" || !strings.Contains(log, "repository host not allowed") || !strings.Contains(log, "--allow-endpoint-cidr") ||
		strings.Contains(log, "CodeVersion:") {
		t.Fatalf("a build from the host's loopback without the allowance: %v\n%s", ev, log)
	}
}

// withoutFlag drops flag and its value from args.
func withoutFlag(args []string, flag string) []string {
	var out []string
	for i := 0; i < len(args); i++ {
		if args[i] == flag {
			i++
			continue
		}
		out = append(out, args[i])
	}
	return out
}

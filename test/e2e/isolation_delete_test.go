package e2e

import (
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/berth-platform/berth/internal/testimage"
)

// deleteAndWait deletes through the API (202 and an event) and waits for
// the delete to succeed.
func (s *server) deleteAndWait(path string) map[string]any {
	s.t.Helper()
	var acc struct {
		EventID string `json:"event_id"`
	}
	s.must(202, "DELETE", path, nil).json(s.t, &acc)
	ev := s.waitEventFor(acc.EventID, 3*time.Minute)
	if ev["status"] != "success" {
		s.t.Fatalf("DELETE %s: %v\n%s", path, ev, s.eventLog(acc.EventID))
	}
	return ev
}

// A team that is deleted leaves nothing behind: first an app of it goes
// (its component stops, the rest of the team keeps running), then the
// team: no container, cgroup or network namespace in containerd's
// namespace, no service address listening, no gateway route, no file of
// its components in the data directory, no hub repository. Before the
// delete tasks, DELETE /teams removed rows only and every instance kept
// running and restarting.
func TestDeleteTeamRemovesEverything(t *testing.T) {
	requireRuntime(t)
	image := pushBusybox(t)
	// The thirdparty component's endpoint is the test's, on loopback.
	t.Setenv("BERTH_ALLOW_ENDPOINT_CIDR", "127.0.0.0/8")
	var s *server
	flags := runtimeFlags(t, func() string { return s.data })
	ns := flags[slices.Index(flags, "--containerd-namespace")+1]
	bridge := flags[slices.Index(flags, "--bridge")+1]
	// TCP rules get ports of their own, below the ephemeral range.
	lo := 20000 + int(time.Now().UnixNano()%5000)*2
	flags = append(flags, "--tcp-ports", fmt.Sprintf("%d-%d", lo, lo+1))
	s = startServer(t, flags...)
	setupShop(s)
	s.must(201, "POST", "/api/v1/teams/shop/apps", map[string]any{"name": "extra"})
	extra := "/api/v1/teams/shop/apps/extra/components"

	httpd := func(port string) []string {
		return []string{"sh", "-c", "mkdir -p /www && echo $HOSTNAME > /www/index.html && exec httpd -f -p " + port + " -h /www"}
	}
	ids := map[string]string{}
	create := func(path, alias string, body map[string]any) {
		body["alias"], body["image"], body["memory"] = alias, image, "32Mi"
		var c struct{ ID string }
		s.must(201, "POST", path, body).json(t, &c)
		ids[alias] = c.ID
		var acc struct {
			EventID string `json:"event_id"`
		}
		s.must(202, "POST", path+"/"+alias+"/deploy", nil).json(t, &acc)
		if ev := s.waitEvent(acc.EventID); ev["status"] != "success" {
			t.Fatalf("deploy %s: %v", alias, ev)
		}
	}
	create(comps, "front", map[string]any{"cmd": httpd("8080"),
		"ports":     []map[string]any{{"port": 8080, "protocol": "http", "inner": true, "outer": true}},
		"volumes":   []map[string]any{{"name": "data", "path": "/data"}},
		"readiness": map[string]any{"type": "http", "port": 8080, "period_seconds": 1}})
	create(comps, "back", map[string]any{"cmd": httpd("8081"),
		"ports":     []map[string]any{{"port": 8081, "protocol": "tcp", "inner": true}},
		"readiness": map[string]any{"type": "tcp", "port": 8081, "period_seconds": 1}})
	create(extra, "side", map[string]any{"cmd": httpd("8082"),
		"ports":     []map[string]any{{"port": 8082, "protocol": "tcp", "inner": true}},
		"volumes":   []map[string]any{{"name": "keep", "path": "/keep"}},
		"readiness": map[string]any{"type": "tcp", "port": 8082, "period_seconds": 1}})
	s.must(201, "POST", "/api/v1/teams/shop/http-rules", map[string]any{"domain": "doomed.berth.test", "component": "front", "port": 8080})
	var tcp struct {
		GatewayPort int `json:"gateway_port"`
	}
	s.must(201, "POST", "/api/v1/teams/shop/tcp-rules", map[string]any{"component": "back", "port": 8081}).json(t, &tcp)
	tcpAddr := fmt.Sprintf("127.0.0.1:%d", tcp.GatewayPort)
	// A thirdparty component: berth probes its endpoint and gives it a
	// service address and a default domain.
	probes, endpoint := countingEndpoint(t, "ext")
	s.must(201, "POST", comps, map[string]any{"alias": "ext", "kind": "thirdparty", "endpoints": []string{endpoint},
		"ports":     []map[string]any{{"port": 8090, "protocol": "http", "inner": true, "outer": true}},
		"readiness": map[string]any{"type": "http", "path": "/", "period_seconds": 1}})
	if ev := s.action("ext", "start", nil); ev["status"] != "success" {
		t.Fatalf("start ext: %v", ev)
	}

	hosts := []string{"http://doomed.berth.test/", "http://front-8080-shop.berth.test/", "http://ext-8090-shop.berth.test/"}
	for _, h := range hosts {
		waitGateway(s, h, 200)
	}
	addrs := map[string]string{} // service address -> alias
	for _, alias := range []string{"front", "back", "ext"} {
		c := s.waitComponent(alias, time.Minute, func(c componentState) bool { return c.Status == "running" })
		for _, p := range c.Ports {
			if p.InnerAddress == "" {
				t.Fatalf("%s port %d has no service address: %+v", alias, p.Port, c)
			}
			addrs[p.InnerAddress] = alias
		}
	}
	for a, alias := range addrs {
		if !serves(a, alias) {
			t.Fatalf("service address %s does not answer before the delete", a)
		}
	}
	if !waitAnswers(tcpAddr, "back", true) {
		t.Fatalf("TCP rule at %s does not reach back before the delete", tcpAddr)
	}
	var side struct {
		Ports []struct {
			InnerAddress string `json:"inner_address"`
		}
	}
	s.must(200, "GET", extra+"/side", nil).json(t, &side)
	sideAddr := side.Ports[0].InnerAddress
	if !serves(sideAddr, "side") {
		t.Fatalf("service address %s of side does not answer before the delete", sideAddr)
	}
	repo := pushToHub(t, s, "shop/tools:v1")

	ctr := ctrCommand(t, s.data, ns)
	if got := ctr("containers", "ls", "-q"); len(got) != 3 {
		t.Fatalf("containers before the deletes: %v, want 3", got)
	}
	if len(teamBridges(bridge)) == 0 {
		t.Fatalf("no team bridge %s-N to check against", bridge)
	}
	if len(cgroupsOf(ns)) == 0 || len(netnsFiles(s.data)) == 0 {
		t.Fatalf("no cgroup or network namespace of the instances to check against: %v %v", cgroupsOf(ns), netnsFiles(s.data))
	}
	// Files the runtime and the hub keep for the components, by id.
	for _, id := range ids {
		if len(pathsNaming(s.data, id)) == 0 {
			t.Fatalf("no file of component %s in the data directory to check against", id)
		}
	}
	if _, err := os.Stat(repo); err != nil {
		t.Fatalf("pushed repository not at %s: %v", repo, err)
	}

	// The app goes with its component, but for the volume kept on
	// purpose; the rest of the team keeps running.
	s.deleteAndWait("/api/v1/teams/shop/apps/extra?keep_volumes=1")
	s.must(404, "GET", "/api/v1/teams/shop/apps/extra", nil)
	if got := ctr("containers", "ls", "-q"); len(got) != 2 {
		t.Fatalf("containers after the app delete: %v, want front's and back's", got)
	}
	kept := filepath.Join("/volumes", ids["side"])
	if left := pathsNaming(s.data, ids["side"]); len(left) != 1 || left[0] != kept {
		t.Errorf("files of the deleted app's component: %v, want only its kept volume %s", left, kept)
	}
	if serves(sideAddr, "side") {
		t.Errorf("service address %s of the deleted app still answers", sideAddr)
	}
	if c := s.component("front"); c.Status != "running" {
		t.Fatalf("front after deleting another app: %+v", c)
	}

	// The team: its owner deletes it and follows the event until its
	// tokens go with it; the admin sees the end.
	owner := s.teamToken("shop", "owner")
	var acc struct {
		EventID string `json:"event_id"`
	}
	s.mustAs(owner, 202, "DELETE", "/api/v1/teams/shop", nil).json(t, &acc)
	ev := s.waitEventFor(acc.EventID, 3*time.Minute)
	if ev["status"] != "success" || ev["target"] != "team:shop" {
		t.Fatalf("team delete: %v\n%s", ev, s.eventLog(acc.EventID))
	}
	if log := s.eventLog(acc.EventID); !strings.Contains(log, "shop/tools") {
		t.Errorf("the event does not name the deleted hub repository:\n%s", log)
	}
	s.must(404, "GET", "/api/v1/teams/shop", nil)
	s.mustAs(owner, 401, "GET", "/api/v1/teams/shop", nil)

	if got := ctr("containers", "ls", "-q"); len(got) != 0 {
		t.Errorf("containers left in namespace %s: %v", ns, got)
	}
	if cg := cgroupsOf(ns); len(cg) != 0 {
		t.Errorf("cgroups left: %v", cg)
	}
	if nsFiles := netnsFiles(s.data); len(nsFiles) != 0 {
		t.Errorf("network namespaces left: %v", nsFiles)
	}
	if left := teamBridges(bridge); len(left) != 0 {
		t.Errorf("the team's bridge is left: %v", left)
	}
	for a, alias := range addrs {
		if serves(a, alias) {
			t.Errorf("service address %s still answers", a)
		}
	}
	for _, h := range hosts {
		waitGateway(s, h, 404)
	}
	if waitAnswers(tcpAddr, "back", false) {
		t.Errorf("the TCP rule's gateway port %s still reaches back", tcpAddr)
	}
	// Nothing probes the thirdparty endpoint any more.
	before := probes.Load()
	time.Sleep(3 * time.Second)
	if n := probes.Load() - before; n > 0 {
		t.Errorf("the deleted thirdparty component's endpoint was probed %d more times", n)
	}
	for alias, id := range ids {
		if left := pathsNaming(s.data, id); len(left) > 0 && alias != "side" {
			t.Errorf("files of %s remain: %v", alias, left)
		}
	}
	if _, err := os.Stat(repo); !os.IsNotExist(err) {
		t.Errorf("hub repository %s remains (%v)", repo, err)
	}
}

// A team delete cut short by SIGKILL resumes when berth starts again and
// finishes: the delete is a durable task, not a request that dies with
// the server.
func TestTeamDeleteResumesAfterSIGKILL(t *testing.T) {
	s := startServer(t, "--debug-task-delay", "700ms")
	setupShop(s)
	for _, a := range []string{"a", "b", "c"} {
		s.must(201, "POST", comps, map[string]any{"alias": a, "image": "nginx"})
	}
	var acc struct {
		EventID string `json:"event_id"`
	}
	s.must(202, "DELETE", "/api/v1/teams/shop", nil).json(t, &acc)
	time.Sleep(1000 * time.Millisecond) // one component gone, the next pausing
	var comps0 struct{ Items []any }
	s.must(200, "GET", comps, nil).json(t, &comps0)
	if len(comps0.Items) == 0 || len(comps0.Items) == 3 {
		t.Fatalf("%d components left before the kill; the test needs the delete halfway", len(comps0.Items))
	}
	s.kill()

	s.args = slices.DeleteFunc(slices.Clone(s.args), func(a string) bool { return a == "--debug-task-delay" || a == "700ms" })
	s.start()
	ev := s.waitEvent(acc.EventID)
	if ev["status"] != "success" {
		t.Fatalf("resumed team delete: %v\n%s", ev, s.eventLog(acc.EventID))
	}
	if log := s.eventLog(acc.EventID); !strings.Contains(log, "berth restarted while this") {
		t.Errorf("the event does not say it was resumed:\n%s", log)
	}
	s.must(404, "GET", "/api/v1/teams/shop", nil)
}

// waitAnswers waits up to 15 seconds for answers(addr, alias) to be want
// and returns its last answer.
func waitAnswers(addr, alias string, want bool) bool {
	deadline := time.Now().Add(15 * time.Second)
	for {
		got := answers(addr, alias)
		if got == want || time.Now().After(deadline) {
			return got
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// teamBridges lists the team bridges of the instance bridge's name.
func teamBridges(bridge string) []string {
	var out []string
	ifaces, _ := net.Interfaces()
	for _, i := range ifaces {
		if strings.HasPrefix(i.Name, bridge+"-") {
			out = append(out, i.Name)
		}
	}
	return out
}

// countingEndpoint serves body on loopback and counts the requests.
func countingEndpoint(t *testing.T, body string) (*atomic.Int64, string) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	n := &atomic.Int64{}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n.Add(1)
		io.WriteString(w, body)
	})}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return n, ln.Addr().String()
}

// waitGateway polls url through the gateway until it answers status.
func waitGateway(s *server, url string, status int) {
	s.t.Helper()
	gw := s.gatewayClient(nil)
	deadline := time.Now().Add(15 * time.Second)
	var last gatewayAnswer
	for time.Now().Before(deadline) {
		if last = s.gatewayDo(gw, "GET", url, nil); last.Status == status {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	s.t.Fatalf("%s through the gateway: %d %q, want %d", url, last.Status, last.Body, status)
}

// serves reports whether the service address addr answers with the page
// of an instance of alias (its hostname), or is still one of the host's
// addresses. A bare connect proves nothing where the network accepts every
// connection.
func serves(addr, alias string) bool {
	host, _, _ := net.SplitHostPort(addr)
	if ifaces, err := net.InterfaceAddrs(); err == nil {
		for _, a := range ifaces {
			if ipn, ok := a.(*net.IPNet); ok && ipn.IP.String() == host {
				return true
			}
		}
	}
	return answers(addr, alias)
}

// answers reports whether addr answers HTTP with the page of an instance
// of alias (its hostname).
func answers(addr, alias string) bool {
	c := &http.Client{Timeout: 3 * time.Second}
	resp, err := c.Get("http://" + addr + "/")
	if err != nil {
		return false
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode == 200 && strings.HasPrefix(string(b), alias)
}

// pushToHub pushes busybox to berth's hub as a developer of the team and
// returns the repository's directory in the hub's storage.
func pushToHub(t *testing.T, s *server, repoTag string) string {
	t.Helper()
	img, err := testimage.Busybox()
	if err != nil {
		t.Fatal(err)
	}
	ref, err := name.ParseReference(s.addr+"/"+repoTag, name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	team, _, _ := strings.Cut(repoTag, "/")
	auth := &authn.Basic{Username: "dev", Password: s.teamToken(team, "developer")}
	if err := remote.Write(ref, img, remote.WithAuth(auth)); err != nil {
		t.Fatalf("push %s to the hub: %v", ref, err)
	}
	repo, _, _ := strings.Cut(repoTag, ":")
	return filepath.Join(s.data, "hub", "registry", "docker", "registry", "v2", "repositories", repo)
}

// ctrCommand runs ctr against the test server's containerd and namespace
// and returns the output's lines.
func ctrCommand(t *testing.T, data, ns string) func(args ...string) []string {
	t.Helper()
	var sock string
	_ = filepath.WalkDir(data, func(p string, d fs.DirEntry, err error) error {
		if err == nil && d.Name() == "containerd.sock" {
			sock = p
			return filepath.SkipAll
		}
		return nil
	})
	if sock == "" {
		t.Fatalf("no containerd.sock under %s", data)
	}
	return func(args ...string) []string {
		t.Helper()
		out, err := exec.Command("ctr", append([]string{"--address", sock, "-n", ns}, args...)...).CombinedOutput()
		if err != nil {
			t.Fatalf("ctr %v: %v\n%s", args, err, out)
		}
		return strings.Fields(string(out))
	}
}

// pathsNaming lists the paths under data whose name contains id.
func pathsNaming(data, id string) []string {
	var out []string
	_ = filepath.WalkDir(data, func(p string, d fs.DirEntry, err error) error {
		if err == nil && strings.Contains(d.Name(), id) {
			out = append(out, strings.TrimPrefix(p, data))
			if d.IsDir() {
				return filepath.SkipDir
			}
		}
		return nil
	})
	return out
}

// netnsFiles lists the pinned network namespaces of the engine.
func netnsFiles(data string) []string {
	var out []string
	_ = filepath.WalkDir(data, func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() && filepath.Base(filepath.Dir(p)) == "netns" {
			out = append(out, strings.TrimPrefix(p, data))
		}
		return nil
	})
	return out
}

// cgroupsOf lists the instances' cgroups under a containerd namespace's.
func cgroupsOf(ns string) []string {
	var out []string
	entries, _ := filepath.Glob("/sys/fs/cgroup/*/" + ns + "/*")
	for _, e := range entries {
		if fi, err := os.Stat(e); err == nil && fi.IsDir() {
			out = append(out, e)
		}
	}
	return out
}

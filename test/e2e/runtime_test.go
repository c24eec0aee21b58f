package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/berth-platform/berth/internal/runtime/cninetwork"
	"github.com/berth-platform/berth/internal/runtime/containerd"
	"github.com/berth-platform/berth/internal/testimage"
)

// requireRuntime skips where containers cannot run, except in CI, where
// the test command installs what they need.
func requireRuntime(t *testing.T) {
	t.Helper()
	var missing []string
	if os.Geteuid() != 0 {
		missing = append(missing, "root")
	}
	for _, p := range []string{"/usr/bin/containerd", "/usr/sbin/runc", "/bin/busybox", "/usr/lib/cni/bridge"} {
		if _, err := os.Stat(p); err != nil {
			missing = append(missing, p)
		}
	}
	if len(missing) == 0 {
		return
	}
	msg := fmt.Sprintf("needs %s (run ./scripts/test.sh as root: it installs containerd, runc, containernetworking-plugins, busybox-static)", strings.Join(missing, ", "))
	if os.Getenv("CI") == "true" {
		t.Fatal(msg)
	}
	t.Skip(msg)
}

// pushBusybox serves a registry on loopback and pushes busybox to it.
func pushBusybox(t *testing.T) string {
	return pushBusyboxAuth(t, "", "")
}

// pushBusyboxAuth is pushBusybox with a registry that wants basic auth
// when user is set.
func pushBusyboxAuth(t *testing.T, user, pass string) string {
	t.Helper()
	img, err := testimage.Busybox()
	if err != nil {
		t.Fatal(err)
	}
	reg := testimage.Serve(user, pass)
	t.Cleanup(reg.Close)
	ref, err := reg.Push("test/busybox:v1", img)
	if err != nil {
		t.Fatal(err)
	}
	return ref
}

// runtimeFlags give a test server its own namespace, bridge and subnets,
// and cleanup removes what the server leaves running on purpose (containers
// outlive berth so that the next berth adopts them).
func runtimeFlags(t *testing.T, dataDir func() string) []string {
	t.Helper()
	suffix := fmt.Sprintf("%05d", time.Now().UnixNano()%100000)
	a, b := 200+int(time.Now().UnixNano()%8), int(time.Now().UnixNano()/7%250)
	bridge, link := "bte"+suffix, "bse"+suffix
	ns := "e2e-" + suffix
	subnet := fmt.Sprintf("10.%d.%d.0/24", a, b)
	t.Cleanup(func() {
		data := dataDir()
		// Shims and containers of this test mention its data directory.
		out, _ := exec.Command("pgrep", "-f", data).Output()
		for _, pid := range strings.Fields(string(out)) {
			var p int
			fmt.Sscan(pid, &p)
			if p > 0 && p != os.Getpid() {
				_ = syscall.Kill(p, syscall.SIGKILL)
			}
		}
		time.Sleep(200 * time.Millisecond)
		mounts, _ := os.ReadFile("/proc/mounts")
		var targets []string
		for _, line := range strings.Split(string(mounts), "\n") {
			if f := strings.Fields(line); len(f) > 1 && strings.HasPrefix(f[1], data) {
				targets = append(targets, f[1])
			}
		}
		for i := len(targets) - 1; i >= 0; i-- {
			_ = syscall.Unmount(targets[i], syscall.MNT_DETACH)
		}
		// The teams' bridges, their masquerade and isolation rules and
		// address leases, and the containers' bundle directory.
		if n, err := cninetwork.NewTeamNetworks(context.Background(), cninetwork.TeamConfig{Bridge: bridge, Subnet: subnet, StateDir: filepath.Join(data, "runtime", "cni")}); err == nil {
			if err := n.Destroy(context.Background()); err != nil {
				t.Errorf("remove the test networks: %v", err)
			}
		}
		_ = containerd.RemoveBundleStateDir(data)
		_ = exec.Command("ip", "link", "del", link).Run()
		if err := os.RemoveAll(data); err != nil {
			t.Errorf("remove the data directory: %v", err)
		}
		removeCgroups(t, ns)
	})
	return []string{"--runtime", "containerd", "--containerd-namespace", ns, "--bridge", bridge,
		"--subnet", subnet, "--service-link", link,
		"--service-subnet", fmt.Sprintf("10.%d.%d.0/24", a, (b+1)%250)}
}

type instanceView struct {
	ID, Status, Reason, Message, Advice, Address string
	Version                                      int64
	Restarts                                     int
}

type componentState struct {
	Ports []struct {
		Port         int
		InnerAddress string `json:"inner_address"`
	}
	Status         string
	StatusMessage  string `json:"status_message"`
	RestartPending string `json:"restart_pending"`
	Replicas       int
	Instances      []instanceView
}

func (s *server) component(alias string) componentState {
	var c componentState
	s.must(200, "GET", comps+"/"+alias, nil).json(s.t, &c)
	return c
}

func (s *server) waitComponent(alias string, timeout time.Duration, cond func(componentState) bool) componentState {
	s.t.Helper()
	deadline := time.Now().Add(timeout)
	var c componentState
	for time.Now().Before(deadline) {
		c = s.component(alias)
		if cond(c) {
			return c
		}
		time.Sleep(250 * time.Millisecond)
	}
	s.t.Fatalf("component %s: condition not met within %s; last: %+v", alias, timeout, c)
	return c
}

func (s *server) action(alias, action string, body any) map[string]any {
	s.t.Helper()
	var acc struct {
		EventID string `json:"event_id"`
	}
	s.must(202, "POST", comps+"/"+alias+"/"+action, body).json(s.t, &acc)
	return s.waitEvent(acc.EventID)
}

// A user deploys an image component, scales it, reads its logs, runs a
// command in it, stops and starts it, sees a crashing one explained, and
// kills berth: the instances keep running and are adopted.
func TestRuntimeThroughTheAPI(t *testing.T) {
	requireRuntime(t)
	image := pushBusybox(t)
	var s *server
	flags := runtimeFlags(t, func() string { return s.data })
	s = startServer(t, flags...)
	if !strings.Contains(s.out.String(), "✓ containerd") {
		t.Fatalf("no containerd phase:\n%s", s.out)
	}
	setupShop(s)
	s.must(201, "POST", comps, map[string]any{
		"alias": "web", "image": image, "instances": 1, "memory": "64Mi",
		"cmd":       []string{"sh", "-c", "mkdir -p /www && echo hello from $HOSTNAME > /www/index.html && echo serving && exec httpd -f -p 8080 -h /www"},
		"ports":     []map[string]any{{"port": 8080, "protocol": "http", "inner": true}},
		"readiness": map[string]any{"type": "http", "port": 8080, "path": "/", "period_seconds": 1},
	})
	ev := s.action("web", "deploy", nil)
	if ev["status"] != "success" {
		t.Fatalf("deploy: %v", ev)
	}
	var hist struct{ Lines []struct{ Text string } }
	s.must(200, "GET", "/api/v1/events/"+ev["id"].(string)+"/log", nil).json(t, &hist)
	joined := ""
	for _, l := range hist.Lines {
		joined += l.Text + "\n"
	}
	for _, want := range []string{"pulling image", "is ready", "1 instance(s) of version 1 ready"} {
		if !strings.Contains(joined, want) {
			t.Errorf("deploy log lacks %q:\n%s", want, joined)
		}
	}
	c := s.waitComponent("web", 30*time.Second, func(c componentState) bool { return c.Status == "running" })
	if len(c.Instances) != 1 || c.Instances[0].Status != "running" || c.Instances[0].Address == "" {
		t.Fatalf("instances: %+v", c.Instances)
	}

	if ev := s.action("web", "scale", map[string]any{"instances": 3}); ev["status"] != "success" {
		t.Fatalf("scale: %v", ev)
	}
	c = s.waitComponent("web", 30*time.Second, func(c componentState) bool { return c.Status == "running" && len(c.Instances) == 3 })

	logs := string(s.must(200, "GET", comps+"/web/logs?tail=10", nil).Body)
	if strings.Count(logs, "serving") != 3 || !strings.Contains(logs, "["+c.Instances[0].ID+"] ") {
		t.Errorf("logs of 3 instances:\n%s", logs)
	}
	var out struct {
		ExitCode int `json:"exit_code"`
		Output   string
	}
	s.must(200, "POST", comps+"/web/instances/"+c.Instances[0].ID+"/exec", map[string]any{"cmd": []string{"cat", "/www/index.html"}}).json(t, &out)
	if out.ExitCode != 0 || !strings.Contains(out.Output, "hello from web-") {
		t.Errorf("exec: %+v", out)
	}

	// Another instance reaches the component at its stable inner address.
	addr := c.Ports[0].InnerAddress
	if addr == "" {
		t.Fatalf("no inner address: %+v", c.Ports)
	}
	s.must(200, "POST", comps+"/web/instances/"+c.Instances[1].ID+"/exec", map[string]any{"cmd": []string{"wget", "-qO-", "http://" + addr + "/"}}).json(t, &out)
	if out.ExitCode != 0 || !strings.Contains(out.Output, "hello from web-") {
		t.Errorf("inner address %s from an instance: %+v", addr, out)
	}
	// A terminal over the WebSocket: output, then the exit code.
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	wsURL := "ws" + strings.TrimPrefix(s.url, "http") + "/api/v1/teams/shop/apps/web/components/web/instances/" + c.Instances[0].ID +
		"/exec?cmd=sh&cmd=-c&cmd=" + url.QueryEscape("read line; echo got:$line; exit 3")
	conn, _, err := websocket.Dial(ctx, wsURL, &websocket.DialOptions{HTTPHeader: http.Header{"Authorization": {"Bearer " + s.token}}})
	if err != nil {
		t.Fatal(err)
	}
	_ = conn.Write(ctx, websocket.MessageText, []byte(`{"type":"resize","cols":100,"rows":30}`))
	_ = conn.Write(ctx, websocket.MessageBinary, []byte("ping\r"))
	var term strings.Builder
	exitCode := -1
	for exitCode < 0 {
		typ, b, err := conn.Read(ctx)
		if err != nil {
			t.Fatalf("exec websocket: %v (output so far %q)", err, term.String())
		}
		if typ == websocket.MessageBinary {
			term.Write(b)
			continue
		}
		var m struct {
			Type string
			Code int
		}
		_ = json.Unmarshal(b, &m)
		if m.Type == "exit" {
			exitCode = m.Code
		}
	}
	conn.CloseNow()
	if exitCode != 3 || !strings.Contains(term.String(), "got:ping") {
		t.Errorf("terminal: exit %d, output %q", exitCode, term.String())
	}
	// Without a terminal, the end of the client's input ends the command's.
	conn, _, err = websocket.Dial(ctx, wsURL[:strings.Index(wsURL, "?")]+"?tty=0&cmd=cat",
		&websocket.DialOptions{HTTPHeader: http.Header{"Authorization": {"Bearer " + s.token}}})
	if err != nil {
		t.Fatal(err)
	}
	_ = conn.Write(ctx, websocket.MessageBinary, []byte("piped input"))
	_ = conn.Write(ctx, websocket.MessageText, []byte(`{"type":"stdin_eof"}`))
	var piped strings.Builder
	for {
		typ, b, err := conn.Read(ctx)
		if err != nil {
			t.Fatalf("exec cat: %v (output %q)", err, piped.String())
		}
		if typ == websocket.MessageBinary {
			piped.Write(b)
			continue
		}
		if !strings.Contains(string(b), `"exit"`) || !strings.Contains(string(b), `"code":0`) {
			t.Errorf("exec cat ended with %s", b)
		}
		break
	}
	conn.CloseNow()
	if piped.String() != "piped input" {
		t.Errorf("exec cat output %q", piped.String())
	}

	if ev := s.action("web", "stop", nil); ev["status"] != "success" {
		t.Fatalf("stop: %v", ev)
	}
	s.waitComponent("web", 30*time.Second, func(c componentState) bool { return c.Status == "closed" && len(c.Instances) == 0 })
	if ev := s.action("web", "start", nil); ev["status"] != "success" {
		t.Fatalf("start: %v", ev)
	}
	c = s.waitComponent("web", 30*time.Second, func(c componentState) bool { return c.Status == "running" && len(c.Instances) == 3 })

	// A restart replaces every instance, one at a time.
	old := map[string]bool{}
	for _, in := range c.Instances {
		old[in.ID] = true
	}
	if ev := s.action("web", "restart", nil); ev["status"] != "success" {
		t.Fatalf("restart: %v", ev)
	}
	c = s.waitComponent("web", 60*time.Second, func(c componentState) bool {
		if c.Status != "running" || len(c.Instances) != 3 {
			return false
		}
		for _, in := range c.Instances {
			if old[in.ID] {
				return false
			}
		}
		return true
	})

	// A crashing component says why.
	s.must(201, "POST", comps, map[string]any{"alias": "crash", "image": image, "cmd": []string{"sh", "-c", "echo about to fail; exit 7"}})
	ev = s.action("crash", "deploy", nil)
	cr := s.waitComponent("crash", 30*time.Second, func(c componentState) bool {
		return c.Status == "abnormal" && len(c.Instances) == 1 && c.Instances[0].Reason == "CrashLoopBackOff"
	})
	if in := cr.Instances[0]; !strings.Contains(in.Message, "exited with code 7") || !strings.Contains(in.Message, "about to fail") || in.Advice == "" {
		t.Errorf("crash instance: %+v", in)
	}

	// After the restart, the crashed container's output is the previous log.
	deadline := time.Now().Add(40 * time.Second)
	for {
		r := s.do(s.token, "GET", comps+"/crash/logs?previous=1&instance="+cr.Instances[0].ID, nil)
		if r.Status == 200 && strings.Contains(string(r.Body), "about to fail") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("previous log of the crashed instance: %d %s", r.Status, r.Body)
		}
		time.Sleep(500 * time.Millisecond)
	}

	// SIGKILL berth: the instances keep running and are adopted.
	before := map[string]bool{}
	for _, in := range c.Instances {
		before[in.ID] = true
	}
	s.kill()
	s.start()
	c = s.waitComponent("web", 20*time.Second, func(c componentState) bool { return c.Status == "running" && len(c.Instances) == 3 })
	for _, in := range c.Instances {
		if !before[in.ID] || in.Restarts != 0 {
			t.Errorf("instance %s was not adopted (before: %v)", in.ID, before)
		}
	}

	s.deleteAndWait(comps + "/crash")
	s.deleteAndWait(comps + "/web")
}

// A private registry refuses the pull until the team gives berth its
// credentials; the event and the instance say which.
func TestPrivateRegistry(t *testing.T) {
	requireRuntime(t)
	image := pushBusyboxAuth(t, "robot", "s3cret")
	var s *server
	flags := runtimeFlags(t, func() string { return s.data })
	s = startServer(t, flags...)
	setupShop(s)
	s.must(201, "POST", comps, map[string]any{"alias": "app", "image": image, "cmd": []string{"sleep", "300"}})
	ev := s.action("app", "deploy", nil)
	if ev["status"] != "failure" || !strings.Contains(fmt.Sprint(ev["message"]), "denied") {
		t.Fatalf("deploy without credentials: %v", ev)
	}
	c := s.waitComponent("app", 20*time.Second, func(c componentState) bool { return c.Status == "abnormal" && len(c.Instances) == 1 })
	if in := c.Instances[0]; in.Reason != "ErrImagePull" && in.Reason != "ImagePullBackOff" || in.Advice == "" {
		t.Fatalf("instance: %+v", in)
	}
	host := strings.SplitN(image, "/", 2)[0]
	s.must(201, "POST", "/api/v1/teams/shop/registries", map[string]any{"host": host, "username": "robot", "password": "s3cret"})
	var reg map[string]any
	s.must(200, "GET", "/api/v1/teams/shop/registries/"+host, nil).json(t, &reg)
	if _, leaked := reg["password"]; leaked {
		t.Fatal("the API returned the registry password")
	}
	if ev := s.action("app", "deploy", nil); ev["status"] != "success" {
		t.Fatalf("deploy with credentials: %v", ev)
	}
	s.waitComponent("app", 20*time.Second, func(c componentState) bool { return c.Status == "running" })
	s.deleteAndWait(comps + "/app")
}

// removeCgroups ends what still runs in a test namespace's cgroups (a
// container whose shim was killed keeps running, reparented to init) and
// removes the cgroups, children first.
func removeCgroups(t *testing.T, ns string) {
	procs, _ := filepath.Glob("/sys/fs/cgroup/*/" + ns + "/*/cgroup.procs")
	for _, f := range procs {
		b, _ := os.ReadFile(f)
		for _, pid := range strings.Fields(string(b)) {
			var p int
			fmt.Sscan(pid, &p)
			if p > 1 {
				_ = syscall.Kill(p, syscall.SIGKILL)
			}
		}
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		children, _ := filepath.Glob("/sys/fs/cgroup/*/" + ns + "/*")
		busy := false
		for _, d := range children {
			if fi, err := os.Stat(d); err == nil && fi.IsDir() {
				if err := os.Remove(d); err != nil {
					busy = true
				}
			}
		}
		if !busy || time.Now().After(deadline) {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	cg, _ := filepath.Glob("/sys/fs/cgroup/*/" + ns)
	for _, d := range cg {
		if err := os.Remove(d); err != nil && !os.IsNotExist(err) {
			t.Errorf("a cgroup of the test stays: %v", err)
		}
	}
}

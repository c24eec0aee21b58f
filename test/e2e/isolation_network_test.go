package e2e

import (
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// A hostile team's instance, against the real server and containerd: its
// root is an unprivileged host uid (its volume's files belong to that uid,
// a host root file in the volume stays read-only to it), it reaches its
// own team's service address but neither another team's instance nor
// another team's service address; the start-up line says user namespaces
// are on.
func TestIsolationContainersAndNetworks(t *testing.T) {
	requireRuntime(t)
	image := pushBusybox(t)
	var s *server
	flags := runtimeFlags(t, func() string { return s.data })
	s = startServer(t, flags...)
	if !strings.Contains(s.out.String(), "user namespaces on") {
		t.Fatalf("the containerd phase line does not say user namespaces are on:\n%s", s.out)
	}

	httpd := func(text string) []string {
		return []string{"sh", "-c", "mkdir -p /www && echo " + text + " > /www/index.html && exec httpd -f -p 8080 -h /www"}
	}
	red := isoTeam{s: s, team: "red"}
	blue := isoTeam{s: s, team: "blue"}
	red.create()
	blue.create()
	red.deploy("web", image, httpd("red-page"), true, true)
	red.deploy("client", image, []string{"sleep", "3600"}, false, false)
	blue.deploy("web", image, httpd("blue-page"), true, false)

	redWeb, blueWeb := red.component("web"), blue.component("web")
	client := red.component("client").Instances[0].ID

	// The mapping: container root is a high host uid, not 0.
	out := red.exec("client", client, "cat", "/proc/self/uid_map")
	f := strings.Fields(out.Output)
	if out.ExitCode != 0 || len(f) < 3 || f[0] != "0" || f[1] == "0" || f[2] != "65536" {
		t.Fatalf("uid_map of red's instance: %+v", out)
	}
	hostRoot := f[1]

	// Own team: reachable, through the instance address and the inner
	// service address.
	for what, addr := range map[string]string{
		"red's web instance":      hostPort(redWeb.Instances[0].Address, 8080),
		"red's web inner address": redWeb.Ports[0].InnerAddress,
	} {
		if got := red.fetch(client, addr); !strings.Contains(got, "red-page") {
			t.Errorf("%s %s from red's instance: %q", what, addr, got)
		}
	}
	// Other team: neither.
	for what, addr := range map[string]string{
		"blue's web instance":      hostPort(blueWeb.Instances[0].Address, 8080),
		"blue's web inner address": blueWeb.Ports[0].InnerAddress,
	} {
		if got := red.fetch(client, addr); strings.Contains(got, "blue-page") {
			t.Errorf("red's instance reached %s %s: %q", what, addr, got)
		}
	}

	// Volumes: container root writes its own volume as the mapped uid...
	web := redWeb.Instances[0].ID
	if out := red.exec("web", web, "sh", "-c", "echo mine > /data/mine"); out.ExitCode != 0 {
		t.Fatalf("write own volume: %+v", out)
	}
	mine := findFile(t, filepath.Join(s.data, "volumes"), "mine")
	if uid := ownerOf(t, mine); uid == 0 || fmt.Sprint(uid) != hostRoot {
		t.Errorf("%s is owned by host uid %d, want the mapped root %s", mine, uid, hostRoot)
	}
	// ...and cannot write a host-owned file put in the volume.
	hostFile := filepath.Join(filepath.Dir(mine), "host-owned")
	if err := os.WriteFile(hostFile, []byte("host\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if out := red.exec("web", web, "sh", "-c", "echo evil >> /data/host-owned"); out.ExitCode == 0 {
		t.Errorf("container root wrote a host-owned file: %+v", out)
	}
	if b, _ := os.ReadFile(hostFile); string(b) != "host\n" {
		t.Errorf("host-owned file changed: %q", b)
	}
}

// isoTeam is one team with one app "app", driven through the API.
type isoTeam struct {
	s    *server
	team string
}

func (tm isoTeam) comps() string { return "/api/v1/teams/" + tm.team + "/apps/app/components" }

func (tm isoTeam) create() {
	tm.s.must(201, "POST", "/api/v1/teams", map[string]any{"name": tm.team})
	tm.s.must(201, "POST", "/api/v1/teams/"+tm.team+"/apps", map[string]any{"name": "app"})
}

// deploy creates and deploys a component (serving port 8080 when serves)
// and waits until it runs.
func (tm isoTeam) deploy(alias, image string, cmd []string, serves, volume bool) {
	tm.s.t.Helper()
	body := map[string]any{"alias": alias, "image": image, "instances": 1, "memory": "64Mi", "cmd": cmd}
	if serves {
		body["ports"] = []map[string]any{{"port": 8080, "protocol": "http", "inner": true}}
	}
	if volume {
		body["volumes"] = []map[string]any{{"path": "/data", "size": "64Mi"}}
	}
	tm.s.must(201, "POST", tm.comps(), body)
	var acc struct {
		EventID string `json:"event_id"`
	}
	tm.s.must(202, "POST", tm.comps()+"/"+alias+"/deploy", nil).json(tm.s.t, &acc)
	if ev := tm.s.waitEvent(acc.EventID); ev["status"] != "success" {
		tm.s.t.Fatalf("deploy %s/%s: %v", tm.team, alias, ev)
	}
	deadline := time.Now().Add(60 * time.Second)
	for {
		c := tm.component(alias)
		if c.Status == "running" && len(c.Instances) == 1 && c.Instances[0].Address != "" {
			return
		}
		if time.Now().After(deadline) {
			tm.s.t.Fatalf("%s/%s not running: %+v", tm.team, alias, c)
		}
		time.Sleep(250 * time.Millisecond)
	}
}

func (tm isoTeam) component(alias string) componentState {
	var c componentState
	tm.s.must(200, "GET", tm.comps()+"/"+alias, nil).json(tm.s.t, &c)
	return c
}

type execResult struct {
	ExitCode int `json:"exit_code"`
	Output   string
}

func (tm isoTeam) exec(alias, instance string, cmd ...string) execResult {
	var out execResult
	tm.s.must(200, "POST", tm.comps()+"/"+alias+"/instances/"+instance+"/exec", map[string]any{"cmd": cmd}).json(tm.s.t, &out)
	return out
}

// fetch asks addr for / from the client instance with a 3-second bound
// and returns what came back.
func (tm isoTeam) fetch(instance, addr string) string {
	host, port, _ := strings.Cut(addr, ":")
	script := fmt.Sprintf(`printf 'GET / HTTP/1.0\r\n\r\n' | nc -w 3 %s %s`, host, port)
	return tm.exec("client", instance, "sh", "-c", script).Output
}

func hostPort(addr string, port int) string {
	if strings.Contains(addr, ":") {
		return addr
	}
	return fmt.Sprintf("%s:%d", addr, port)
}

func findFile(t *testing.T, root, name string) string {
	t.Helper()
	found := ""
	_ = filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err == nil && d.Name() == name {
			found = p
		}
		return nil
	})
	if found == "" {
		t.Fatalf("no file %s under %s", name, root)
	}
	return found
}

func ownerOf(t *testing.T, p string) uint32 {
	t.Helper()
	fi, err := os.Stat(p)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Sys().(*syscall.Stat_t).Uid
}

package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/berth-platform/berth/client"
)

const (
	goodToken = "brt_good"
	eventOK   = "ev-aaaaaaaaaaaaaaaa"
	eventBad  = "ev-bbbbbbbbbbbbbbbb"
	eventSlow = "ev-ssssssssssssssss"
)

// fakeAPI is an in-memory stand-in for the parts of the REST API the CLI
// tests touch. It records requests so tests can check what was sent.
type fakeAPI struct {
	t   *testing.T
	srv *httptest.Server
	mux *http.ServeMux

	mu       sync.Mutex
	requests []recorded
	// logs are the lines of each event; the event ends after its last line.
	logs   map[string][]string
	status map[string]string
	// pause is how long the follow stream of an event stays silent after
	// its first line, to let the spinner show.
	pause map[string]time.Duration
}

type recorded struct {
	method, path string
	body         map[string]any
}

func (f *fakeAPI) find(method, path string) *recorded {
	f.mu.Lock()
	defer f.mu.Unlock()
	for i := range f.requests {
		if f.requests[i].method == method && f.requests[i].path == path {
			return &f.requests[i]
		}
	}
	return nil
}

func newFakeAPI(t *testing.T) *fakeAPI {
	f := &fakeAPI{t: t, mux: http.NewServeMux(),
		logs: map[string][]string{
			eventOK:  {"deploy|Deploying web (image)", "deploy|version 2: image nginx:1.27", "|instances ready"},
			eventBad: {"build|Cloning", "build|error|npm ERR! missing script: start"},
		},
		status: map[string]string{eventOK: "success", eventBad: "failure", eventSlow: "success"},
		pause:  map[string]time.Duration{eventSlow: 1500 * time.Millisecond},
	}
	f.logs[eventSlow] = []string{"build|Pulling", "build|Pulled"}
	f.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var body map[string]any
		if b, _ := io.ReadAll(r.Body); len(b) > 0 {
			if err := json.Unmarshal(b, &body); err != nil {
				t.Errorf("%s %s: body is not JSON: %s", r.Method, r.URL.Path, b)
			}
		}
		f.mu.Lock()
		f.requests = append(f.requests, recorded{r.Method, r.URL.EscapedPath(), body})
		f.mu.Unlock()
		if r.Header.Get("Authorization") != "Bearer "+goodToken {
			apiError(w, 401, "unauthorized", "invalid token: it is unknown or was revoked")
			return
		}
		f.mux.ServeHTTP(w, r)
	}))
	t.Cleanup(f.srv.Close)

	reply := func(pattern string, status int, v any) {
		f.mux.HandleFunc(pattern, func(w http.ResponseWriter, r *http.Request) { writeJSONTo(w, status, v) })
	}
	reply("GET /api/v1/whoami", 200, map[string]any{"id": "tok-1", "name": "ci", "team": "acme", "role": "developer"})
	reply("GET /api/v1/teams/acme", 200, map[string]any{"name": "acme"})
	reply("GET /api/v1/teams/acme/apps/shop", 200, map[string]any{"name": "shop", "team": "acme"})
	reply("GET /api/v1/teams/acme/apps", 200, map[string]any{"items": []any{
		map[string]any{"name": "shop"}, map[string]any{"name": "blog"}}})
	reply("GET /api/v1/teams/acme/apps/shop/components", 200, map[string]any{"items": []any{webComponent}})
	reply("GET /api/v1/teams/acme/apps/blog/components", 200, map[string]any{"items": []any{
		map[string]any{"alias": "ghost", "app": "blog", "kind": "image", "image": "ghost:5", "status": "closed", "replicas": 1, "instances": []any{}}}})
	reply("GET /api/v1/teams/acme/apps/shop/components/web", 200, webComponent)
	reply("POST /api/v1/teams/acme/apps/shop/components", 201, map[string]any{"alias": "web"})
	reply("POST /api/v1/teams/acme/apps/shop/components/web/envs", 201, map[string]any{})
	reply("POST /api/v1/teams/acme/apps/shop/components/web/ports", 201, map[string]any{"port": 8080, "protocol": "tcp", "inner": false, "outer": true})
	reply("POST /api/v1/teams/acme/apps/shop/components/web/deploy", 202, map[string]any{"event_id": eventOK})
	reply("POST /api/v1/teams/acme/apps/shop/components/web/restart", 202, map[string]any{"event_id": eventBad})
	reply("GET /api/v1/events", 200, map[string]any{"items": []any{
		map[string]any{"id": eventOK, "type": "deploy", "target": "component:acme/shop/web", "status": "success"},
		map[string]any{"id": eventBad, "type": "restart", "target": "component:acme/shop/web", "status": "failure", "message": "npm ERR!"}}})
	f.mux.HandleFunc("GET /api/v1/events/{id}/log", f.serveLog)
	f.mux.HandleFunc("GET /api/v1/teams/acme/apps/{app}/components/{c}", func(w http.ResponseWriter, r *http.Request) {
		apiError(w, 404, "not_found", fmt.Sprintf("component %q not found in app %q", r.PathValue("c"), r.PathValue("app")))
	})
	return f
}

var webComponent = map[string]any{
	"id": "c1", "team": "acme", "app": "shop", "alias": "web", "kind": "image", "image": "nginx:1.27",
	"replicas": 2, "status": "some_abnormal", "status_label": "部分实例异常", "deploy_version": 2,
	"memory": "256Mi", "cpu": "500m",
	"ports": []any{map[string]any{"port": 80, "protocol": "http", "alias": "WEB", "inner": true, "outer": true}},
	"envs":  []any{map[string]any{"name": "PASSWORD", "value": "******", "scope": "inner", "secret": true}},
	"instances": []any{
		map[string]any{"id": "web-1", "status": "running", "version": 2},
		map[string]any{"id": "web-2", "status": "abnormal", "reason": "CrashLoopBackOff", "message": "exited with code 1",
			"advice": "read the instance log; the command may be wrong", "restarts": 4},
	},
}

func apiError(w http.ResponseWriter, status int, code, message string) {
	writeJSONTo(w, status, map[string]any{"error": map[string]string{"code": code, "message": message}})
}

func writeJSONTo(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}

// serveLog answers the history (JSON) and the follow stream (SSE) of the
// fake events. Lines are "stage|text" or "stage|level|text".
func (f *fakeAPI) serveLog(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	raw, ok := f.logs[id]
	if !ok {
		apiError(w, 404, "not_found", "event "+id+" not found")
		return
	}
	var lines []map[string]any
	for i, l := range raw {
		parts := strings.Split(l, "|")
		line := map[string]any{"seq": i + 1, "stage": parts[0], "text": parts[len(parts)-1]}
		if len(parts) == 3 {
			line["level"] = parts[1]
		}
		lines = append(lines, line)
	}
	event := map[string]any{"id": id, "type": "deploy", "target": "component:acme/shop/web", "status": f.status[id]}
	if f.status[id] == "failure" {
		event["message"] = "build failed: npm ERR! missing script: start"
	}
	if r.URL.Query().Get("follow") == "" && f.pause[id] > 0 {
		event["status"] = "running"
	}
	after := 0
	fmt.Sscan(r.URL.Query().Get("after"), &after)
	if r.URL.Query().Get("follow") == "" {
		// Paged history: one page per call, to exercise the client's paging.
		// A slow event has nothing stored yet, so all of it is followed.
		page := []map[string]any{}
		if after < len(lines) && f.pause[id] == 0 {
			page = lines[after : after+1]
		}
		writeJSONTo(w, 200, map[string]any{"event": event, "lines": page})
		return
	}
	w.Header().Set("Content-Type", "text/event-stream")
	for _, l := range lines[min(after, len(lines)):] {
		b, _ := json.Marshal(l)
		fmt.Fprintf(w, "id: %v\nevent: line\ndata: %s\n\n", l["seq"], b)
		w.(http.Flusher).Flush()
		if l["seq"] == 1 {
			time.Sleep(f.pause[id])
		}
	}
	b, _ := json.Marshal(event)
	fmt.Fprintf(w, ": ping\n\nevent: end\ndata: %s\n\n", b)
}

// testCLI runs commands in-process with its own environment and config dir.
type testCLI struct {
	t    *testing.T
	vars map[string]string
	tty  bool
	term terminal
}

func newTestCLI(t *testing.T, vars map[string]string) *testCLI {
	if vars == nil {
		vars = map[string]string{}
	}
	if _, ok := vars["XDG_CONFIG_HOME"]; !ok {
		vars["XDG_CONFIG_HOME"] = t.TempDir()
	}
	return &testCLI{t: t, vars: vars}
}

// loggedIn is a CLI whose environment points at api, in team acme, app shop.
func loggedIn(t *testing.T, api *fakeAPI) *testCLI {
	return newTestCLI(t, map[string]string{
		"BERTH_URL": api.srv.URL, "BERTH_TOKEN": goodToken, "BERTH_TEAM": "acme", "BERTH_APP": "shop",
	})
}

func (tc *testCLI) run(args ...string) (stdout, stderr string, code int) {
	return tc.runWithInput("", args...)
}

func (tc *testCLI) runWithInput(stdin string, args ...string) (stdout, stderr string, code int) {
	tc.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	return tc.runContext(ctx, strings.NewReader(stdin), args...)
}

// runContext runs a command until it ends or ctx does, as Ctrl-C would.
func (tc *testCLI) runContext(ctx context.Context, stdin io.Reader, args ...string) (stdout, stderr string, code int) {
	c := &cli{stdin: stdin, getenv: func(k string) string { return tc.vars[k] }, tty: tc.tty, term: tc.term}
	var out, errOut bytes.Buffer
	code = execute(ctx, c, args, &out, &errOut)
	return out.String(), errOut.String(), code
}

func (tc *testCLI) mustRun(args ...string) string {
	tc.t.Helper()
	out, errOut, code := tc.run(args...)
	if code != 0 {
		tc.t.Fatalf("berth %s: exit %d\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), code, out, errOut)
	}
	return out
}

func contains(t *testing.T, what, got string, wants ...string) {
	t.Helper()
	for _, w := range wants {
		if !strings.Contains(got, w) {
			t.Errorf("%s does not contain %q:\n%s", what, w, got)
		}
	}
}

func TestLoginSavesAndReportsIdentity(t *testing.T) {
	api := newFakeAPI(t)
	tc := newTestCLI(t, nil)
	out := tc.mustRun("login", api.srv.URL+"/", "--token", goodToken)
	contains(t, "login output", out, "Logged in to "+api.srv.URL, "ci, developer of team acme")

	p := filepath.Join(tc.vars["XDG_CONFIG_HOME"], "berth", "config.json")
	st, err := os.Stat(p)
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o600 {
		t.Fatalf("config mode %v, want 0600", st.Mode().Perm())
	}
	var cfg config
	b, _ := os.ReadFile(p)
	json.Unmarshal(b, &cfg)
	if cfg != (config{URL: api.srv.URL, Token: goodToken, Team: "acme"}) {
		t.Fatalf("saved %+v", cfg)
	}

	// The saved login is used by later commands, with the token's team.
	out = tc.mustRun("whoami")
	contains(t, "whoami", out, "ci, developer of team acme on "+api.srv.URL)
	tc.mustRun("use", "acme/shop")
	out = tc.mustRun("ps")
	contains(t, "ps after login", out, "web")
	if api.find("GET", "/api/v1/teams/acme/apps/shop/components") == nil {
		t.Fatal("ps did not use the saved team and app")
	}
}

func TestLoginReadsTokenFromStdin(t *testing.T) {
	api := newFakeAPI(t)
	tc := newTestCLI(t, nil)
	out, errOut, code := tc.runWithInput(goodToken+"\n", "login", api.srv.URL, "--token", "-")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	contains(t, "login output", out, "Logged in")
}

func TestLoginRefusesABadTokenAndSavesNothing(t *testing.T) {
	api := newFakeAPI(t)
	tc := newTestCLI(t, nil)
	_, errOut, code := tc.run("login", api.srv.URL, "--token", "brt_wrong")
	if code != 1 {
		t.Fatalf("exit %d", code)
	}
	contains(t, "stderr", errOut, "Error: "+api.srv.URL+" refused the token: invalid token")
	if strings.Contains(errOut, "Hint") {
		t.Errorf("login repeats the login hint:\n%s", errOut)
	}
	if _, err := os.Stat(filepath.Join(tc.vars["XDG_CONFIG_HOME"], "berth", "config.json")); err == nil {
		t.Fatal("a refused login was saved")
	}

	_, errOut, _ = tc.run("login", "localhost:7070", "--token", goodToken)
	contains(t, "stderr", errOut, `is not a server URL`)
}

func TestConfigFallsBackToHome(t *testing.T) {
	api := newFakeAPI(t)
	home := t.TempDir()
	tc := newTestCLI(t, map[string]string{"XDG_CONFIG_HOME": "", "HOME": home})
	tc.mustRun("login", api.srv.URL, "--token", goodToken)
	if _, err := os.Stat(filepath.Join(home, ".config", "berth", "config.json")); err != nil {
		t.Fatal(err)
	}
}

func TestUnauthorizedPrintsLoginHint(t *testing.T) {
	api := newFakeAPI(t)
	tc := newTestCLI(t, map[string]string{"BERTH_URL": api.srv.URL, "BERTH_TOKEN": "brt_revoked", "BERTH_TEAM": "acme"})
	out, errOut, code := tc.run("app", "list")
	if code != 1 || out != "" {
		t.Fatalf("exit %d, stdout %q", code, out)
	}
	want := "Error: invalid token: it is unknown or was revoked\nHint: the token was refused; BERTH_TOKEN is set, check its value or unset it.\n"
	if errOut != want {
		t.Fatalf("stderr:\n%s\nwant:\n%s", errOut, want)
	}

	// With a saved login, the fix is to log in again.
	tc = newTestCLI(t, nil)
	tc.mustRun("login", api.srv.URL, "--token", goodToken)
	cfgPath := filepath.Join(tc.vars["XDG_CONFIG_HOME"], "berth", "config.json")
	b, _ := os.ReadFile(cfgPath)
	os.WriteFile(cfgPath, bytes.Replace(b, []byte(goodToken), []byte("brt_revoked"), 1), 0o600)
	_, errOut, _ = tc.run("app", "list")
	contains(t, "stderr", errOut, "Hint: the token was refused; run \"berth login URL --token TOKEN\" with a valid token.")
}

func TestNotLoggedIn(t *testing.T) {
	tc := newTestCLI(t, nil)
	_, errOut, code := tc.run("ps")
	if code != 1 || errOut != "Error: "+errNotLoggedIn.Error()+"\n" {
		t.Fatalf("exit %d, stderr %q", code, errOut)
	}
}

func TestTeamAndAppResolution(t *testing.T) {
	api := newFakeAPI(t)
	tc := newTestCLI(t, map[string]string{"BERTH_URL": api.srv.URL, "BERTH_TOKEN": goodToken})
	tc.mustRun("use", "acme/shop")

	// The flag beats the environment, which beats "berth use".
	tc.vars["BERTH_APP"] = "blog"
	tc.mustRun("ps", "--app", "shop")
	tc.mustRun("ps")
	api.mu.Lock()
	var paths []string
	for _, r := range api.requests {
		if strings.HasSuffix(r.path, "/components") {
			paths = append(paths, r.path)
		}
	}
	api.mu.Unlock()
	want := []string{"/api/v1/teams/acme/apps/shop/components", "/api/v1/teams/acme/apps/blog/components"}
	if fmt.Sprint(paths) != fmt.Sprint(want) {
		t.Fatalf("listed %v, want %v", paths, want)
	}

	out := tc.mustRun("use")
	contains(t, "use", out, "Team: acme\n", "App:  blog ($BERTH_APP)")

	_, errOut, _ := tc.run("use", "nope/shop")
	contains(t, "use of a missing team", errOut, "Error: ")
}

func TestComponentCreateSendsTheSpec(t *testing.T) {
	api := newFakeAPI(t)
	tc := loggedIn(t, api)
	out := tc.mustRun("component", "create", "web", "--image", "nginx:1.27", "--instances", "2",
		"--memory", "256Mi", "--cpu", "500m", "--port", "80/http:inner,outer", "--port", "9000/tcp",
		"--env", "MODE=prod", "--env", "EMPTY=", "--secret-env", "PASSWORD=s3=cret",
		"--", "nginx", "-g", "daemon off;")
	contains(t, "output", out, `Created component web in app shop. Deploy it with "berth deploy web".`)

	req := api.find("POST", "/api/v1/teams/acme/apps/shop/components")
	if req == nil {
		t.Fatal("no create request")
	}
	got, _ := json.Marshal(req.body)
	want := `{"alias":"web","cmd":["nginx","-g","daemon off;"],"cpu":"500m",` +
		`"envs":[{"name":"MODE","secret":false,"value":"prod"},{"name":"EMPTY","secret":false,"value":""},{"name":"PASSWORD","secret":true,"value":"s3=cret"}],` +
		`"image":"nginx:1.27","instances":2,"kind":"image","memory":"256Mi",` +
		`"ports":[{"inner":true,"outer":true,"port":80,"protocol":"http"},{"inner":true,"outer":false,"port":9000,"protocol":"tcp"}]}`
	if string(got) != want {
		t.Fatalf("sent\n%s\nwant\n%s", got, want)
	}

	_, errOut, code := tc.run("component", "create", "web", "--image", "x", "--port", "80/http:public")
	if code != 1 || !strings.Contains(errOut, "exposure must be inner, outer") {
		t.Fatalf("bad port accepted: %d %s", code, errOut)
	}
}

func TestComponentList(t *testing.T) {
	api := newFakeAPI(t)
	tc := loggedIn(t, api)
	out := tc.mustRun("ps")
	want := "ALIAS  KIND   STATUS         INSTANCES  IMAGE\n" +
		"web    image  some_abnormal  1/2        nginx:1.27\n"
	if out != want {
		t.Fatalf("got\n%s\nwant\n%s", out, want)
	}
	if out2 := tc.mustRun("component", "list"); out2 != out {
		t.Fatalf("ps and component list differ:\n%s\n%s", out, out2)
	}

	var items []map[string]any
	if err := json.Unmarshal([]byte(tc.mustRun("ps", "-o", "json")), &items); err != nil || len(items) != 1 || items[0]["alias"] != "web" {
		t.Fatalf("-o json: %v %v", items, err)
	}

	// Without an app, every app of the team is listed.
	delete(tc.vars, "BERTH_APP")
	out = tc.mustRun("ps")
	contains(t, "ps of the team", out, "APP   ALIAS", "shop  web", "blog  ghost")

	_, errOut, _ := tc.run("ps", "-o", "yaml")
	contains(t, "bad format", errOut, `unknown output format "yaml"`)
}

func TestComponentGetShowsInstanceAdvice(t *testing.T) {
	api := newFakeAPI(t)
	tc := loggedIn(t, api)
	out := tc.mustRun("component", "get", "web")
	contains(t, "get", out,
		"Status:         some_abnormal (部分实例异常)",
		"Instances:      1 ready of 2",
		"80/http  inner,outer",
		"PASSWORD=******",
		"web-2  abnormal  4 restarts",
		"CrashLoopBackOff: exited with code 1",
		"advice: read the instance log; the command may be wrong")
}

func TestComponentFoundWithoutApp(t *testing.T) {
	api := newFakeAPI(t)
	tc := loggedIn(t, api)
	delete(tc.vars, "BERTH_APP")
	tc.mustRun("env", "set", "web", "A=1", "--scope", "outer", "--secret")
	req := api.find("POST", "/api/v1/teams/acme/apps/shop/components/web/envs")
	if req == nil {
		t.Fatal("env set did not find the app of web")
	}
	if req.body["scope"] != "outer" || req.body["secret"] != true || req.body["value"] != "1" {
		t.Fatalf("env body %v", req.body)
	}
	_, errOut, _ := tc.run("env", "list", "nope")
	contains(t, "missing component", errOut, `Error: component "nope" not found in any app of team "acme"`)
}

func TestPortAddFlags(t *testing.T) {
	api := newFakeAPI(t)
	tc := loggedIn(t, api)
	out := tc.mustRun("port", "add", "web", "8080/tcp", "--outer")
	contains(t, "port add", out, "Added port 8080/tcp (outer) to web.")
	req := api.find("POST", "/api/v1/teams/acme/apps/shop/components/web/ports")
	if req.body["inner"] != false || req.body["outer"] != true || req.body["port"] != float64(8080) {
		t.Fatalf("port body %v", req.body)
	}
}

func TestDeployFollowsTheLog(t *testing.T) {
	api := newFakeAPI(t)
	tc := loggedIn(t, api)
	out := tc.mustRun("deploy", "web")
	want := "Event " + eventOK + "\n" +
		"==> Deploy\nDeploying web (image)\nversion 2: image nginx:1.27\ninstances ready\n" +
		"==> Deploy succeeded\n"
	if out != want {
		t.Fatalf("got\n%s\nwant\n%s", out, want)
	}
}

func TestFailedOperationExitsNonZero(t *testing.T) {
	api := newFakeAPI(t)
	tc := loggedIn(t, api)
	out, errOut, code := tc.run("restart", "web")
	if code != 1 {
		t.Fatalf("exit %d", code)
	}
	contains(t, "stdout", out, "Event "+eventBad, "==> Build\nCloning\nnpm ERR! missing script: start\n")
	contains(t, "stderr", errOut, "Error: deploy component:acme/shop/web failed: build failed: npm ERR! missing script: start")
}

func TestDetachPrintsOnlyTheEventID(t *testing.T) {
	api := newFakeAPI(t)
	tc := loggedIn(t, api)
	out, errOut, code := tc.run("deploy", "web", "-d", "--image", "nginx:1.27")
	if code != 0 || out != eventOK+"\n" {
		t.Fatalf("exit %d, stdout %q", code, out)
	}
	contains(t, "stderr", errOut, "berth logs -f "+eventOK)
	if req := api.find("POST", "/api/v1/teams/acme/apps/shop/components/web/deploy"); req.body["image"] != "nginx:1.27" {
		t.Fatalf("deploy body %v", req.body)
	}
	if api.find("GET", "/api/v1/events/"+eventOK+"/log") != nil {
		t.Fatal("--detach followed the log")
	}
}

func TestLogs(t *testing.T) {
	api := newFakeAPI(t)
	tc := loggedIn(t, api)
	out := tc.mustRun("logs", eventOK)
	if out != "==> Deploy\nDeploying web (image)\nversion 2: image nginx:1.27\ninstances ready\n" {
		t.Fatalf("history:\n%s", out)
	}
	out, _, code := tc.run("logs", "-f", eventBad)
	if code != 1 || strings.Count(out, "Cloning") != 1 {
		t.Fatalf("logs -f of a failed event: exit %d\n%s", code, out)
	}

	// Other arguments are components: see TestComponentLogs.
	_, errOut, _ := tc.run("logs", "ev-cccccccccccccccc")
	contains(t, "unknown event", errOut, "Error: event ev-cccccccccccccccc not found")
}

func TestEventsTable(t *testing.T) {
	api := newFakeAPI(t)
	tc := loggedIn(t, api)
	out := tc.mustRun("events", "--status", "failure")
	contains(t, "events", out, "ID", "STATUS", eventOK, "success", eventBad, "failure", "npm ERR!")
	if strings.Contains(out, "\x1b[") {
		t.Fatal("colours written to a pipe")
	}
	api.mu.Lock()
	defer api.mu.Unlock()
	for _, r := range api.requests {
		if r.path == "/api/v1/events" {
			return
		}
	}
	t.Fatal("events did not call /api/v1/events")
}

func TestColoursOnlyOnATerminal(t *testing.T) {
	api := newFakeAPI(t)
	tc := loggedIn(t, api)
	tc.tty = true
	out := tc.mustRun("ps")
	if !strings.Contains(out, colorYellow+"some_abnormal"+colorReset) {
		t.Fatalf("no colour on a terminal:\n%q", out)
	}
	// Columns stay aligned: padding is computed without the escapes.
	if !strings.Contains(out, colorYellow+"some_abnormal"+colorReset+"  1/2") {
		t.Fatalf("misaligned:\n%q", out)
	}
	tc.vars["NO_COLOR"] = "1"
	if out := tc.mustRun("ps"); strings.Contains(out, "\x1b[") {
		t.Fatalf("colour despite NO_COLOR:\n%q", out)
	}
}

func TestSpinnerOnlyOnATerminal(t *testing.T) {
	api := newFakeAPI(t)
	for _, tty := range []bool{false, true} {
		tc := loggedIn(t, api)
		tc.tty = tty
		tc.vars["NO_COLOR"] = "1"
		out := tc.mustRun("logs", "-f", eventSlow)
		spun := strings.Contains(out, "\r⠋ waiting for output")
		if spun != tty {
			t.Fatalf("tty %v: spinner shown %v:\n%q", tty, spun, out)
		}
		// The spinner's line is erased before the next log line.
		if clean := strings.ReplaceAll(out, "\x1b[K", ""); tty && !strings.Contains(clean, "\rPulled\n") {
			t.Fatalf("spinner not erased before a line:\n%q", out)
		}
		if !tty && out != "==> Build\nPulling\nPulled\n==> Deploy succeeded\n" {
			t.Fatalf("plain output:\n%q", out)
		}
	}
}

func TestParsePort(t *testing.T) {
	cases := []struct {
		in   string
		want string
	}{
		{"80", "{80   true false}"},
		{"80/http", "{80 http  true false}"},
		{"5432/tcp:outer", "{5432 tcp  false true}"},
		{"443/grpc:inner,outer", "{443 grpc  true true}"},
		{"0", "error"},
		{"http", "error"},
		{"80:public", "error"},
	}
	for _, tc := range cases {
		p, err := parsePort(tc.in)
		got := fmt.Sprintf("{%d %s %s %v %v}", p.Port, p.Protocol, p.Alias, p.Inner, p.Outer)
		if err != nil {
			got = "error"
		}
		if got != tc.want {
			t.Errorf("parsePort(%q) = %s, want %s", tc.in, got, tc.want)
		}
	}
}

func TestTableAlignsWideCharacters(t *testing.T) {
	c := &cli{getenv: func(string) string { return "" }}
	var out bytes.Buffer
	root := newRootCmd(c)
	root.SetOut(&out)
	tb := newTable("STATUS", "NEXT")
	tb.row("运行中", "x")
	tb.row("running", "y")
	tb.write(c)
	want := "STATUS   NEXT\n运行中   x\nrunning  y\n"
	if out.String() != want {
		t.Fatalf("got\n%s\nwant\n%s", out.String(), want)
	}
}

func TestRestartPendingIsShown(t *testing.T) {
	api := newFakeAPI(t)
	api.mux.HandleFunc("GET /api/v1/teams/acme/apps/shop/components/api", func(w http.ResponseWriter, r *http.Request) {
		writeJSONTo(w, 200, map[string]any{"alias": "api", "app": "shop", "kind": "image", "status": "running", "replicas": 1,
			"instances": []any{}, "restart_pending": "db's connection info changed (DB_HOST)"})
	})
	api.mux.HandleFunc("GET /api/v1/teams/acme/apps/shop/components/api/envs", func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Query().Get("effective") != "1" {
			t.Errorf("envs listed without effective=1: %s", r.URL.RawQuery)
		}
		writeJSONTo(w, 200, map[string]any{"items": []any{
			map[string]any{"name": "DB_HOST", "value": "10.214.0.4", "origin": "dependency db (port 5432)", "secret": false},
			map[string]any{"name": "DB_PASSWORD", "value": "******", "origin": "dependency db (env of scope both)", "secret": true}},
			"restart_pending": "db's connection info changed (DB_HOST)"})
	})
	tc := loggedIn(t, api)
	contains(t, "get", tc.mustRun("component", "get", "api"),
		"Warning: restart pending: db's connection info changed (DB_HOST); \"berth restart api\" applies it.")
	out := tc.mustRun("env", "list", "api", "--effective")
	contains(t, "env list --effective", out,
		"NAME         VALUE       ORIGIN\n",
		"DB_HOST      10.214.0.4  dependency db (port 5432)\n",
		"DB_PASSWORD  ******      dependency db (env of scope both)\n",
		"Warning: restart pending")
	var list map[string]any
	if err := json.Unmarshal([]byte(tc.mustRun("env", "list", "api", "--effective", "-o", "json")), &list); err != nil ||
		list["restart_pending"] == nil || len(list["items"].([]any)) != 2 {
		t.Fatalf("-o json: %v %v", list, err)
	}
	tc.tty = true
	contains(t, "coloured warning", tc.mustRun("component", "get", "api"), colorYellow+"Warning: restart pending")
}

func TestRuleUpdateSendsOnlyTheFlagsGiven(t *testing.T) {
	api := newFakeAPI(t)
	api.mux.HandleFunc("PATCH /api/v1/teams/acme/http-rules/http-1", func(w http.ResponseWriter, r *http.Request) {
		writeJSONTo(w, 200, map[string]any{"id": "http-1", "domain": "shop.example.com", "path": "/", "component": "web", "port": 80,
			"weight": 100, "max_body_size": 1 << 30, "rate_limit": 0.5, "redirect_https": true})
	})
	tc := loggedIn(t, api)
	out := tc.mustRun("rule", "http", "update", "http-1", "--max-body", "1Gi", "--rate-limit", "0.5", "--auto-tls=false", "--rewrite", "")
	contains(t, "update", out, "Updated rule http-1: http://shop.example.com/ -> web:80.", "Options: body<=1Gi rate=0.5/s →https")
	got, _ := json.Marshal(api.find("PATCH", "/api/v1/teams/acme/http-rules/http-1").body)
	if want := `{"auto_tls":false,"max_body_size":1073741824,"rate_limit":0.5,"rewrite_path":""}`; string(got) != want {
		t.Fatalf("sent %s, want %s", got, want)
	}
	_, errOut, code := tc.run("rule", "http", "update", "http-1", "--max-body", "lots")
	if code != 1 || !strings.Contains(errOut, `--max-body must be a size like 512Ki, 10Mi or 1G (got "lots")`) {
		t.Fatalf("bad size: exit %d %s", code, errOut)
	}
}

func TestGatewayErrorColours(t *testing.T) {
	api := newFakeAPI(t)
	api.mux.HandleFunc("GET /api/v1/teams/acme/apps/shop/components/web/gateway-errors", func(w http.ResponseWriter, r *http.Request) {
		now := time.Now().UTC()
		writeJSONTo(w, 200, map[string]any{"items": []any{
			map[string]any{"time": now, "status": 502, "cause": "connection refused", "method": "GET", "host": "shop.example.com",
				"path": "/cart", "upstream": "10.213.0.5:8080", "request_id": "req-1"},
			map[string]any{"time": now, "status": 413, "cause": "request body too large", "method": "POST", "host": "shop.example.com",
				"path": "/upload", "request_id": "req-2"},
			map[string]any{"time": now, "cause": "no ready instance", "host": "127.0.0.1:30001"}}})
	})
	tc := loggedIn(t, api)
	tc.tty = true
	out := tc.mustRun("gateway", "errors", "web")
	contains(t, "gateway errors", out,
		colorRed+"502"+colorReset, "connection refused", "GET shop.example.com/cart", "req-1", "upstream 10.213.0.5:8080",
		colorYellow+"413"+colorReset, "POST shop.example.com/upload",
		colorRed+"tcp"+colorReset, "127.0.0.1:30001")
}

func TestTopologyDrawing(t *testing.T) {
	node := func(id, status, app string) client.TopologyNode {
		return client.TopologyNode{ID: id, Kind: "image", Status: status, App: app}
	}
	dep := func(from, to string) client.TopologyEdge {
		return client.TopologyEdge{From: from, To: to, Type: client.EdgeDependency}
	}
	topo := &client.Topology{
		Nodes: []client.TopologyNode{node("web", "running", "shop"), node("api", "running", "shop"), node("auth", "waiting", "shop"),
			node("cache", "running", "shop"), node("db", "closed", "data"), node("worker", "abnormal", "shop"),
			node("a", "running", "shop"), node("b", "running", "shop"), {ID: "gateway", Kind: "gateway"}},
		Edges: []client.TopologyEdge{
			{From: "gateway", To: "web", Type: client.EdgeGateway, Port: 8080, Domains: []string{"web-8080-acme.example.nip.io", "shop.example.com"}},
			{From: "gateway", To: "db", Type: client.EdgeGateway, Port: 5432, TCPAddress: "192.0.2.2:30001"},
			{From: "gateway", To: "cache", Type: client.EdgeGateway, Port: 80, Domains: []string{"cache.example.com"}},
			{From: "gateway", To: "worker", Type: client.EdgeGateway, Domains: []string{"worker.example.com"}},
			dep("web", "api"), dep("api", "auth"), dep("api", "cache"), dep("auth", "db"), dep("auth", "cache"), dep("api", "db"),
			dep("worker", "db"), dep("a", "b"), dep("b", "a"),
		},
	}
	c := &cli{getenv: func(string) string { return "" }}
	var out bytes.Buffer
	root := newRootCmd(c)
	root.SetOut(&out)
	for _, l := range drawTopology(topo, "shop") {
		c.writeCells(l)
	}
	want := `gateway ─▶ web (running)        :8080  web-8080-acme.example.nip.io, shop.example.com
gateway ─▶ db (closed) [data]   :5432  tcp 192.0.2.2:30001
gateway ─▶ cache (running)      :80    cache.example.com
gateway ─▶ worker (abnormal)           worker.example.com
web (running) ─▶ api (running) ─┬▶ auth (waiting) ─┬▶ db (closed) [data]
                                │                  └▶ cache (running)
                                ├▶ cache (running)
                                └▶ db (closed) [data]
worker (abnormal) ─▶ db (closed) [data]
a (running) ─▶ b (running) ─▶ a (running) (cycle)
`
	if out.String() != want {
		t.Fatalf("got\n%s\nwant\n%s", out.String(), want)
	}
}

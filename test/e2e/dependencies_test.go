package e2e

import (
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

// eventLog is the text of an event's log.
func (s *server) eventLog(id string) string {
	s.t.Helper()
	var hist struct{ Lines []struct{ Text string } }
	s.must(200, "GET", "/api/v1/events/"+id+"/log", nil).json(s.t, &hist)
	var b strings.Builder
	for _, l := range hist.Lines {
		b.WriteString(l.Text + "\n")
	}
	return b.String()
}

// appAction runs an app-wide action and waits for its event.
func (s *server) appAction(action string) map[string]any {
	s.t.Helper()
	var acc struct {
		EventID string `json:"event_id"`
	}
	s.must(202, "POST", "/api/v1/teams/shop/apps/web/"+action, nil).json(s.t, &acc)
	return s.waitEvent(acc.EventID)
}

// exec runs a command in the first instance of a component.
func (s *server) exec(alias string, cmd ...string) string {
	s.t.Helper()
	c := s.component(alias)
	if len(c.Instances) == 0 {
		s.t.Fatalf("%s has no instance to exec in", alias)
	}
	var out struct {
		ExitCode int `json:"exit_code"`
		Output   string
	}
	s.must(200, "POST", comps+"/"+alias+"/instances/"+c.Instances[0].ID+"/exec", map[string]any{"cmd": cmd}).json(s.t, &out)
	return out.Output
}

// A three-tier app (web → api → db): components wait for their
// dependencies and start by themselves, get the connection info, start in
// order and stop in reverse, and a cycle is refused.
func TestDependenciesStartOrderAndConnectionInfo(t *testing.T) {
	requireRuntime(t)
	image := pushBusybox(t)
	var s *server
	flags := runtimeFlags(t, func() string { return s.data })
	s = startServer(t, flags...)
	setupShop(s)
	httpd := func(port string) []string {
		return []string{"sh", "-c", "mkdir -p /www && echo $HOSTNAME > /www/index.html && exec httpd -f -p " + port + " -h /www"}
	}
	s.must(201, "POST", comps, map[string]any{
		"alias": "db", "image": image, "memory": "32Mi", "cmd": httpd("5432"),
		"ports":     []map[string]any{{"port": 5432, "protocol": "tcp", "inner": true}},
		"envs":      []map[string]any{{"name": "DB_USER", "value": "app", "scope": "outer"}, {"name": "DB_PASSWORD", "value": "s3cret", "scope": "both", "secret": true}},
		"readiness": map[string]any{"type": "tcp", "port": 5432, "period_seconds": 1},
	})
	s.must(201, "POST", comps, map[string]any{
		"alias": "api", "image": image, "memory": "32Mi", "cmd": httpd("8080"),
		"ports":     []map[string]any{{"port": 8080, "protocol": "http", "inner": true}},
		"envs":      []map[string]any{{"name": "DSN", "value": "postgres://${DB_USER}:${DB_PASSWORD}@${DB_HOST}:${DB_PORT}/shop"}, {"name": "DB_USER", "value": "own-wins", "scope": "inner"}},
		"readiness": map[string]any{"type": "http", "port": 8080, "period_seconds": 1},
	})
	s.must(201, "POST", comps, map[string]any{
		"alias": "web", "image": image, "memory": "32Mi", "cmd": httpd("8080"),
		"ports":     []map[string]any{{"port": 8080, "protocol": "http", "inner": true, "outer": true}},
		"readiness": map[string]any{"type": "http", "port": 8080, "period_seconds": 1},
	})
	s.must(201, "POST", comps+"/web/dependencies", map[string]any{"component": "api"})
	s.must(201, "POST", comps+"/api/dependencies", map[string]any{"component": "db"})
	r := s.must(422, "POST", comps+"/db/dependencies", map[string]any{"component": "web"})
	if msg := r.errorMessage(); !strings.Contains(msg, "db") || !strings.Contains(msg, "web") || !strings.Contains(msg, "api") {
		t.Errorf("cycle message does not name it: %s", msg)
	}

	// web first: it waits for api, and says so and why.
	ev := s.action("web", "deploy", nil)
	if ev["status"] != "success" || !strings.Contains(s.eventLog(ev["id"].(string)), "waiting (等待启动) for its dependencies to be ready: api (undeploy)") {
		t.Fatalf("deploy of web before api: %v\n%s", ev, s.eventLog(ev["id"].(string)))
	}
	if c := s.component("web"); c.Status != "waiting" || !strings.Contains(c.StatusMessage, "api (undeploy)") {
		t.Fatalf("web: %s %q", c.Status, c.StatusMessage)
	}
	s.action("api", "deploy", nil)
	if c := s.component("api"); c.Status != "waiting" || !strings.Contains(c.StatusMessage, "db (undeploy)") {
		t.Fatalf("api: %s %q", c.Status, c.StatusMessage)
	}
	// db comes up; api and then web start by themselves.
	if ev := s.action("db", "deploy", nil); ev["status"] != "success" {
		t.Fatalf("deploy db: %v", ev)
	}
	s.waitComponent("web", 60*time.Second, func(c componentState) bool { return c.Status == "running" })

	// The connection info reached api's container: host and port of db's
	// inner port, db's outer variables, references expanded, own value wins.
	env := s.exec("api", "env")
	dbAddr := s.component("db").Ports[0].InnerAddress
	dbHost, _, _ := net.SplitHostPort(dbAddr)
	for _, want := range []string{"DB_HOST=" + dbHost, "DB_PORT=5432", "DB_USER=own-wins", "DB_PASSWORD=s3cret",
		"DSN=postgres://own-wins:s3cret@" + dbHost + ":5432/shop"} {
		if !strings.Contains(env, want+"\n") {
			t.Errorf("api's environment lacks %s:\n%s", want, env)
		}
	}
	if got := s.exec("api", "sh", "-c", "wget -qO- http://$DB_HOST:$DB_PORT/"); !strings.Contains(got, "db-") {
		t.Errorf("api reaching db at DB_HOST:DB_PORT: %q", got)
	}
	var eff struct {
		Items []struct{ Name, Value, Origin string }
	}
	s.must(200, "GET", comps+"/api/envs?effective=1", nil).json(t, &eff)
	origins := map[string]string{}
	values := map[string]string{}
	for _, v := range eff.Items {
		origins[v.Name], values[v.Name] = v.Origin, v.Value
	}
	if origins["DB_HOST"] != "dependency db (port 5432)" || origins["DB_USER"] != "component" || values["DB_PASSWORD"] != "******" {
		t.Errorf("effective envs: %+v", eff.Items)
	}

	// The topology: three components, two dependencies, the gateway entry.
	var topo struct {
		Nodes []struct{ ID, Status string }
		Edges []struct{ From, To, Type string }
	}
	s.must(200, "GET", "/api/v1/teams/shop/apps/web/topology", nil).json(t, &topo)
	if len(topo.Nodes) != 4 || len(topo.Edges) != 3 {
		t.Errorf("topology: %+v", topo)
	}

	// A dependency's connection info changes: the dependent is marked.
	s.must(201, "POST", comps+"/db/envs", map[string]any{"name": "DB_NAME", "value": "shop", "scope": "outer"})
	s.waitComponent("api", 15*time.Second, func(c componentState) bool { return strings.Contains(c.RestartPending, "DB_NAME") })
	s.action("api", "restart", nil)
	s.waitComponent("api", 30*time.Second, func(c componentState) bool {
		return c.Status == "running" && c.RestartPending == "" && len(c.Instances) == 1
	})
	if env := s.exec("api", "env"); !strings.Contains(env, "DB_NAME=shop\n") {
		t.Errorf("restart did not apply the new connection info:\n%s", env)
	}

	// The app stops in reverse order and starts in dependency order.
	ev = s.appAction("stop")
	log := s.eventLog(ev["id"].(string))
	if ev["status"] != "success" || !inOrder(log, "web stopped", "api stopped", "db stopped") {
		t.Fatalf("app stop: %v\n%s", ev, log)
	}
	ev = s.appAction("start")
	log = s.eventLog(ev["id"].(string))
	if ev["status"] != "success" || !strings.Contains(log, "dependency order: db → api → web") || !inOrder(log, "db is running", "api is running", "web is running") {
		t.Fatalf("app start: %v\n%s", ev, log)
	}

	// db stopped: a restart of api waits and names db; web, already
	// running, is not stopped by it.
	s.action("db", "stop", nil)
	s.action("api", "restart", nil)
	// The message follows db's own status (stopping, then closed).
	s.waitComponent("api", 15*time.Second, func(c componentState) bool {
		return c.Status == "waiting" && strings.Contains(c.StatusMessage, "db (closed)")
	})
	if w := s.component("web"); w.Status != "running" {
		t.Errorf("web after db stopped: %s %q", w.Status, w.StatusMessage)
	}
	s.action("db", "start", nil)
	s.waitComponent("api", 60*time.Second, func(c componentState) bool { return c.Status == "running" })
}

func inOrder(text string, parts ...string) bool {
	at := 0
	for _, p := range parts {
		i := strings.Index(text[at:], p)
		if i < 0 {
			return false
		}
		at += i + len(p)
	}
	return true
}

// A thirdparty component: one healthy and one dead endpoint balances only
// to the healthy one; both dead is abnormal and the gateway says 503 with
// the cause; one back is running again. Registration needs the
// component's key.
func TestThirdPartyEndpoints(t *testing.T) {
	requireRuntime(t)
	// The test's services listen on loopback, which endpoints may only
	// name when a platform admin allows it.
	t.Setenv("BERTH_ALLOW_ENDPOINT_CIDR", "127.0.0.0/8")
	var s *server
	flags := runtimeFlags(t, func() string { return s.data })
	s = startServer(t, flags...)
	setupShop(s)

	liveLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	live := liveLn.Addr().String()
	serve := func(ln net.Listener) *http.Server {
		srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "live") })}
		go srv.Serve(ln)
		return srv
	}
	srv := serve(liveLn)
	defer func() { srv.Close() }()
	deadLn, _ := net.Listen("tcp", "127.0.0.1:0")
	dead := deadLn.Addr().String()
	deadLn.Close()

	var created struct {
		EndpointKey string `json:"endpoint_key"`
	}
	s.must(201, "POST", comps, map[string]any{
		"alias": "ext", "kind": "thirdparty", "endpoints": []string{live, dead},
		"ports":     []map[string]any{{"port": 8080, "protocol": "http", "inner": true, "outer": true}},
		"readiness": map[string]any{"type": "http", "path": "/", "period_seconds": 1, "failure_threshold": 1, "expect_status": 200},
	}).json(t, &created)
	if created.EndpointKey == "" {
		t.Fatal("a thirdparty component has no endpoint key")
	}
	if c := s.component("ext"); c.Status != "closed" {
		t.Errorf("before start: %s", c.Status)
	}
	if ev := s.action("ext", "start", nil); ev["status"] != "success" {
		t.Fatalf("start: %v", ev)
	}
	c := s.waitComponent("ext", 20*time.Second, func(c componentState) bool {
		return c.Status == "running" && len(c.Instances) == 2 && c.Instances[1].Status == "unhealthy"
	})
	if c.Instances[0].ID != live || c.Instances[0].Status != "running" {
		t.Errorf("endpoints: %+v", c.Instances)
	}
	gc := s.gatewayClient(nil)
	for i := 0; i < 10; i++ {
		if a := s.gatewayDo(gc, "GET", "http://ext-8080-shop.berth.test/", nil); a.Status != 200 || a.Body != "live" {
			t.Fatalf("request %d through the gateway: %d %q", i, a.Status, a.Body)
		}
	}

	// Both down: abnormal, and the gateway says why.
	srv.Close()
	c = s.waitComponent("ext", 20*time.Second, func(c componentState) bool { return c.Status == "abnormal" })
	if !strings.Contains(c.StatusMessage, "no endpoint is healthy") || !strings.Contains(c.StatusMessage, live) {
		t.Errorf("abnormal message: %q", c.StatusMessage)
	}
	a := s.gatewayDo(gc, "GET", "http://ext-8080-shop.berth.test/", map[string]string{"Accept": "application/json"})
	if a.Status != 503 || a.Header.Get("X-Berth-Error") != "no ready instance" {
		t.Errorf("all endpoints down: %d %v %s", a.Status, a.Header.Get("X-Berth-Error"), a.Body)
	}

	// One comes back.
	liveLn, err = net.Listen("tcp", live)
	if err != nil {
		t.Fatal(err)
	}
	srv = serve(liveLn)
	s.waitComponent("ext", 20*time.Second, func(c componentState) bool { return c.Status == "running" })
	if a := s.gatewayDo(gc, "GET", "http://ext-8080-shop.berth.test/", nil); a.Status != 200 {
		t.Errorf("after the endpoint returned: %d %s", a.Status, a.Body)
	}

	// Registration: a wrong key is refused, the right one replaces the
	// registered endpoints.
	req := func(key string, body string) int {
		rq, _ := http.NewRequest("PUT", s.url+comps+"/ext/endpoints", strings.NewReader(body))
		rq.Header.Set("X-Endpoint-Key", key)
		rq.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(rq)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if code := req("bek_wrong", `{"endpoints":["127.0.0.1:1"]}`); code != 401 {
		t.Errorf("registration with a wrong key: %d", code)
	}
	if code := req(s.token, `{"endpoints":["127.0.0.1:1"]}`); code != 401 {
		t.Errorf("registration with the team token instead of the key: %d", code)
	}
	if code := req(created.EndpointKey, `{"endpoints":["not an address"]}`); code != 422 {
		t.Errorf("registration of a bad address: %d", code)
	}
	if code := req(created.EndpointKey, `{"endpoints":["`+dead+`"]}`); code != 200 {
		t.Fatalf("registration with the key: %d", code)
	}
	c = s.waitComponent("ext", 20*time.Second, func(c componentState) bool { return len(c.Instances) == 2 })
	if c.Status != "running" {
		t.Errorf("after registration: %s %+v", c.Status, c.Instances)
	}
}

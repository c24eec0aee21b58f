package main

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/berth-platform/berth/client"
)

// TestGatewayDependenciesAndEndpoints drives the gateway, dependency and
// thirdparty commands against a real server: what they send is checked
// through the client, what they print against what the server answers.
func TestGatewayDependenciesAndEndpoints(t *testing.T) {
	// Its thirdparty endpoints are test listeners on loopback, which only a
	// platform admin may allow.
	srvURL, admin := startServer(t, "--allow-endpoint-cidr", "127.0.0.0/8")
	tc := newTestCLI(t, nil)
	tc.mustRun("login", srvURL, "--token", admin)
	tc.mustRun("team", "create", "acme")
	tc.mustRun("use", "acme")
	tc.mustRun("app", "create", "shop")
	tc.mustRun("app", "create", "data")
	tc.mustRun("use", "acme/shop")
	tc.mustRun("component", "create", "web", "--image", "nginx:1.27", "--port", "8080/http:inner,outer")
	tc.mustRun("component", "create", "api", "--image", "api:1", "--port", "9000")
	tc.mustRun("component", "create", "db", "--app", "data", "--image", "postgres:16", "--port", "5432/tcp")
	tc.mustRun("env", "set", "db", "--app", "data", "DB_PASSWORD=hunter2", "--scope", "both", "--secret")
	tc.mustRun("component", "create", "pay", "--endpoint", "127.0.0.1:1", "--port", "443/tcp")
	tc.mustRun("dep", "add", "web", "api")
	tc.mustRun("dep", "add", "api", "db", "pay")

	cl := client.New(srvURL, admin)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	web := client.ComponentRef{Team: "acme", App: "shop", Component: "web"}

	// Published ports.
	out := tc.mustRun("port", "add", "web", "9090", "--outer")
	contains(t, "port add --outer", out, "Added port 9090/http (outer) to web.", "Published at http://web-9090-acme.")
	out = tc.mustRun("port", "add", "db", "6379/tcp", "--outer", "--app", "data")
	contains(t, "port add tcp --outer", out, "Published at 127.0.0.1:", "(TCP)")
	comp, err := cl.GetComponent(ctx, web)
	if err != nil {
		t.Fatal(err)
	}
	if len(comp.Ports) == 0 || len(comp.Ports[0].URLs) != 1 {
		t.Fatalf("ports of web: %+v", comp.Ports)
	}
	defaultURL := comp.Ports[0].URLs[0]
	contains(t, "component get", tc.mustRun("component", "get", "web"), "8080/http  inner,outer", "published at   "+defaultURL)
	contains(t, "port list", tc.mustRun("port", "list", "web"), "PUBLISHED AT", defaultURL, "9090  http")

	// HTTP rule options: add sends them, update changes only what it is given.
	out = tc.mustRun("rule", "http", "add", "shop.example.com", "--component", "web", "--port", "8080", "--path", "/api",
		"--rewrite", "/", "--max-body", "10Mi", "--rate-limit", "5", "--rate-burst", "10", "--read-timeout", "30", "--redirect-https")
	contains(t, "rule add", out, "Added rule http-", "Options: rewrite=/ read=30s body<=10Mi rate=5/s+10 →https")
	rules, err := cl.ListHTTPRules(ctx, "acme")
	if err != nil || len(rules) != 1 {
		t.Fatalf("rules %+v %v", rules, err)
	}
	r := rules[0]
	if r.RewritePath != "/" || r.MaxBodySize != 10<<20 || r.RateLimit != 5 || r.RateBurst != 10 || r.ReadTimeout != 30 || !r.RedirectHTTPS {
		t.Fatalf("rule as created: %+v", r)
	}
	tc.mustRun("rule", "http", "update", r.ID, "--rate-limit", "0", "--max-body", "0", "--connect-timeout", "3")
	got, err := cl.GetHTTPRule(ctx, "acme", r.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.RateLimit != 0 || got.MaxBodySize != 0 || got.ConnectTimeout != 3 || got.ReadTimeout != 30 || !got.RedirectHTTPS || got.Path != "/api" {
		t.Fatalf("rule after update: %+v", got)
	}
	tc.mustRun("rule", "http", "update", r.ID, "--redirect-https=false")
	contains(t, "rule list", tc.mustRun("rule", "http", "list"), "OPTIONS", "rewrite=/ connect=3s read=30s burst=10")
	if out := tc.mustRun("rule", "http", "list"); strings.Contains(out, "→https") {
		t.Fatalf("--redirect-https=false kept the redirect:\n%s", out)
	}
	_, errOut, _ := tc.run("rule", "http", "update", r.ID)
	contains(t, "empty update", errOut, "nothing to change")
	contains(t, "get after rule", tc.mustRun("component", "get", "web"), "http://shop.example.com")

	// The topology: the gateway entry first, then the dependency chain.
	out = tc.mustRun("topology")
	contains(t, "topology", out,
		"gateway ─▶ web (undeploy)",
		":8080  web-8080-acme.",
		"shop.example.com",
		"web (undeploy) ─▶ api (undeploy) ─┬▶ db (undeploy) [data]\n",
		"                                  └▶ pay (closed)\n")
	var topo client.Topology
	if err := json.Unmarshal([]byte(tc.mustRun("topology", "shop", "-o", "json")), &topo); err != nil {
		t.Fatal(err)
	}
	if len(topo.Nodes) != 5 || len(topo.Edges) != 5 {
		t.Fatalf("topology -o json: %+v", topo)
	}

	// Gateway errors: a request to a component with no instance.
	contains(t, "no errors yet", tc.mustRun("gateway", "errors", "web"), "No gateway errors for web.")
	u, err := url.Parse(defaultURL)
	if err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequest("GET", "http://127.0.0.1:"+u.Port()+"/checkout", nil)
	req.Host = u.Hostname()
	req.Header.Set("Accept", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var gwAnswer struct {
		Error struct {
			RequestID string `json:"request_id"`
		} `json:"error"`
	}
	json.NewDecoder(resp.Body).Decode(&gwAnswer)
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 503 {
		t.Fatalf("gateway answered %d", resp.StatusCode)
	}
	out = tc.mustRun("gateway", "errors", "web")
	contains(t, "gateway errors", out, "TIME", "REQUEST ID", "503", "no ready instance",
		"GET "+u.Hostname()+"/checkout", gwAnswer.Error.RequestID)

	// Connection info from dependencies, secrets masked.
	out = tc.mustRun("env", "list", "api", "--effective")
	contains(t, "effective env", out, "NAME", "ORIGIN", "DB_PORT      5432", "dependency db (port 5432)",
		"DB_PASSWORD  ******", "dependency db (env of scope both)", "PAY_HOST")
	if strings.Contains(out, "hunter2") {
		t.Fatalf("secret shown:\n%s", out)
	}

	// App start and stop follow their event.
	out = tc.mustRun("app", "start")
	contains(t, "app start", out, "Event ev-", "==> App start succeeded")
	stopped, _, code := tc.run("app", "stop", "shop", "-d")
	if code != 0 || !isEventID(strings.TrimSpace(stopped)) {
		t.Fatalf("app stop -d: exit %d, %q", code, stopped)
	}
	if ev, err := cl.WaitEvent(ctx, strings.TrimSpace(stopped)); err != nil || ev.Status != client.EventSuccess {
		t.Fatalf("app stop: %+v %v", ev, err)
	}

	// Thirdparty endpoints: the service registers itself with the key
	// alone, without a login.
	out = tc.mustRun("endpoints", "pay")
	contains(t, "endpoints", out, "ENDPOINT", "127.0.0.1:1", "static")
	var pay client.Component
	if err := json.Unmarshal([]byte(tc.mustRun("component", "get", "pay", "-o", "json")), &pay); err != nil || pay.EndpointKey == "" {
		t.Fatalf("no endpoint key: %+v %v", pay, err)
	}
	contains(t, "get thirdparty", tc.mustRun("component", "get", "pay"), "Endpoint key:   "+pay.EndpointKey)
	service := newTestCLI(t, nil)
	out = service.mustRun("endpoints", "register", srvURL, "acme/shop/pay", "--key", pay.EndpointKey, "127.0.0.1:2", "10.0.0.9:80")
	contains(t, "register", out, "Registered 127.0.0.1:2, 10.0.0.9:80 for acme/shop/pay.")
	contains(t, "endpoints after register", tc.mustRun("endpoints", "pay"), "127.0.0.1:2", "10.0.0.9:80", "registered")
	contains(t, "get after register", tc.mustRun("component", "get", "pay"), "Registered:     127.0.0.1:2, 10.0.0.9:80")
	_, errOut, code = service.run("endpoints", "register", srvURL, "acme/shop/pay", "--key", "bek_wrong", "127.0.0.1:3")
	if code != 1 || !strings.Contains(errOut, "refused the endpoint key") || strings.Contains(errOut, "Hint") {
		t.Fatalf("wrong key: exit %d\n%s", code, errOut)
	}
	service.vars["BERTH_ENDPOINT_KEY"] = pay.EndpointKey
	contains(t, "clear", service.mustRun("endpoints", "register", srvURL, "acme/shop/pay", "--clear"),
		"Removed the registered endpoints of acme/shop/pay.")
	if comp, err := cl.GetComponent(ctx, client.ComponentRef{Team: "acme", App: "shop", Component: "pay"}); err != nil || len(comp.RegisteredEndpoints) != 0 {
		t.Fatalf("after --clear: %+v %v", comp, err)
	}
	_, errOut, _ = tc.run("endpoints", "web")
	contains(t, "endpoints of an image component", errOut, "Error: ", "only thirdparty components have endpoints")
}

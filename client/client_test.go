package client

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
)

func newTestClient(t *testing.T, h http.Handler) *Client {
	t.Helper()
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return New(srv.URL+"/", "secret-token")
}

func TestErrorDecoding(t *testing.T) {
	cases := []struct {
		name        string
		status      int
		contentType string
		body        string
		want        Error
	}{
		{"berth error", 404, "application/json",
			`{"error":{"code":"not_found","message":"app \"shop\" not found"}}`,
			Error{404, "not_found", `app "shop" not found`}},
		{"validation", 422, "application/json",
			`{"error":{"code":"invalid","message":"image: is required for kind image"}}`,
			Error{422, "invalid", "image: is required for kind image"}},
		{"plain text from a proxy", 502, "text/plain", "upstream unavailable\n",
			Error{502, "internal", "upstream unavailable (HTTP 502)"}},
		{"html page", 401, "text/html", "<html><body>nope</body></html>",
			Error{401, "unauthorized", "Unauthorized (HTTP 401)"}},
		{"empty body", 403, "", "",
			Error{403, "forbidden", "Forbidden (HTTP 403)"}},
		{"code without message", 409, "application/json", `{"error":{"code":"conflict"}}`,
			Error{409, "conflict", "Conflict (HTTP 409)"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := newTestClient(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if tc.contentType != "" {
					w.Header().Set("Content-Type", tc.contentType)
				}
				w.WriteHeader(tc.status)
				io.WriteString(w, tc.body)
			}))
			_, err := c.GetApp(context.Background(), "t", "shop")
			var apiErr *Error
			if !errors.As(err, &apiErr) {
				t.Fatalf("error %v (%T) is not *Error", err, err)
			}
			if *apiErr != tc.want {
				t.Fatalf("got %+v, want %+v", *apiErr, tc.want)
			}
			if err.Error() != tc.want.Message {
				t.Fatalf("Error() = %q, want the message %q", err.Error(), tc.want.Message)
			}
		})
	}
}

func TestErrorHelpers(t *testing.T) {
	wrapped := errors.Join(errors.New("context"), &Error{Status: 404, Code: "not_found"})
	if !IsNotFound(wrapped) || IsUnauthorized(wrapped) {
		t.Fatal("IsNotFound/IsUnauthorized do not look through wrapping")
	}
}

func TestRequestShape(t *testing.T) {
	var got struct {
		method, path, rawPath, auth, contentType string
		body                                     map[string]any
	}
	c := newTestClient(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got.method, got.path, got.rawPath = r.Method, r.URL.Path, r.URL.EscapedPath()
		got.auth, got.contentType = r.Header.Get("Authorization"), r.Header.Get("Content-Type")
		got.body = nil
		json.NewDecoder(r.Body).Decode(&got.body)
		w.WriteHeader(http.StatusAccepted)
		io.WriteString(w, `{"event_id":"ev-abcdefghijklmnop"}`)
	}))
	ref := ComponentRef{Team: "acme", App: "shop", Component: "web"}
	id, err := c.Scale(context.Background(), ref, 3)
	if err != nil {
		t.Fatal(err)
	}
	if id != "ev-abcdefghijklmnop" {
		t.Fatalf("event id %q", id)
	}
	if got.method != "POST" || got.path != "/api/v1/teams/acme/apps/shop/components/web/scale" {
		t.Fatalf("request %s %s", got.method, got.path)
	}
	if got.auth != "Bearer secret-token" || got.contentType != "application/json" {
		t.Fatalf("headers: auth %q, content-type %q", got.auth, got.contentType)
	}
	if got.body["instances"] != float64(3) {
		t.Fatalf("body %v", got.body)
	}

	// A name with a slash must stay one path segment.
	if _, err := c.Rollback(context.Background(), ComponentRef{"acme", "a/b", "web"}, 7); err != nil {
		t.Fatal(err)
	}
	if got.rawPath != "/api/v1/teams/acme/apps/a%2Fb/components/web/rollback" || got.body["version"] != float64(7) {
		t.Fatalf("rollback sent %s %v", got.rawPath, got.body)
	}

	// Deploy without an image sends no body at all.
	if _, err := c.Deploy(context.Background(), ref, ""); err != nil {
		t.Fatal(err)
	}
	if got.body != nil || got.contentType != "" {
		t.Fatalf("deploy without image sent %v (%q)", got.body, got.contentType)
	}
}

func TestComponentDecoding(t *testing.T) {
	c := newTestClient(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, `{"items":[{"id":"c1","alias":"web","kind":"image","image":"nginx:1.25",
			"replicas":3,"memory":"512Mi","cpu":"500m",
			"instances":[{"id":"i1","status":"running"},{"id":"i2","status":"not_ready","reason":"Readiness","advice":"check the probe"}],
			"status":"some_abnormal","status_label":"部分实例异常","deploy_version":4,
			"envs":[{"name":"PASSWORD","value":"******","scope":"inner","secret":true}]}]}`)
	}))
	items, err := c.ListComponents(context.Background(), "t", "a")
	if err != nil {
		t.Fatal(err)
	}
	if len(items) != 1 {
		t.Fatalf("%d items", len(items))
	}
	comp := items[0]
	if comp.Replicas != 3 || comp.ReadyInstances() != 1 || comp.StatusLabel != "部分实例异常" ||
		comp.Instances[1].Advice != "check the probe" || !comp.Envs[0].Secret || comp.DeployVersion != 4 {
		t.Fatalf("decoded %+v", comp)
	}
}

func TestEmptyListIsNotNil(t *testing.T) {
	c := newTestClient(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, `{"items":null}`)
	}))
	teams, err := c.ListTeams(context.Background())
	if err != nil || teams == nil {
		t.Fatalf("teams %v, err %v", teams, err)
	}
}

func TestPatchSendsOnlySetFields(t *testing.T) {
	var body map[string]any
	c := newTestClient(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		json.NewDecoder(r.Body).Decode(&body)
		io.WriteString(w, `{"alias":"web"}`)
	}))
	zero, empty := 0, []Env{}
	_, err := c.UpdateComponent(context.Background(), ComponentRef{"t", "a", "web"},
		ComponentPatch{Instances: &zero, Envs: &empty})
	if err != nil {
		t.Fatal(err)
	}
	if len(body) != 2 || body["instances"] != float64(0) || body["envs"] == nil {
		t.Fatalf("patch body %v", body)
	}
}

func TestReady(t *testing.T) {
	c := newTestClient(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusServiceUnavailable)
		io.WriteString(w, `{"ready":false,"phases":[{"name":"migrate","state":"running","duration_ms":12}]}`)
	}))
	r, err := c.Ready(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if r.Ready || len(r.Phases) != 1 || r.Phases[0].Name != "migrate" {
		t.Fatalf("readiness %+v", r)
	}
}

func TestEventFilterQuery(t *testing.T) {
	var query string
	c := newTestClient(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		query = r.URL.RawQuery
		io.WriteString(w, `{"items":[]}`)
	}))
	_, err := c.ListEvents(context.Background(), EventFilter{Team: "acme", Status: "failure", Limit: 5})
	if err != nil {
		t.Fatal(err)
	}
	if query != "limit=5&status=failure&team=acme" {
		t.Fatalf("query %q", query)
	}
}

func TestRegisterEndpointsSendsTheKeyNotTheToken(t *testing.T) {
	var auth, key, method, path string
	var body map[string]any
	c := newTestClient(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		auth, key, method, path = r.Header.Get("Authorization"), r.Header.Get("X-Endpoint-Key"), r.Method, r.URL.Path
		json.NewDecoder(r.Body).Decode(&body)
		io.WriteString(w, `{"registered":["10.0.0.7:8443"]}`)
	}))
	ref := ComponentRef{"acme", "shop", "pay"}
	got, err := c.RegisterEndpoints(context.Background(), ref, "bek_key", []string{"10.0.0.7:8443"})
	if err != nil {
		t.Fatal(err)
	}
	if auth != "" || key != "bek_key" || method != "PUT" || path != "/api/v1/teams/acme/apps/shop/components/pay/endpoints" {
		t.Fatalf("sent %s %s with Authorization %q, X-Endpoint-Key %q", method, path, auth, key)
	}
	if len(got) != 1 || got[0] != "10.0.0.7:8443" {
		t.Fatalf("registered %v", got)
	}
	// No endpoints is an empty list, which clears, not null.
	if _, err := c.RegisterEndpoints(context.Background(), ref, "bek_key", nil); err != nil {
		t.Fatal(err)
	}
	if list, ok := body["endpoints"].([]any); !ok || len(list) != 0 {
		t.Fatalf("nil endpoints sent as %v", body)
	}
}

func TestNewEndpointsDecode(t *testing.T) {
	var query string
	c := newTestClient(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		query = r.URL.RawQuery
		switch r.URL.Path {
		case "/api/v1/teams/t/apps/a/components/web/envs":
			io.WriteString(w, `{"items":[{"name":"DB_HOST","value":"db","origin":"dependency db (port 5432)","secret":false}],"restart_pending":"db moved"}`)
		case "/api/v1/teams/t/apps/a/topology":
			io.WriteString(w, `{"nodes":[{"id":"web","kind":"image","status":"running","replicas":2,"ready":1}],"edges":null}`)
		case "/api/v1/teams/t/apps/a/start":
			w.WriteHeader(http.StatusAccepted)
			io.WriteString(w, `{"event_id":"ev-abcdefghijklmnop"}`)
		case "/api/v1/teams/t/http-rules/http-1":
			io.WriteString(w, `{"id":"http-1","domain":"x.example.com","max_body_size":10485760,"rate_limit":2.5,"auto_tls":true}`)
		case "/api/v1/teams/t/apps/a/components/web":
			io.WriteString(w, `{"alias":"web","restart_pending":"db moved","ports":[{"port":80,"protocol":"http","inner":true,"outer":true,
				"inner_address":"10.214.0.3:80","domains":["web-80-t.example.nip.io"],"urls":["http://web-80-t.example.nip.io/"]}]}`)
		}
	}))
	ctx := context.Background()
	ref := ComponentRef{"t", "a", "web"}
	envs, err := c.EffectiveEnvs(ctx, ref)
	if err != nil || query != "effective=1" || len(envs.Items) != 1 || envs.Items[0].Origin != "dependency db (port 5432)" || envs.RestartPending != "db moved" {
		t.Fatalf("effective envs %+v (query %q) %v", envs, query, err)
	}
	topo, err := c.AppTopology(ctx, "t", "a")
	if err != nil || len(topo.Nodes) != 1 || topo.Nodes[0].Ready != 1 || topo.Edges == nil {
		t.Fatalf("topology %+v %v", topo, err)
	}
	if id, err := c.StartApp(ctx, "t", "a"); err != nil || id != "ev-abcdefghijklmnop" {
		t.Fatalf("start app: %q %v", id, err)
	}
	rule, err := c.GetHTTPRule(ctx, "t", "http-1")
	if err != nil || rule.MaxBodySize != 10<<20 || rule.RateLimit != 2.5 || !rule.AutoTLS {
		t.Fatalf("rule %+v %v", rule, err)
	}
	comp, err := c.GetComponent(ctx, ref)
	if err != nil || comp.RestartPending != "db moved" || comp.Ports[0].InnerAddress != "10.214.0.3:80" || comp.Ports[0].URLs[0] != "http://web-80-t.example.nip.io/" {
		t.Fatalf("component %+v %v", comp, err)
	}
	// A port built for a request carries none of the answer-only fields.
	b, _ := json.Marshal(Port{Port: 80, Inner: true})
	if string(b) != `{"port":80,"inner":true,"outer":false}` {
		t.Fatalf("port encodes as %s", b)
	}
}

package e2e

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"strings"
	"testing"
	"time"
)

const comps = "/api/v1/teams/shop/apps/web/components"

// setupShop makes team shop with app web.
func setupShop(s *server) {
	s.must(201, "POST", "/api/v1/teams", map[string]any{"name": "shop"})
	s.must(201, "POST", "/api/v1/teams/shop/apps", map[string]any{"name": "web"})
}

func TestComponentLifecycle(t *testing.T) {
	s := startServer(t)
	setupShop(s)
	var c map[string]any
	s.must(201, "POST", comps, map[string]any{
		"alias": "api", "kind": "image", "image": "nginx:1.25", "instances": 2, "memory": "512Mi", "cpu": "500m",
		"cmd": []string{"nginx"}, "args": []string{"-g", "daemon off;"},
		"ports": []map[string]any{{"port": 80, "protocol": "http", "inner": true, "outer": true}},
		"envs": []map[string]any{
			{"name": "MODE", "value": "prod"},
			{"name": "DB_PASSWORD", "value": "hunter2", "scope": "outer", "secret": true},
		},
		"volumes":   []map[string]any{{"path": "/data", "size": "1Gi"}},
		"readiness": map[string]any{"type": "http", "port": 80, "path": "/healthz", "period_seconds": 5},
	}).json(t, &c)
	if c["status"] != "undeploy" || c["status_label"] != "未部署" || c["replicas"] != 2.0 || c["memory"] != "512Mi" || c["cpu"] != "500m" {
		t.Fatalf("created component: %v", c)
	}
	if _, ok := c["instances"].([]any); !ok {
		t.Fatalf("instances must be a list: %v", c["instances"])
	}
	port := c["ports"].([]any)[0].(map[string]any)
	if port["alias"] != "API" || port["inner"] != true || port["outer"] != true {
		t.Fatalf("port defaults: %v", port)
	}
	for _, e := range c["envs"].([]any) {
		e := e.(map[string]any)
		if e["name"] == "DB_PASSWORD" && e["value"] != "******" {
			t.Fatalf("secret not redacted: %v", e)
		}
		if e["name"] == "MODE" && e["scope"] != "inner" {
			t.Fatalf("default scope: %v", e)
		}
	}

	// Sub-resources.
	s.must(201, "POST", comps+"/api/ports", map[string]any{"port": 9090, "protocol": "tcp"})
	s.must(409, "POST", comps+"/api/ports", map[string]any{"port": 9090})
	s.must(200, "PATCH", comps+"/api/ports/9090", map[string]any{"inner": true})
	s.must(204, "DELETE", comps+"/api/ports/9090", nil)
	s.must(404, "DELETE", comps+"/api/ports/9090", nil)
	s.must(201, "POST", comps+"/api/envs", map[string]any{"name": "LOG", "value": "debug"})
	s.must(200, "POST", comps+"/api/envs", map[string]any{"name": "LOG", "value": "info"})
	s.must(200, "PATCH", comps+"/api/envs/DB_PASSWORD", map[string]any{"value": "******", "scope": "both"})
	s.must(204, "DELETE", comps+"/api/envs/LOG", nil)
	s.must(201, "POST", comps+"/api/volumes", map[string]any{"name": "cache", "path": "/cache", "size": "100Mi"})
	s.must(409, "POST", comps+"/api/volumes", map[string]any{"name": "other", "path": "/cache"})
	s.must(204, "DELETE", comps+"/api/volumes/cache", nil)

	// Dependencies, with the cycle refused and named.
	s.must(201, "POST", comps, map[string]any{"alias": "db", "image": "postgres:16", "ports": []map[string]any{{"port": 5432, "protocol": "tcp", "inner": true}}})
	s.must(201, "POST", comps+"/api/dependencies", map[string]any{"component": "db"})
	s.must(409, "POST", comps+"/api/dependencies", map[string]any{"component": "db"})
	r := s.must(422, "POST", comps+"/db/dependencies", map[string]any{"component": "api"})
	if !strings.Contains(r.errorMessage(), "db -> api -> db") {
		t.Fatalf("cycle message: %s", r.Body)
	}
	var deps struct{ Items []map[string]any }
	s.must(200, "GET", comps+"/api/dependencies", nil).json(t, &deps)
	if len(deps.Items) != 1 || deps.Items[0]["alias"] != "db" {
		t.Fatalf("dependencies: %v", deps)
	}
	s.must(409, "DELETE", comps+"/db", nil)

	// PATCH changes only what it names; a masked secret stays as it was.
	s.must(200, "PATCH", comps+"/api", map[string]any{"memory": "1Gi", "envs": []map[string]any{{"name": "DB_PASSWORD", "value": "******", "scope": "outer", "secret": true}}})
	s.must(200, "GET", comps+"/api", nil).json(t, &c)
	if c["memory"] != "1Gi" || c["cpu"] != "500m" || c["image"] != "nginx:1.25" {
		t.Fatalf("after PATCH: %v", c)
	}
	s.must(422, "PATCH", comps+"/api", map[string]any{"alias": "renamed"})
	// What a GET returns can be sent back as it is: nothing changes.
	got := s.must(200, "GET", comps+"/api", nil)
	var again map[string]any
	s.must(200, "PATCH", comps+"/api", string(got.Body)).json(t, &again)
	if again["replicas"] != c["replicas"] || again["memory"] != c["memory"] || len(again["envs"].([]any)) != len(c["envs"].([]any)) {
		t.Fatalf("round trip changed the component: %v", again)
	}

	// Actions answer 202 with an event, and the event ends.
	var acc struct {
		EventID string `json:"event_id"`
	}
	s.must(409, "POST", comps+"/api/start", nil)
	s.must(202, "POST", comps+"/api/deploy", nil).json(t, &acc)
	if ev := s.waitEvent(acc.EventID); ev["status"] != "success" || ev["type"] != "deploy" || ev["target"] != "component:shop/web/api" {
		t.Fatalf("deploy event: %v", ev)
	}
	s.must(202, "POST", comps+"/api/deploy", map[string]any{"image": "nginx:1.26"}).json(t, &acc)
	s.waitEvent(acc.EventID)
	var versions struct{ Items []map[string]any }
	s.must(200, "GET", comps+"/api/versions", nil).json(t, &versions)
	if len(versions.Items) != 2 || versions.Items[0]["image"] != "nginx:1.26" || versions.Items[0]["number"].(float64) <= versions.Items[1]["number"].(float64) {
		t.Fatalf("versions: %v", versions)
	}
	first := int(versions.Items[1]["number"].(float64))
	s.must(202, "POST", comps+"/api/scale", map[string]any{"instances": 3}).json(t, &acc)
	s.waitEvent(acc.EventID)
	s.must(202, "POST", comps+"/api/rollback", map[string]any{"version": first}).json(t, &acc)
	s.waitEvent(acc.EventID)
	s.must(200, "GET", comps+"/api", nil).json(t, &c)
	if c["replicas"] != 3.0 || c["image"] != "nginx:1.25" || int(c["deploy_version"].(float64)) != first {
		t.Fatalf("after scale and rollback: %v", c)
	}
	s.must(202, "POST", comps+"/api/stop", nil).json(t, &acc)
	s.waitEvent(acc.EventID)
	s.must(200, "GET", comps+"/api", nil).json(t, &c)
	if c["status"] != "closed" {
		t.Fatalf("after stop: %v", c["status"])
	}
	s.must(409, "DELETE", comps+"/api/versions/"+itoa(first), nil)
	var evs struct{ Items []map[string]any }
	s.must(200, "GET", comps+"/api/events", nil).json(t, &evs)
	if len(evs.Items) != 5 {
		t.Fatalf("component events: %d", len(evs.Items))
	}

	// Gateway rules and certificates.
	certPEM, keyPEM := selfSigned(t, "shop.example.com", time.Now().Add(24*time.Hour))
	s.must(201, "POST", "/api/v1/teams/shop/certificates", map[string]any{"name": "shop", "certificate": certPEM, "key": keyPEM})
	var rule map[string]any
	s.must(201, "POST", "/api/v1/teams/shop/http-rules", map[string]any{"domain": "shop.example.com", "component": "api", "port": 80, "certificate": "shop"}).json(t, &rule)
	s.must(409, "DELETE", "/api/v1/teams/shop/certificates/shop", nil)
	s.must(422, "POST", "/api/v1/teams/shop/http-rules", map[string]any{"domain": "x.example.com", "component": "api", "port": 81})
	s.must(200, "PATCH", "/api/v1/teams/shop/http-rules/"+rule["id"].(string), map[string]any{"path": "/v2", "weight": 50})
	var tcp map[string]any
	s.must(201, "POST", "/api/v1/teams/shop/tcp-rules", map[string]any{"component": "db", "port": 5432}).json(t, &tcp)
	if tcp["gateway_port"] != 30000.0 {
		t.Fatalf("first TCP rule port: %v", tcp)
	}
	s.must(204, "DELETE", "/api/v1/teams/shop/tcp-rules/"+tcp["id"].(string), nil)

	// Deleting the component takes its rules along.
	s.deleteAndWait(comps + "/api?force=1")
	var rules struct{ Items []any }
	s.must(200, "GET", "/api/v1/teams/shop/http-rules", nil).json(t, &rules)
	if len(rules.Items) != 0 {
		t.Fatalf("rules left after delete: %v", rules.Items)
	}
	// Deleting the app takes its last component along.
	s.deleteAndWait("/api/v1/teams/shop/apps/web")
	s.must(404, "GET", comps+"/db", nil)
}

func TestTcpRangeExhausted(t *testing.T) {
	s := startServer(t, "--tcp-ports", "31000-31001")
	setupShop(s)
	s.must(201, "POST", comps, map[string]any{"alias": "db", "image": "redis", "ports": []map[string]any{{"port": 6379, "protocol": "tcp"}}})
	for i := 0; i < 2; i++ {
		s.must(201, "POST", "/api/v1/teams/shop/tcp-rules", map[string]any{"component": "db", "port": 6379})
	}
	r := s.must(409, "POST", "/api/v1/teams/shop/tcp-rules", map[string]any{"component": "db", "port": 6379})
	if !strings.Contains(r.errorMessage(), "--tcp-ports") {
		t.Fatalf("exhausted range message does not say how to widen it: %s", r.Body)
	}
}

func TestCertificateErrors(t *testing.T) {
	s := startServer(t)
	setupShop(s)
	good, key := selfSigned(t, "a.example.com", time.Now().Add(time.Hour))
	_, otherKey := selfSigned(t, "a.example.com", time.Now().Add(time.Hour))
	expired, expiredKey := selfSigned(t, "a.example.com", time.Now().Add(-time.Hour))
	for name, tc := range map[string]struct{ cert, key, want string }{
		"mismatched key": {good, otherKey, "key: does not match"},
		"expired":        {expired, expiredKey, "certificate: expired"},
		"not PEM":        {"hello", key, "certificate: is not a PEM certificate"},
		"no key":         {good, "", "key: is not a PEM private key"},
	} {
		r := s.must(422, "POST", "/api/v1/teams/shop/certificates", map[string]any{"name": "c", "certificate": tc.cert, "key": tc.key})
		if !strings.Contains(r.errorMessage(), tc.want) {
			t.Errorf("%s: message %q lacks %q", name, r.errorMessage(), tc.want)
		}
	}
	var cert map[string]any
	s.must(201, "POST", "/api/v1/teams/shop/certificates", map[string]any{"name": "c", "certificate": good, "key": key}).json(t, &cert)
	if _, leaked := cert["key"]; leaked {
		t.Fatal("the API returned the private key")
	}
}

func selfSigned(t *testing.T, host string, notAfter time.Time) (string, string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: host},
		DNSNames: []string{host}, NotBefore: notAfter.Add(-48 * time.Hour), NotAfter: notAfter,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})),
		string(pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder}))
}

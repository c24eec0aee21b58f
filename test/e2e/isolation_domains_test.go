package e2e

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"strings"
	"testing"
	"time"
)

// domainTeams makes teams alpha (the attacker) and beta (the victim), each
// with an app and a component with an outer HTTP port, and returns a
// developer token of each.
func domainTeams(s *server) (alpha, beta string) {
	for _, team := range []string{"alpha", "beta"} {
		s.must(201, "POST", "/api/v1/teams", map[string]any{"name": team})
		s.must(201, "POST", "/api/v1/teams/"+team+"/apps", map[string]any{"name": "web"})
		s.must(201, "POST", "/api/v1/teams/"+team+"/apps/web/components", map[string]any{"alias": team[:1] + "-c", "image": "nginx",
			"ports": []any{map[string]any{"port": 80, "protocol": "http", "inner": true, "outer": true}}})
	}
	return s.teamToken("alpha", "developer"), s.teamToken("beta", "developer")
}

// certFor is a self-signed certificate naming every one of names.
func certFor(t *testing.T, names ...string) (string, string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: names[0]},
		DNSNames: names, NotBefore: time.Now().Add(-time.Hour), NotAfter: futureDay()}
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

// wantTaken checks a 409 domain_taken that says "another team" and does
// not name owner (owner "" for a name no single team owns).
func wantTaken(t *testing.T, what string, r response, owner string) {
	t.Helper()
	if r.Status != 409 || r.errorCode() != "domain_taken" {
		t.Errorf("%s: %d %s, want 409 domain_taken", what, r.Status, r.Body)
		return
	}
	msg := r.errorMessage()
	if owner == "" {
		return
	}
	if !strings.Contains(msg, "another team") || strings.Contains(msg, `"`+owner+`"`) || strings.Contains(msg, "team "+owner) {
		t.Errorf("%s: the message must say \"another team\" and not name %s: %s", what, owner, msg)
	}
}

// Team alpha tries to take team beta's domains: the same name, a wildcard
// over it, a certificate or auto_tls for it, beta's default domain. Each
// is 409; a platform admin can give the domain to alpha, and then the
// gateway stops routing it to beta.
func TestDomainsBelongToOneTeam(t *testing.T) {
	s := startServer(t)
	alpha, beta := domainTeams(s)
	rules := func(team string) string { return "/api/v1/teams/" + team + "/http-rules" }
	certs := func(team string) string { return "/api/v1/teams/" + team + "/certificates" }
	rule := func(domain string) map[string]any {
		return map[string]any{"domain": domain, "component": "a-c", "port": 80}
	}

	var betaRule struct{ ID string }
	s.mustAs(beta, 201, "POST", rules("beta"), map[string]any{"domain": "a.example", "component": "b-c", "port": 80}).json(t, &betaRule)

	wantTaken(t, "alpha's rule for beta's domain", s.do(alpha, "POST", rules("alpha"), rule("a.example")), "beta")
	wantTaken(t, "alpha's wildcard rule over beta's domain", s.do(alpha, "POST", rules("alpha"), rule("*.example")), "beta")
	autoTLS := rule("a.example")
	autoTLS["auto_tls"] = true
	wantTaken(t, "alpha's auto_tls rule for beta's domain", s.do(alpha, "POST", rules("alpha"), autoTLS), "beta")
	cert, key := certFor(t, "a.example")
	wantTaken(t, "alpha's certificate for beta's domain", s.do(alpha, "POST", certs("alpha"), map[string]any{"name": "steal", "certificate": cert, "key": key}), "beta")
	cert, key = certFor(t, "mine.alpha.test", "*.example")
	wantTaken(t, "alpha's wildcard certificate covering beta's domain", s.do(alpha, "POST", certs("alpha"), map[string]any{"name": "wild", "certificate": cert, "key": key}), "beta")
	// The refused certificate claimed none of its names.
	s.mustAs(alpha, 201, "POST", rules("alpha"), rule("mine.alpha.test"))

	// Default domains are their component's team's, claimed or not.
	wantTaken(t, "alpha's rule for beta's default domain", s.do(alpha, "POST", rules("alpha"), rule("b-c-80-beta.berth.test")), "beta")
	wantTaken(t, "alpha's rule for a default domain of a component beta has not made yet", s.do(alpha, "POST", rules("alpha"), rule("later-8080-beta.berth.test")), "beta")
	wantTaken(t, "alpha's rule over every default domain", s.do(alpha, "POST", rules("alpha"), rule("*.berth.test")), "")
	cert, key = certFor(t, "b-c-80-beta.berth.test")
	wantTaken(t, "alpha's certificate for beta's default domain", s.do(alpha, "POST", certs("alpha"), map[string]any{"name": "dflt", "certificate": cert, "key": key}), "beta")
	s.mustAs(alpha, 201, "POST", rules("alpha"), rule("a-c-80-alpha.berth.test"))

	// Beta cannot move its rule onto alpha's domain either.
	wantTaken(t, "beta's rule moved to alpha's domain", s.do(beta, "PATCH", rules("beta")+"/"+betaRule.ID, map[string]any{"domain": "mine.alpha.test"}), "alpha")

	// The gateway routes a.example to beta (no instance runs: not an
	// unknown host).
	waitRouted(s, "http://a.example/", true)

	// Only a platform admin reassigns.
	if r := s.do(alpha, "PUT", "/api/v1/domains/a.example", map[string]any{"team": "alpha"}); r.Status != 403 {
		t.Fatalf("a team token reassigned a domain: %d %s", r.Status, r.Body)
	}
	if r := s.do(beta, "GET", "/api/v1/domains", nil); r.Status != 403 {
		t.Fatalf("a team token listed every team's domains: %d %s", r.Status, r.Body)
	}
	s.must(200, "PUT", "/api/v1/domains/a.example", map[string]any{"team": "alpha"})
	var claim struct{ Domain, Team string }
	s.must(200, "GET", "/api/v1/domains/a.example", nil).json(t, &claim)
	if claim.Team != "alpha" {
		t.Fatalf("after reassign: %+v", claim)
	}
	// Beta's old rule stays stored but is no longer served.
	waitRouted(s, "http://a.example/", false)
	s.mustAs(alpha, 201, "POST", rules("alpha"), rule("a.example"))
	wantTakenBy := s.do(beta, "POST", rules("beta"), map[string]any{"domain": "a.example", "component": "b-c", "port": 80})
	if wantTakenBy.Status != 409 || wantTakenBy.errorCode() != "domain_taken" {
		t.Errorf("beta's rule after the reassign: %d %s", wantTakenBy.Status, wantTakenBy.Body)
	}
	waitRouted(s, "http://a.example/", true)
	if r := s.do(s.token, "PUT", "/api/v1/domains/b-c-80-beta.berth.test", map[string]any{"team": "alpha"}); r.Status != 422 {
		t.Errorf("a default domain given to another team: %d %s", r.Status, r.Body)
	}
	if r := s.do(s.token, "PUT", "/api/v1/domains/x.example", map[string]any{"team": "nope"}); r.Status != 422 {
		t.Errorf("reassign to a team that does not exist: %d %s", r.Status, r.Body)
	}
	s.must(204, "DELETE", "/api/v1/domains/mine.alpha.test", nil)
	s.must(404, "GET", "/api/v1/domains/mine.alpha.test", nil)
}

// waitRouted waits until the gateway routes url (routed) or answers it as
// an unknown host (!routed). No instance runs: a routed url fails too,
// for another cause.
func waitRouted(s *server, url string, routed bool) {
	s.t.Helper()
	gw := s.gatewayClient(nil)
	deadline := time.Now().Add(15 * time.Second)
	var last gatewayAnswer
	for time.Now().Before(deadline) {
		last = s.gatewayDo(gw, "GET", url, nil)
		if (last.Header.Get("X-Berth-Error") != "unknown host") == routed {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	s.t.Fatalf("%s through the gateway: %d %v %q, want routed=%v", url, last.Status, last.Header, last.Body, routed)
}

// hostAddress is an address of this machine that is not loopback (the
// test only names it; nothing is sent to it).
func hostAddress(t *testing.T) string {
	t.Helper()
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range addrs {
		if n, ok := a.(*net.IPNet); ok && n.IP.To4() != nil && !n.IP.IsLoopback() {
			return n.IP.String()
		}
	}
	t.Skip("this machine has no non-loopback IPv4 address")
	return ""
}

// A thirdparty endpoint (and through it an HTTP or TCP rule) cannot point
// at the host's loopback, link-local, own or berth-internal addresses; a
// platform admin can allow a range.
func TestEndpointsCannotReachTheHost(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	loopback := ln.Addr().String()
	_, port, _ := net.SplitHostPort(loopback)

	s := startServer(t, noEndpointAllowance)
	setupShop(s)
	dev := s.teamToken("shop", "developer")
	create := func(alias string, endpoints ...string) response {
		return s.do(dev, "POST", comps, map[string]any{"alias": alias, "kind": "thirdparty", "endpoints": endpoints,
			"ports": []any{map[string]any{"port": 80, "protocol": "tcp", "inner": true}}})
	}
	for _, ep := range []string{
		loopback, "localhost:" + port, "[::1]:" + port, "[::ffff:127.0.0.1]:" + port, "0.0.0.0:" + port,
		"169.254.169.254:80", net.JoinHostPort(hostAddress(t), port), "10.213.0.1:80", "10.214.0.7:80",
	} {
		r := create("bad", "192.0.2.10:80", ep)
		if r.Status != 422 || r.errorCode() != "endpoint_not_allowed" ||
			!strings.Contains(r.errorMessage(), "endpoints[1]") || !strings.Contains(r.errorMessage(), "--allow-endpoint-cidr") {
			t.Errorf("endpoint %s: %d %s, want 422 endpoint_not_allowed naming endpoints[1] and --allow-endpoint-cidr", ep, r.Status, r.Body)
		}
	}
	var ok struct {
		EndpointKey string `json:"endpoint_key"`
	}
	r := create("ext", "192.0.2.10:80")
	if r.Status != 201 {
		t.Fatalf("an outside endpoint: %d %s", r.Status, r.Body)
	}
	r.json(t, &ok)
	if r := s.do(dev, "PATCH", comps+"/ext", map[string]any{"endpoints": []string{loopback}}); r.Status != 422 || r.errorCode() != "endpoint_not_allowed" {
		t.Errorf("PATCH to loopback: %d %s", r.Status, r.Body)
	}
	// Registration with the component's key is checked alike.
	reg := s.do(ok.EndpointKey, "PUT", comps+"/ext/endpoints", map[string]any{"endpoints": []string{"169.254.169.254:80"}})
	if reg.Status != 422 || reg.errorCode() != "endpoint_not_allowed" {
		t.Errorf("registered link-local endpoint: %d %s", reg.Status, reg.Body)
	}
	// A TCP rule cannot take a port outside the gateway's range (berth's
	// own listeners live outside it).
	_, apiPort, _ := net.SplitHostPort(s.addr)
	if r := s.do(dev, "POST", "/api/v1/teams/shop/tcp-rules", map[string]any{"component": "ext", "port": 80, "gateway_port": atoi(t, apiPort)}); r.Status != 422 {
		t.Errorf("a TCP rule on berth's API port: %d %s", r.Status, r.Body)
	}

	// The admin allows loopback: it is accepted, link-local still not.
	t.Setenv("BERTH_ALLOW_ENDPOINT_CIDR", "127.0.0.0/8")
	allowed := startServer(t, noEndpointAllowance)
	setupShop(allowed)
	if r := allowed.do(allowed.token, "POST", comps, map[string]any{"alias": "local", "kind": "thirdparty", "endpoints": []string{loopback}}); r.Status != 201 {
		t.Errorf("loopback inside an allowed range: %d %s", r.Status, r.Body)
	}
	if r := allowed.do(allowed.token, "POST", comps, map[string]any{"alias": "meta", "kind": "thirdparty", "endpoints": []string{"169.254.169.254:80"}}); r.Status != 422 {
		t.Errorf("link-local outside the allowed range: %d %s", r.Status, r.Body)
	}
}

func atoi(t *testing.T, s string) int {
	t.Helper()
	var n int
	for _, c := range s {
		if c < '0' || c > '9' {
			t.Fatalf("not a number: %q", s)
		}
		n = n*10 + int(c-'0')
	}
	return n
}

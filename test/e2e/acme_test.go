package e2e

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/berth-platform/berth/internal/gateway/acme/pebbletest"
)

// A rule with auto_tls gets a certificate from an ACME server (Pebble on
// loopback, validating HTTP-01 on berth's gateway), kept as the team's
// certificate "acme-<domain>", and the gateway serves it by SNI with no
// restart. Wildcard domains cannot be validated over HTTP-01 and are
// refused up front.
func TestGatewayACMECertificate(t *testing.T) {
	// Pebble must know the port it validates on before berth starts, so
	// the gateway's plain-HTTP port is chosen here.
	httpPort := pebbletest.FreePort(t)
	p := pebbletest.Start(t, pebbletest.Options{HTTPPort: httpPort})
	caFile := filepath.Join(t.TempDir(), "pebble-https-ca.pem")
	if err := os.WriteFile(caFile, p.CAPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	gwHTTP := fmt.Sprintf("127.0.0.1:%d", httpPort)
	s := startServer(t, "--http", gwHTTP,
		"--acme-directory", p.DirURL, "--acme-ca", caFile, "--acme-email", "ops@berth.test")
	s.gatewayHTTP = gwHTTP
	t.Cleanup(func() {
		// Before berth stops and its data directory goes (cleanups run
		// last-registered first); Pebble's log follows from its harness.
		if t.Failed() {
			logged, _ := os.ReadFile(filepath.Join(s.data, "logs", "berth.log"))
			t.Logf("berth output:\n%s\nberth.log:\n%s", s.out, tailString(string(logged), 8000))
		}
	})
	setupShop(s)
	// Never deployed: the certificate needs no running instance, only a
	// rule, which needs a component and a port.
	s.must(201, "POST", comps, map[string]any{
		"alias": "web", "image": "busybox",
		"ports": []map[string]any{{"port": 8080, "protocol": "http"}},
	})

	// A wildcard is refused, whether asked for at creation or later.
	r := s.must(422, "POST", "/api/v1/teams/shop/http-rules", map[string]any{"domain": "*.wild.berth.test", "component": "web", "port": 8080, "auto_tls": true})
	if !strings.Contains(strings.ToLower(r.errorMessage()), "wildcard") {
		t.Errorf("wildcard auto_tls refused without saying why: %s", r.Body)
	}
	var wild struct{ ID string }
	s.must(201, "POST", "/api/v1/teams/shop/http-rules", map[string]any{"domain": "*.wild.berth.test", "component": "web", "port": 8080}).json(t, &wild)
	r = s.must(422, "PATCH", "/api/v1/teams/shop/http-rules/"+wild.ID, map[string]any{"auto_tls": true})
	if !strings.Contains(strings.ToLower(r.errorMessage()), "wildcard") {
		t.Errorf("wildcard auto_tls refused on update without saying why: %s", r.Body)
	}

	const domain = "secure.berth.test"
	start := time.Now()
	s.must(201, "POST", "/api/v1/teams/shop/http-rules", map[string]any{"domain": domain, "component": "web", "port": 8080, "auto_tls": true})

	type certView struct {
		Name     string
		Domains  []string
		Source   string
		NotAfter time.Time `json:"not_after"`
	}
	var issued *certView
	deadline := time.Now().Add(60 * time.Second)
	for issued == nil {
		var list struct{ Items []certView }
		s.must(200, "GET", "/api/v1/teams/shop/certificates", nil).json(t, &list)
		for _, c := range list.Items {
			if c.Name == "acme-"+domain {
				issued = &c
			}
		}
		if issued == nil {
			if time.Now().After(deadline) {
				t.Fatalf("no certificate acme-%s within 60s; team certificates: %+v", domain, list.Items)
			}
			time.Sleep(250 * time.Millisecond)
		}
	}
	t.Logf("certificate stored %v after the rule", time.Since(start).Round(time.Millisecond))
	if issued.Source != "acme" || !slices.Equal(issued.Domains, []string{domain}) || time.Until(issued.NotAfter) < 30*24*time.Hour {
		t.Errorf("stored certificate: %+v", *issued)
	}
	// Only the one rule with auto_tls has one.
	var all struct{ Items []certView }
	s.must(200, "GET", "/api/v1/teams/shop/certificates", nil).json(t, &all)
	if len(all.Items) != 1 {
		t.Errorf("team certificates: %+v, want only acme-%s", all.Items, domain)
	}

	// The gateway serves it by SNI, chained to Pebble's issuance root. The
	// store wakes the gateway, which picks it up within a moment.
	root := p.Root(t)
	roots := x509.NewCertPool()
	roots.AddCert(root)
	var state tls.ConnectionState
	deadline = time.Now().Add(10 * time.Second)
	for {
		conn, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", s.gatewayHTTPS,
			&tls.Config{ServerName: domain, RootCAs: roots})
		if err == nil {
			state = conn.ConnectionState()
			conn.Close()
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("TLS handshake with the gateway as %s: %v", domain, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	leaf := state.PeerCertificates[0]
	if err := leaf.VerifyHostname(domain); err != nil {
		t.Errorf("served leaf: %v", err)
	}
	chains := state.VerifiedChains
	if len(chains) == 0 || !chains[0][len(chains[0])-1].Equal(root) {
		t.Errorf("served chain does not end at Pebble's root: %d chains", len(chains))
	}
	if leaf.Issuer.CommonName == "" || leaf.Issuer.CommonName == leaf.Subject.CommonName {
		t.Errorf("served leaf looks self-signed: issuer %q", leaf.Issuer)
	}

	// The request itself is routed: with no instance it is the gateway's
	// 503, which proves the HTTPS listener used the rule.
	a := s.gatewayDo(s.gatewayClient(roots), "GET", "https://"+domain+"/", map[string]string{"Accept": "application/json"})
	if a.Status != 503 || a.Header.Get("X-Berth-Error") != "no ready instance" {
		t.Errorf("https://%s/: %d %q %s", domain, a.Status, a.Header.Get("X-Berth-Error"), a.Body)
	}
}

func tailString(s string, n int) string {
	if len(s) <= n {
		return s
	}
	s = s[len(s)-n:]
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		return s[i+1:]
	}
	return s
}

package e2e

import (
	"bufio"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// gatewayClient talks to berth's gateway on loopback whatever the domain:
// the Host header (or SNI) picks the route, the address stays the test's.
func (s *server) gatewayClient(tlsRoots *x509.CertPool) *http.Client {
	dial := func(network, addr string) (net.Conn, error) {
		target := s.gatewayHTTP
		if strings.HasSuffix(addr, ":443") {
			target = s.gatewayHTTPS
		}
		return net.DialTimeout("tcp", target, 5*time.Second)
	}
	return &http.Client{
		Timeout: 20 * time.Second,
		Transport: &http.Transport{
			Dial:            dial,
			TLSClientConfig: &tls.Config{RootCAs: tlsRoots},
		},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

type gatewayAnswer struct {
	Status int
	Header http.Header
	Body   string
}

func (s *server) gatewayDo(c *http.Client, method, url string, header map[string]string) gatewayAnswer {
	s.t.Helper()
	req, err := http.NewRequest(method, url, nil)
	if err != nil {
		s.t.Fatal(err)
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := c.Do(req)
	if err != nil {
		s.t.Fatalf("%s %s through the gateway: %v", method, url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return gatewayAnswer{resp.StatusCode, resp.Header, string(b)}
}

// A user publishes a component through the gateway and, when it cannot be
// reached, the gateway says why: 404 unknown host, 502 nothing listens,
// 504 too slow, 503 stopped; TCP ports, TLS with an uploaded certificate,
// weights, metrics and the access log.
func TestGatewayPublishesAndExplains(t *testing.T) {
	requireRuntime(t)
	image := pushBusybox(t)
	var s *server
	flags := runtimeFlags(t, func() string { return s.data })
	// Below the kernel's ephemeral range (32768-), where an outgoing
	// connection could hold the port.
	lo := 20000 + int(time.Now().UnixNano()%5000)*2
	flags = append(flags, "--tcp-ports", fmt.Sprintf("%d-%d", lo, lo+1))
	s = startServer(t, flags...)
	if !strings.Contains(s.out.String(), "✓ gateway") {
		t.Fatalf("no gateway phase:\n%s", s.out)
	}
	setupShop(s)
	// httpd on 8080 (http), the same files on 8081 (published as TCP), a
	// listener on 9000 that never answers, and nothing on 9090.
	script := "mkdir -p /www/api && echo hello from $HOSTNAME > /www/index.html && echo api > /www/api/index.html; " +
		"httpd -p 8081 -h /www; (while true; do sleep 30 | nc -l -p 9000; done) & exec httpd -f -p 8080 -h /www"
	s.must(201, "POST", comps, map[string]any{
		"alias": "web", "image": image, "instances": 1, "memory": "64Mi",
		"cmd": []string{"sh", "-c", script},
		"ports": []map[string]any{
			{"port": 8080, "protocol": "http", "outer": true},
			{"port": 9090, "protocol": "http", "outer": true},
			{"port": 9000, "protocol": "http"},
			{"port": 8081, "protocol": "tcp"},
		},
		"readiness": map[string]any{"type": "http", "port": 8080, "path": "/", "period_seconds": 1},
	})
	if ev := s.action("web", "deploy", nil); ev["status"] != "success" {
		t.Fatalf("deploy: %v", ev)
	}
	c := s.gatewayClient(nil)
	host := "http://web-8080-shop.berth.test"

	// The default domain answers at once, and the component lists it.
	a := s.gatewayDo(c, "GET", host+"/", nil)
	if a.Status != 200 || !strings.Contains(a.Body, "hello from web-") || a.Header.Get("X-Request-Id") == "" {
		t.Fatalf("default domain: %d %q %v", a.Status, a.Body, a.Header)
	}
	var view struct {
		Ports []struct {
			Port       int
			Domains    []string
			URLs       []string
			TCPAddress string `json:"tcp_address"`
		}
	}
	s.must(200, "GET", comps+"/web", nil).json(t, &view)
	if len(view.Ports) != 4 || len(view.Ports[0].Domains) != 1 || view.Ports[0].Domains[0] != "web-8080-shop.berth.test" {
		t.Fatalf("published ports in the component view: %+v", view.Ports)
	}

	// A new domain answers within milliseconds of the API's answer.
	s.must(201, "POST", "/api/v1/teams/shop/http-rules", map[string]any{"domain": "fast.berth.test", "component": "web", "port": 8080})
	created := time.Now()
	for s.gatewayDo(c, "GET", "http://fast.berth.test/", nil).Status != 200 {
		if time.Since(created) > 2*time.Second {
			t.Fatalf("a new rule did not take effect within 2s")
		}
		time.Sleep(2 * time.Millisecond)
	}
	t.Logf("a new HTTP rule answered %s after the API created it (target 50 ms)", time.Since(created).Round(time.Millisecond))

	// 404: no component at that host.
	a = s.gatewayDo(c, "GET", "http://nothing.berth.test/", map[string]string{"Accept": "application/json"})
	if a.Status != 404 || a.Header.Get("X-Berth-Error") != "unknown host" || !strings.Contains(a.Body, "nothing.berth.test") {
		t.Errorf("unknown host: %d %v %s", a.Status, a.Header.Get("X-Berth-Error"), a.Body)
	}
	// 502: the port is published but nothing listens on it; the HTML page
	// names the component and the advice.
	a = s.gatewayDo(c, "GET", "http://web-9090-shop.berth.test/", map[string]string{"Accept": "text/html"})
	if a.Status != 502 || a.Header.Get("X-Berth-Error") != "connection refused" || !strings.Contains(a.Body, "shop/web") || !strings.Contains(a.Body, "0.0.0.0") {
		t.Errorf("refused: %d %v %s", a.Status, a.Header.Get("X-Berth-Error"), a.Body)
	}

	// Rules: a path prefix with rewrite and a read timeout (504), header
	// routing, and the longest prefix wins.
	rule := func(body map[string]any) {
		s.must(201, "POST", "/api/v1/teams/shop/http-rules", body)
	}
	rule(map[string]any{"domain": "shop.berth.test", "path": "/", "component": "web", "port": 8080})
	rule(map[string]any{"domain": "shop.berth.test", "path": "/v1", "component": "web", "port": 8080, "rewrite_path": "/api"})
	rule(map[string]any{"domain": "shop.berth.test", "path": "/slow", "component": "web", "port": 9000, "read_timeout": 1})
	rule(map[string]any{"domain": "shop.berth.test", "path": "/", "component": "web", "port": 9090, "headers": map[string]string{"X-Canary": "1"}})
	time.Sleep(100 * time.Millisecond) // the API wakes the gateway; well under this
	if a = s.gatewayDo(c, "GET", "http://shop.berth.test/v1/", nil); a.Status != 200 || strings.TrimSpace(a.Body) != "api" {
		t.Errorf("rewrite /v1 -> /api: %d %q", a.Status, a.Body)
	}
	start := time.Now()
	a = s.gatewayDo(c, "GET", "http://shop.berth.test/slow", map[string]string{"Accept": "application/json"})
	if a.Status != 504 || a.Header.Get("X-Berth-Error") != "upstream timeout" || time.Since(start) > 10*time.Second {
		t.Errorf("slow upstream: %d %v after %s: %s", a.Status, a.Header.Get("X-Berth-Error"), time.Since(start), a.Body)
	}
	if a = s.gatewayDo(c, "GET", "http://shop.berth.test/", map[string]string{"X-Canary": "1"}); a.Status != 502 {
		t.Errorf("header route: %d %q", a.Status, a.Body)
	}

	// The component's recent gateway errors, newest first, name each cause.
	var errs struct {
		Items []struct {
			Status int
			Cause  string
		}
	}
	s.must(200, "GET", comps+"/web/gateway-errors", nil).json(t, &errs)
	if len(errs.Items) != 3 || errs.Items[0].Cause != "connection refused" || errs.Items[1].Cause != "upstream timeout" || errs.Items[2].Cause != "connection refused" {
		t.Errorf("recent gateway errors: %+v", errs.Items)
	}

	// TCP: opening an outer tcp port gets a gateway port from the range.
	s.must(200, "PATCH", comps+"/web/ports/8081", map[string]any{"outer": true})
	s.must(200, "GET", comps+"/web", nil).json(t, &view)
	var tcpAddr string
	for _, p := range view.Ports {
		if p.Port == 8081 {
			tcpAddr = p.TCPAddress
		}
	}
	if !strings.HasSuffix(tcpAddr, fmt.Sprint(":", lo)) {
		t.Fatalf("tcp address of port 8081: %q (range %d-%d)", tcpAddr, lo, lo+1)
	}
	// The API wakes the gateway's sync; the port opens a moment later.
	var conn net.Conn
	var err error
	for deadline := time.Now().Add(3 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		if conn, err = net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", lo), 5*time.Second); err == nil || time.Now().After(deadline) {
			break
		}
	}
	if err != nil {
		t.Fatalf("the TCP gateway port did not open: %v", err)
	}
	fmt.Fprintf(conn, "GET / HTTP/1.0\r\n\r\n")
	raw, _ := io.ReadAll(bufio.NewReader(conn))
	conn.Close()
	if !strings.Contains(string(raw), "hello from web-") {
		t.Errorf("through the TCP port: %q", raw)
	}
	// The range has two ports: the second outer tcp port takes the last,
	// the third is refused with how to widen the range.
	s.must(201, "POST", comps+"/web/ports", map[string]any{"port": 7001, "protocol": "tcp", "outer": true})
	r := s.must(409, "POST", comps+"/web/ports", map[string]any{"port": 7002, "protocol": "tcp", "outer": true})
	if !strings.Contains(r.errorMessage(), "--tcp-ports") {
		t.Errorf("exhausted range: %s", r.Body)
	}
	// Closing the outer port frees its gateway port.
	s.must(200, "PATCH", comps+"/web/ports/7001", map[string]any{"outer": false})
	s.must(201, "POST", comps+"/web/ports", map[string]any{"port": 7002, "protocol": "tcp", "outer": true})

	// TLS: an uploaded certificate is picked by SNI, with no restart.
	cert, key := selfSigned(t, "secure.berth.test", time.Now().Add(24*time.Hour))
	s.must(201, "POST", "/api/v1/teams/shop/certificates", map[string]any{"name": "secure", "certificate": cert, "key": key})
	r = s.must(422, "POST", "/api/v1/teams/shop/http-rules", map[string]any{"domain": "other.berth.test", "component": "web", "port": 8080, "certificate": "secure"})
	if !strings.Contains(r.errorMessage(), "secure.berth.test") {
		t.Errorf("a certificate that does not cover the domain: %s", r.Body)
	}
	rule(map[string]any{"domain": "secure.berth.test", "component": "web", "port": 8080, "certificate": "secure", "redirect_https": true})
	time.Sleep(100 * time.Millisecond)
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM([]byte(cert))
	tc := s.gatewayClient(roots)
	if a = s.gatewayDo(tc, "GET", "https://secure.berth.test/", nil); a.Status != 200 || !strings.Contains(a.Body, "hello from web-") {
		t.Errorf("https with the uploaded certificate: %d %q", a.Status, a.Body)
	}
	if a = s.gatewayDo(c, "GET", "http://secure.berth.test/x?y=1", nil); a.Status != 308 || a.Header.Get("Location") != "https://secure.berth.test/x?y=1" {
		t.Errorf("redirect to https: %d %v", a.Status, a.Header)
	}

	// Weights split a domain between two rules (a canary) within tolerance.
	rule(map[string]any{"domain": "canary.berth.test", "component": "web", "port": 8080, "weight": 80})
	rule(map[string]any{"domain": "canary.berth.test", "component": "web", "port": 9090, "weight": 20})
	time.Sleep(100 * time.Millisecond)
	var ok200, bad502 int
	for i := 0; i < 400; i++ {
		switch s.gatewayDo(c, "GET", "http://canary.berth.test/", nil).Status {
		case 200:
			ok200++
		case 502:
			bad502++
		}
	}
	if share := float64(ok200) / 400; share < 0.72 || share > 0.88 || ok200+bad502 != 400 {
		t.Errorf("weights 80/20: %d to the first, %d to the second", ok200, bad502)
	}

	// No ready instance: stopped, the gateway answers 503 and says so.
	if ev := s.action("web", "stop", nil); ev["status"] != "success" {
		t.Fatalf("stop: %v", ev)
	}
	a = s.gatewayDo(c, "GET", host+"/", map[string]string{"Accept": "application/json"})
	var page struct {
		Error struct{ Cause, Component, Advice string }
	}
	_ = json.Unmarshal([]byte(a.Body), &page)
	if a.Status != 503 || page.Error.Cause != "no ready instance" || page.Error.Component != "shop/web" || page.Error.Advice == "" {
		t.Errorf("stopped component: %d %s", a.Status, a.Body)
	}

	s.must(200, "GET", comps+"/web/gateway-errors", nil).json(t, &errs)
	if len(errs.Items) == 0 || errs.Items[0].Cause != "no ready instance" || errs.Items[0].Status != 503 {
		t.Errorf("recent gateway errors after the stop: %+v", errs.Items[:min(3, len(errs.Items))])
	}
	// Metrics per route and a JSON access log carry the same causes.
	metrics := string(s.must(200, "GET", "/metrics", nil).Body)
	for _, want := range []string{`berth_gateway_requests_total{code="503",component="shop/web"`, "berth_gateway_request_duration_seconds_bucket", `direction="out"`} {
		if !strings.Contains(metrics, want) {
			t.Errorf("metrics lack %s", want)
		}
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		b, _ := os.ReadFile(filepath.Join(s.data, "logs", "gateway-access.log"))
		if strings.Contains(string(b), `"cause":"no ready instance"`) {
			var line map[string]any
			first, _, _ := strings.Cut(string(b), "\n")
			if err := json.Unmarshal([]byte(first), &line); err != nil || line["host"] == nil || line["status"] == nil {
				t.Errorf("access log line is not the JSON expected: %s (%v)", first, err)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Errorf("access log lacks the 503:\n%s", b)
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// Instances change under load (scale up, scale down, a rolling deploy)
// and not one request through the gateway fails.
func TestGatewayNoFailedRequestsWhileInstancesChange(t *testing.T) {
	requireRuntime(t)
	image := pushBusybox(t)
	var s *server
	flags := runtimeFlags(t, func() string { return s.data })
	s = startServer(t, flags...)
	setupShop(s)
	s.must(201, "POST", comps, map[string]any{
		"alias": "web", "image": image, "instances": 1, "memory": "64Mi",
		"cmd":       []string{"sh", "-c", "mkdir -p /www && echo hello > /www/index.html && exec httpd -f -p 8080 -h /www"},
		"ports":     []map[string]any{{"port": 8080, "protocol": "http", "outer": true}},
		"readiness": map[string]any{"type": "http", "port": 8080, "path": "/", "period_seconds": 1},
	})
	if ev := s.action("web", "deploy", nil); ev["status"] != "success" {
		t.Fatalf("deploy: %v", ev)
	}
	c := s.gatewayClient(nil)
	var sent, failed atomic.Int64
	var firstFailure atomic.Value
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for w := 0; w < 4; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			// Bounded: at most 20000 requests, and only while the test runs.
			for i := 0; i < 5000; i++ {
				select {
				case <-stop:
					return
				default:
				}
				resp, err := c.Get("http://web-8080-shop.berth.test/")
				sent.Add(1)
				if err != nil {
					failed.Add(1)
					firstFailure.CompareAndSwap(nil, err.Error())
					continue
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != 200 {
					failed.Add(1)
					firstFailure.CompareAndSwap(nil, fmt.Sprintf("%d %s", resp.StatusCode, resp.Header.Get("X-Berth-Error")))
				}
				time.Sleep(2 * time.Millisecond)
			}
		}()
	}
	for _, step := range []struct {
		action string
		body   any
	}{{"scale", map[string]any{"instances": 3}}, {"scale", map[string]any{"instances": 1}}, {"restart", nil}} {
		if ev := s.action("web", step.action, step.body); ev["status"] != "success" {
			t.Fatalf("%s: %v", step.action, ev)
		}
		time.Sleep(500 * time.Millisecond)
	}
	close(stop)
	wg.Wait()
	t.Logf("%d requests while scaling 1→3→1 and restarting, %d failed", sent.Load(), failed.Load())
	if failed.Load() != 0 || sent.Load() < 100 {
		t.Fatalf("%d of %d requests failed; first: %v", failed.Load(), sent.Load(), firstFailure.Load())
	}
}

package e2e

import (
	"strings"
	"testing"
	"time"
)

// An app that listens on another port than the component declares is
// told so, from what its instance really listens on: in the instance's
// message when the readiness probe is refused, and on the gateway's 502
// page when a ready instance refuses the published port. An app bound to
// 127.0.0.1 only hears that nothing outside can reach it.
func TestPortMismatchIsExplained(t *testing.T) {
	requireRuntime(t)
	image := pushBusybox(t)
	var s *server
	flags := runtimeFlags(t, func() string { return s.data })
	s = startServer(t, flags...)
	setupShop(s)
	serve := func(listen string) []string {
		return []string{"sh", "-c", "mkdir -p /www && echo hi > /www/index.html && exec httpd -f -p " + listen + " -h /www"}
	}
	tcpProbe := map[string]any{"type": "tcp", "port": 8080, "period_seconds": 1}
	for _, c := range []struct {
		alias, listen string
		readiness     map[string]any
	}{
		{"wrongport", "5000", tcpProbe},
		{"loopback", "127.0.0.1:8080", tcpProbe},
		// Ready by its own check, so the gateway sends it traffic.
		{"edge", "5000", map[string]any{"type": "exec", "command": []string{"true"}, "period_seconds": 1}},
	} {
		s.must(201, "POST", comps, map[string]any{
			"alias": c.alias, "image": image, "instances": 1, "memory": "32Mi", "cmd": serve(c.listen),
			"ports":     []map[string]any{{"port": 8080, "protocol": "http", "outer": true}},
			"readiness": c.readiness,
		})
		// Not waited for: a deploy whose probe never passes ends minutes later.
		s.must(202, "POST", comps+"/"+c.alias+"/deploy", nil)
	}

	waitMessage := func(alias, want string) {
		t.Helper()
		s.waitComponent(alias, 2*time.Minute, func(c componentState) bool {
			return len(c.Instances) == 1 && strings.Contains(c.Instances[0].Message, want)
		})
	}
	waitMessage("wrongport", "the app listens on 5000, not on 8080: set the component's port to 5000, or make the app listen on $PORT")
	waitMessage("loopback", "listens on 8080 only on 127.0.0.1 inside the container, so nothing outside can reach it: make it listen on 0.0.0.0")

	// Never ready, so the gateway answers 503: it says the same.
	gw := s.gatewayClient(nil)
	if a := s.gatewayDo(gw, "GET", "http://wrongport-8080-shop.berth.test/", map[string]string{"Accept": "application/json"}); a.Status != 503 ||
		!strings.Contains(a.Body, "the app listens on 5000, not on 8080") {
		t.Errorf("gateway for a never-ready instance on the wrong port: %d %s", a.Status, a.Body)
	}

	s.waitComponent("edge", 2*time.Minute, func(c componentState) bool {
		return len(c.Instances) == 1 && c.Instances[0].Status == "running"
	})
	var a gatewayAnswer
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		a = s.gatewayDo(gw, "GET", "http://edge-8080-shop.berth.test/", map[string]string{"Accept": "application/json"})
		if a.Status == 502 {
			break
		}
		time.Sleep(300 * time.Millisecond)
	}
	if a.Status != 502 || a.Header.Get("X-Berth-Error") != "connection refused" ||
		!strings.Contains(a.Body, "the app listens on 5000, not on 8080") {
		t.Fatalf("gateway for a ready instance on the wrong port: %d %q %s", a.Status, a.Header.Get("X-Berth-Error"), a.Body)
	}
	html := s.gatewayDo(gw, "GET", "http://edge-8080-shop.berth.test/", map[string]string{"Accept": "text/html"})
	if !strings.Contains(html.Body, "listens on 5000, not on 8080") {
		t.Errorf("the HTML 502 page lacks the port: %s", html.Body)
	}
}

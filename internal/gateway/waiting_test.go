package gateway

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"
)

// A component held back by its dependencies answers a 503 that names them,
// in JSON and in the browser page; one that only has no ready instance
// keeps the general page.
func TestWaitingComponentNamesItsDependencies(t *testing.T) {
	p := NewProxy(0)
	defer p.Close()
	p.SetRoutes([]Route{
		{Domain: "waits.test", Component: "shop/web", Port: 80, Upstreams: addrs(), WaitingFor: []string{"db", "cache"}},
		{Domain: "down.test", Component: "shop/api", Port: 80, Upstreams: addrs()},
	})
	w := get(t, p, "waits.test", "application/json")
	var body struct{ Error Failure }
	if err := json.Unmarshal(w.Body.Bytes(), &body); err != nil || w.Code != 503 {
		t.Fatalf("waiting component: %d %s", w.Code, w.Body)
	}
	f := body.Error
	if !strings.Contains(f.Message, "dependencies") || !strings.Contains(f.Message, "db, cache") || !slices.Equal(f.WaitingFor, []string{"db", "cache"}) {
		t.Errorf("503 of a waiting component: %+v", f)
	}
	if html := get(t, p, "waits.test", "text/html").Body.String(); !strings.Contains(html, "db, cache") {
		t.Errorf("browser page does not name the dependencies:\n%s", html)
	}
	if w := get(t, p, "down.test", "application/json"); strings.Contains(w.Body.String(), "waits for its dependencies") {
		t.Errorf("a component that waits for nothing: %s", w.Body)
	}
}

package gateway

import (
	"encoding/json"
	"strings"
	"testing"
	"time"
)

// A refused upstream whose route knows what the instance listens on says
// it on the 502 page (JSON and HTML), for that very upstream.
func TestRefusedPageSaysWhatTheInstanceListensOn(t *testing.T) {
	closed := closedAddr(t)
	const hint = "the app listens on 5000, not on 8080: set the component's port to 5000, or make the app listen on $PORT"
	var asked []string
	p := NewProxy(200 * time.Millisecond)
	defer p.Close()
	p.SetRoutes([]Route{
		{Domain: "hinted.test", Component: "shop/api", Port: 8080, Upstreams: addrs(closed),
			Hint: func(up string) string { asked = append(asked, up); return hint }},
		{Domain: "unknown.test", Component: "shop/api", Port: 8080, Upstreams: addrs(closed),
			Hint: func(string) string { return "" }},
		{Domain: "plain.test", Component: "shop/api", Port: 8080, Upstreams: addrs(closed)},
	})

	w := get(t, p, "hinted.test", "application/json")
	var body struct{ Error Failure }
	if err := json.Unmarshal(w.Body.Bytes(), &body); err != nil {
		t.Fatal(err)
	}
	if w.Code != 502 || body.Error.Cause != CauseRefused || !strings.Contains(body.Error.Message, hint) {
		t.Fatalf("hinted: %d %s", w.Code, w.Body)
	}
	if len(asked) != 1 || asked[0] != closed {
		t.Errorf("hint asked for %v, want the refused upstream %s", asked, closed)
	}
	html := get(t, p, "hinted.test", "text/html")
	if !strings.Contains(html.Body.String(), "listens on 5000, not on 8080") {
		t.Errorf("the HTML page lacks the hint: %s", html.Body)
	}

	for _, host := range []string{"unknown.test", "plain.test"} {
		w := get(t, p, host, "application/json")
		if w.Code != 502 || !strings.Contains(w.Body.String(), "nothing listens on the published port") {
			t.Errorf("%s: without a hint the general message stays: %d %s", host, w.Code, w.Body)
		}
	}
}

// With the default TCP readiness check an app on the wrong port is never
// ready, so users meet a 503, not a 502: it says the same.
func TestNoReadyPageSaysWhatTheInstanceListensOn(t *testing.T) {
	const hint = "the app listens on 5000, not on 8080: set the component's port to 5000, or make the app listen on $PORT"
	p := NewProxy(200 * time.Millisecond)
	defer p.Close()
	p.SetRoutes([]Route{
		{Domain: "hinted.test", Component: "shop/api", Port: 8080, Upstreams: addrs(), NotReady: func() string { return hint }},
		{Domain: "plain.test", Component: "shop/api", Port: 8080, Upstreams: addrs(), NotReady: func() string { return "" }},
	})
	w := get(t, p, "hinted.test", "application/json")
	if w.Code != 503 || !strings.Contains(w.Body.String(), hint) {
		t.Fatalf("hinted 503: %d %s", w.Code, w.Body)
	}
	if w := get(t, p, "plain.test", "application/json"); w.Code != 503 || !strings.Contains(w.Body.String(), "no instance that is ready") {
		t.Fatalf("503 without a hint: %d %s", w.Code, w.Body)
	}
}

package gateway

import (
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

func get(t *testing.T, h http.Handler, host string, accept string) *httptest.ResponseRecorder {
	t.Helper()
	r := httptest.NewRequest("GET", "http://"+host+"/", nil)
	r.Host = host
	if accept != "" {
		r.Header.Set("Accept", accept)
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return w
}

func TestEveryErrorSaysWhy(t *testing.T) {
	ok := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "hello via "+r.Header.Get("X-Forwarded-Host")+" id="+r.Header.Get("X-Request-Id"))
	}))
	defer ok.Close()
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		time.Sleep(500 * time.Millisecond)
	}))
	defer slow.Close()
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	closed := ln.Addr().String()
	ln.Close()

	p := NewProxy(200 * time.Millisecond)
	up := func(addrs ...string) func() []string { return func() []string { return addrs } }
	p.SetRoutes([]Route{
		{Domain: "ok.test", Component: "shop/web", Port: 80, Upstreams: up(strings.TrimPrefix(ok.URL, "http://"))},
		{Domain: "down.test", Component: "shop/api", Port: 8080, Upstreams: up()},
		{Domain: "refused.test", Component: "shop/api", Port: 8080, Upstreams: up(closed)},
		{Domain: "slow.test", Component: "shop/slow", Port: 80, Upstreams: up(strings.TrimPrefix(slow.URL, "http://"))},
	})

	w := get(t, p, "ok.test", "")
	if w.Code != 200 || !strings.HasPrefix(w.Body.String(), "hello via ok.test id=req-") {
		t.Fatalf("ok: %d %q", w.Code, w.Body)
	}
	for _, tc := range []struct {
		host   string
		status int
		cause  string
	}{
		{"nowhere.test", 404, CauseUnknownHost},
		{"down.test", 503, CauseNoReadyInstance},
		{"refused.test", 502, CauseRefused},
		{"slow.test", 504, CauseTimeout},
	} {
		w := get(t, p, tc.host, "application/json")
		if w.Code != tc.status || w.Header().Get("X-Berth-Error") != tc.cause {
			t.Errorf("%s: %d %q, want %d %q", tc.host, w.Code, w.Header().Get("X-Berth-Error"), tc.status, tc.cause)
			continue
		}
		var body struct{ Error Failure }
		if err := json.Unmarshal(w.Body.Bytes(), &body); err != nil || body.Error.Advice == "" || body.Error.RequestID == "" {
			t.Errorf("%s: body %s", tc.host, w.Body)
		}
		if tc.status != 404 && body.Error.Component == "" {
			t.Errorf("%s: no component named: %s", tc.host, w.Body)
		}
		html := get(t, p, tc.host, "text/html,application/xhtml+xml")
		if !strings.Contains(html.Header().Get("Content-Type"), "text/html") || !strings.Contains(html.Body.String(), tc.cause) {
			t.Errorf("%s: browsers get %q: %s", tc.host, html.Header().Get("Content-Type"), html.Body)
		}
	}
}

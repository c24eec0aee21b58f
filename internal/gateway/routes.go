// Package gateway publishes component ports: an HTTP proxy that routes by
// domain, path prefix and headers with weights, and answers its own errors
// with the cause and the advice.
package gateway

import (
	"math/rand/v2"
	"net/http"
	"sort"
	"strings"
	"sync/atomic"
	"time"
)

// Route sends requests for a domain and path prefix to a component port.
type Route struct {
	ID        string
	Domain    string            // exact host, or "*.example.com"
	Path      string            // prefix; "/" matches everything
	Headers   map[string]string // all must match
	Weight    int               // share among routes with the same domain, path and headers
	Component string            // for error pages and metrics: team/alias
	Port      int
	// Upstreams returns the ready instance addresses (host:port) now.
	Upstreams func() []string
	// Hint, when set, says why an upstream refused the connection (what
	// its instance listens on instead), for the 502 page; "" knows no
	// better.
	Hint func(upstream string) string
	// NotReady, when set, says why no instance is ready when that is a
	// port mismatch (the app listens on another port), for the 503 page;
	// "" knows no better. Nothing else of the instances is told: the page
	// is public.
	NotReady func() string
	// WaitingFor names the dependencies the component waits for before
	// it starts (status waiting), for the 503 page; nil when it does not wait.
	WaitingFor []string

	// RewritePath, when set, replaces the matched Path prefix before the
	// request goes upstream (Path "/api", RewritePath "/" sends /api/x as /x).
	RewritePath string
	Timeouts    Timeouts
	// MaxBodyBytes refuses larger request bodies with 413; 0 means no limit.
	MaxBodyBytes int64
	// Limiter, when set, is asked once per request; a refusal is a 503.
	Limiter *RateLimiter
	// RedirectHTTPS answers plain-HTTP requests with a 308 to https.
	RedirectHTTPS bool
}

// Timeouts bound each phase of a proxied request; zero takes the default.
type Timeouts struct {
	Connect time.Duration // dialling the instance
	Read    time.Duration // waiting for the instance's response headers (504)
	Send    time.Duration // writing the request body to the instance
}

// Table is an immutable routing table; the gateway swaps whole tables so a
// change never races a request.
type Table struct {
	hosts map[string][]*group // domain -> groups, longest path first
}

// group is the routes that share domain, path and headers: one of them is
// picked by weight.
type group struct {
	path    string
	headers map[string]string
	routes  []*Route
	total   int
}

// NewTable builds a table from routes.
func NewTable(routes []Route) *Table {
	t := &Table{hosts: map[string][]*group{}}
	for i := range routes {
		r := &routes[i]
		if r.Path == "" {
			r.Path = "/"
		}
		if r.Weight <= 0 {
			r.Weight = 1
		}
		var g *group
		for _, cand := range t.hosts[r.Domain] {
			if cand.path == r.Path && sameHeaders(cand.headers, r.Headers) {
				g = cand
			}
		}
		if g == nil {
			g = &group{path: r.Path, headers: r.Headers}
			t.hosts[r.Domain] = append(t.hosts[r.Domain], g)
		}
		g.routes = append(g.routes, r)
		g.total += r.Weight
	}
	for _, gs := range t.hosts {
		// Longest prefix wins; among equals, the one with more header
		// conditions is more specific.
		sort.SliceStable(gs, func(i, j int) bool {
			if len(gs[i].path) != len(gs[j].path) {
				return len(gs[i].path) > len(gs[j].path)
			}
			return len(gs[i].headers) > len(gs[j].headers)
		})
	}
	return t
}

func sameHeaders(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

// Match finds the route for a request, or nil.
func (t *Table) Match(r *http.Request) *Route {
	host := strings.ToLower(r.Host)
	if h, _, ok := strings.Cut(host, ":"); ok {
		host = h
	}
	groups := t.hosts[host]
	if groups == nil {
		if _, parent, ok := strings.Cut(host, "."); ok {
			groups = t.hosts["*."+parent]
		}
	}
	for _, g := range groups {
		if !pathHasPrefix(r.URL.Path, g.path) {
			continue
		}
		ok := true
		for k, v := range g.headers {
			if r.Header.Get(k) != v {
				ok = false
				break
			}
		}
		if ok {
			return g.pick()
		}
	}
	return nil
}

// pathHasPrefix matches whole segments: /api matches /api and /api/x, not /apix.
func pathHasPrefix(path, prefix string) bool {
	if prefix == "/" {
		return true
	}
	prefix = strings.TrimSuffix(prefix, "/")
	return path == prefix || strings.HasPrefix(path, prefix+"/")
}

func (g *group) pick() *Route {
	if len(g.routes) == 1 {
		return g.routes[0]
	}
	n := rand.IntN(g.total)
	for _, r := range g.routes {
		if n < r.Weight {
			return r
		}
		n -= r.Weight
	}
	return g.routes[len(g.routes)-1]
}

// tableHolder swaps tables atomically.
type tableHolder struct{ p atomic.Pointer[Table] }

func (h *tableHolder) load() *Table {
	if t := h.p.Load(); t != nil {
		return t
	}
	return NewTable(nil)
}

// Package api is berth's REST API (/api/v1, JSON). Handlers validate input,
// write desired state and events to the store and return at once; the
// worker does the work. One file per resource.
package api

import (
	"log/slog"
	"net/http"
	"runtime/debug"
	"sort"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/berth-platform/berth/internal/build/source"
	"github.com/berth-platform/berth/internal/events"
	"github.com/berth-platform/berth/internal/netguard"
	"github.com/berth-platform/berth/internal/runtime"
	"github.com/berth-platform/berth/internal/store"
	"github.com/berth-platform/berth/internal/worker"
)

// Waker is told when a task is queued (the worker's runner).
type Waker interface{ Wake() }

// Config is what the API needs.
type Config struct {
	Store store.Store
	Log   *events.Log
	Tasks Waker
	// TCPPorts is the gateway port range TCP rules are picked from.
	TCPPortLow, TCPPortHigh int
	// Runtime runs components; nil when no engine is attached.
	Runtime runtime.Driver
	// Health answers /healthz and /readyz; nil means always ready.
	Health HealthFunc
	// Extra routes (e.g. the console) mounted under the same mux.
	Mount map[string]http.Handler
	// Gateway says where published ports are reached; nil when it is off.
	Gateway *GatewayInfo
	// ThirdParty watches thirdparty components' endpoints; nil when no
	// runtime runs.
	ThirdParty *worker.ThirdParty
	// EndpointPolicy says which addresses thirdparty endpoints may name;
	// nil forbids the host's and berth's internal ones and allows no extra.
	EndpointPolicy *netguard.Policy
	// Addresses gives inner addresses with dependencies' connection info.
	Addresses worker.AddressSource
	// Hub is where berth's hub is reached, for the rule that a team uses
	// only its own hub images; nil when there is none.
	Hub *HubInfo
	// PlatformRegistry is the host of the registry builds push to when it
	// is not the hub (--registry): berth's own, so a host address is fine.
	PlatformRegistry string
	// Builds is set when the server builds source components.
	Builds *BuildsInfo
	// Cancel stops a running task by its event id.
	Cancel func(eventID string) bool
	// Collectors are extra Prometheus metrics served on /metrics.
	Collectors []prometheus.Collector
}

// BuildsInfo is what the API needs of the builder.
type BuildsInfo struct {
	// Uploads is a component's upload area.
	Uploads func(componentID string) (*source.Uploads, error)
	// PrepareImages is set when `berth images prepare` can run here.
	PrepareImages bool
	// Forget removes what builds keep of a deleted component (its
	// checkout, its uploads).
	Forget func(componentID string)
}

// HealthFunc reports the readiness of the server's phases.
type HealthFunc func() (ready bool, phases any)

// API is the HTTP handler of the REST API.
type API struct {
	store   store.Store
	log     *events.Log
	tasks   Waker
	cfg     Config
	mux     *http.ServeMux
	metrics *metrics
	routes  []string
}

// New returns the API with every route registered.
func New(cfg Config) *API {
	if cfg.TCPPortLow == 0 {
		cfg.TCPPortLow, cfg.TCPPortHigh = 30000, 30010
	}
	a := &API{store: cfg.Store, log: cfg.Log, tasks: cfg.Tasks, cfg: cfg, mux: http.NewServeMux()}
	a.metrics = newMetrics(cfg.Store, cfg.Collectors...)
	a.registerRoutes()
	for pattern, h := range cfg.Mount {
		a.mux.Handle(pattern, h)
	}
	return a
}

// handlerFunc is a handler that returns its error for writeError.
type handlerFunc func(w http.ResponseWriter, r *http.Request) error

// handle registers an authenticated API route.
func (a *API) handle(pattern string, h handlerFunc) {
	a.routes = append(a.routes, pattern)
	a.mux.HandleFunc(pattern, func(w http.ResponseWriter, r *http.Request) {
		tok, err := a.authenticate(r)
		if err != nil {
			writeError(w, r, err)
			return
		}
		r = r.WithContext(contextWithPrincipal(r.Context(), tok))
		if err := h(w, r); err != nil {
			writeError(w, r, err)
		}
	})
}

// handlePublic registers a route that needs no token.
func (a *API) handlePublic(pattern string, h http.HandlerFunc) {
	a.routes = append(a.routes, pattern)
	a.mux.HandleFunc(pattern, h)
}

// Routes lists every registered pattern ("METHOD /path"), sorted.
func (a *API) Routes() []string {
	out := append([]string(nil), a.routes...)
	sort.Strings(out)
	return out
}

// ServeHTTP adds panic recovery, metrics and an access log around the mux.
func (a *API) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	rec := &statusRecorder{ResponseWriter: w, status: http.StatusOK}
	defer func() {
		if p := recover(); p != nil {
			if p == http.ErrAbortHandler {
				panic(p)
			}
			slog.Error("handler panicked", "method", r.Method, "path", r.URL.Path, "panic", p, "stack", string(debug.Stack()))
			if !rec.wrote {
				writeError(rec, r, errorf(http.StatusInternalServerError, "internal", "internal error in berth; see the server log"))
			}
		}
		route := r.Pattern
		if route == "" {
			route = "unmatched"
		}
		a.metrics.observe(r.Method, route, rec.status, time.Since(start))
		// Any successful write may change what the gateway publishes
		// (ports, rules, certificates, components); it resyncs at once.
		if r.Method != http.MethodGet && rec.status < 400 && a.cfg.Gateway != nil && a.cfg.Gateway.Changed != nil {
			a.cfg.Gateway.Changed()
		}
		if strings.HasPrefix(r.URL.Path, "/api/") {
			slog.Debug("request", "method", r.Method, "path", r.URL.Path, "status", rec.status, "duration", time.Since(start))
		}
	}()
	a.mux.ServeHTTP(rec, r)
}

// unmatched answers API paths no route takes, in JSON like every API error.
func (a *API) unmatched(w http.ResponseWriter, r *http.Request) {
	var allowed []string
	for _, m := range []string{http.MethodGet, http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete} {
		probe := r.Clone(r.Context())
		probe.Method = m
		if _, pattern := a.mux.Handler(probe); pattern != "/api/" && pattern != "" {
			allowed = append(allowed, m)
		}
	}
	if len(allowed) > 0 {
		w.Header().Set("Allow", strings.Join(allowed, ", "))
		writeError(w, r, errorf(http.StatusMethodNotAllowed, "method_not_allowed", "%s is not allowed on %s; use %s", r.Method, r.URL.Path, strings.Join(allowed, ", ")))
		return
	}
	writeError(w, r, notFound("no API route %s %s; see /api/v1/openapi.json", r.Method, r.URL.Path))
}

type statusRecorder struct {
	http.ResponseWriter
	status int
	wrote  bool
}

func (s *statusRecorder) WriteHeader(code int) {
	if !s.wrote {
		s.status, s.wrote = code, true
	}
	s.ResponseWriter.WriteHeader(code)
}

func (s *statusRecorder) Write(b []byte) (int, error) {
	s.wrote = true
	return s.ResponseWriter.Write(b)
}

// Flush lets event streams through the recorder.
func (s *statusRecorder) Flush() {
	if f, ok := s.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

// Unwrap lets http.ResponseController and WebSocket hijacking reach the
// connection.
func (s *statusRecorder) Unwrap() http.ResponseWriter { return s.ResponseWriter }

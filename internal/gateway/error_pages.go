package gateway

import (
	"embed"
	"encoding/json"
	"html/template"
	"net/http"
	"strconv"
	"strings"
)

//go:embed pages/error.html
var pageFS embed.FS

var errorPage = template.Must(template.ParseFS(pageFS, "pages/error.html"))

// Failure is why the gateway answered instead of a component.
type Failure struct {
	Status    int    `json:"status"`
	Cause     string `json:"cause"` // also the X-Berth-Error header
	Title     string `json:"title"`
	Message   string `json:"message"`
	Advice    string `json:"advice"`
	Component string `json:"component,omitempty"`
	Port      int    `json:"port,omitempty"`
	// WaitingFor names the dependencies a waiting component waits for.
	WaitingFor []string `json:"waiting_for,omitempty"`
	RequestID  string   `json:"request_id,omitempty"`
}

// Causes the gateway names, as the seed guide's troubleshooting does.
const (
	CauseUnknownHost     = "unknown host"
	CauseNoReadyInstance = "no ready instance"
	CauseRefused         = "connection refused"
	CauseReset           = "connection reset"
	CauseTimeout         = "upstream timeout"
	CauseRateLimited     = "rate limited"
	CauseBodyTooLarge    = "request body too large"
)

func unknownHost(host string) Failure {
	return Failure{Status: http.StatusNotFound, Cause: CauseUnknownHost, Title: "No such site",
		Message: "No component is published at " + host + ".",
		Advice:  "check the address, or add an HTTP rule for this domain (berth rule http add " + host + " --component ALIAS --port PORT)."}
}

func noReadyInstance(r *Route) Failure {
	if len(r.WaitingFor) > 0 {
		return waitingForDependencies(r)
	}
	f := Failure{Status: http.StatusServiceUnavailable, Cause: CauseNoReadyInstance, Title: "No ready instance",
		Message:   "The component has no instance that is ready to serve: it is stopped, still starting or deploying, or every instance fails its readiness check.",
		Advice:    "look at its status and instances (berth instances " + alias(r) + "); start it, wait for the deploy, or fix what the instances' messages name.",
		Component: r.Component, Port: r.Port}
	if r.NotReady != nil {
		if why := r.NotReady(); why != "" {
			f.Message = "No instance is ready: " + why + "."
		}
	}
	return f
}

// waitingForDependencies is the 503 of a component held back until the
// components it depends on are ready: they, not it, need looking at.
func waitingForDependencies(r *Route) Failure {
	names := strings.Join(r.WaitingFor, ", ")
	return Failure{Status: http.StatusServiceUnavailable, Cause: CauseNoReadyInstance, Title: "Waiting for dependencies",
		Message:   "The component has not started yet: it waits for its dependencies to be ready (" + names + "), and starts by itself once they are.",
		Advice:    "look at the status and instances of " + names + " (berth instances " + r.WaitingFor[0] + "); start or fix them, or remove the dependency if " + alias(r) + " does not need it.",
		Component: r.Component, Port: r.Port, WaitingFor: r.WaitingFor}
}

func refused(r *Route, reset bool) Failure {
	f := Failure{Status: http.StatusBadGateway, Cause: CauseRefused, Title: "Bad gateway",
		Message:   "The instance refused the connection: nothing listens on the published port.",
		Advice:    "check that the app listens on port " + strconv.Itoa(r.Port) + " on all addresses (0.0.0.0), not only on 127.0.0.1, and that the port in berth matches the app's.",
		Component: r.Component, Port: r.Port}
	if reset {
		f.Cause, f.Message = CauseReset, "The instance closed the connection before answering."
		f.Advice = "read the component's log (berth logs " + alias(r) + "): the app may have crashed or rejected the request."
	}
	return f
}

// withHint puts what berth knows of the refusal (the port the app listens
// on instead) in front of the general advice.
func withHint(f Failure, hint string) Failure {
	if hint == "" {
		return f
	}
	f.Message = "The instance refused the connection: " + hint + "."
	return f
}

func timedOut(r *Route) Failure {
	return Failure{Status: http.StatusGatewayTimeout, Cause: CauseTimeout, Title: "Gateway timeout",
		Message:   "The instance did not answer within the route's timeout.",
		Advice:    "make the request faster, or raise the route's read timeout; read the component's log (berth logs " + alias(r) + ").",
		Component: r.Component, Port: r.Port}
}

func rateLimited(r *Route) Failure {
	return Failure{Status: http.StatusServiceUnavailable, Cause: CauseRateLimited, Title: "Too many requests",
		Message:   "The route's rate limit is reached.",
		Advice:    "retry a little later, or raise the route's rate limit (berth rule http update ... --rate-limit N).",
		Component: r.Component, Port: r.Port}
}

func bodyTooLarge(r *Route) Failure {
	return Failure{Status: http.StatusRequestEntityTooLarge, Cause: CauseBodyTooLarge, Title: "Request body too large",
		Message:   "The request body is larger than the route allows (" + strconv.FormatInt(r.MaxBodyBytes, 10) + " bytes).",
		Advice:    "send a smaller body, or raise the route's max body size.",
		Component: r.Component, Port: r.Port}
}

func alias(r *Route) string {
	if _, a, ok := strings.Cut(r.Component, "/"); ok {
		return a
	}
	return r.Component
}

// write answers f as HTML for browsers and JSON for everything else.
func (f Failure) write(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("X-Berth-Error", f.Cause)
	w.Header().Set("Cache-Control", "no-store")
	if strings.Contains(r.Header.Get("Accept"), "text/html") {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.WriteHeader(f.Status)
		_ = errorPage.Execute(w, f)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(f.Status)
	_ = json.NewEncoder(w).Encode(map[string]Failure{"error": f})
}

package gateway

import (
	"sync"
	"time"
)

// GatewayError is one request the gateway answered itself, kept so a user
// can see why their component was unreachable without reading logs.
type GatewayError struct {
	Time      time.Time `json:"time"`
	Status    int       `json:"status,omitempty"` // 0 for TCP
	Cause     string    `json:"cause"`
	Method    string    `json:"method,omitempty"`
	Host      string    `json:"host"`
	Path      string    `json:"path,omitempty"`
	Upstream  string    `json:"upstream,omitempty"`
	RequestID string    `json:"request_id,omitempty"`
}

// recentErrors keeps the last few errors of each component.
type recentErrors struct {
	mu     sync.Mutex
	keep   int
	byComp map[string][]GatewayError
}

func newRecentErrors(keep int) *recentErrors {
	return &recentErrors{keep: keep, byComp: map[string][]GatewayError{}}
}

func (r *recentErrors) observe(rec *AccessRecord) {
	comp := rec.component()
	if rec.Cause == "" || comp == "" {
		return
	}
	e := GatewayError{Time: rec.Time, Status: rec.Status, Cause: rec.Cause, Method: rec.Method, Host: rec.Host,
		Path: rec.Path, Upstream: rec.Upstream, RequestID: rec.RequestID}
	r.mu.Lock()
	defer r.mu.Unlock()
	list := append(r.byComp[comp], e)
	if len(list) > r.keep {
		list = append(list[:0], list[len(list)-r.keep:]...)
	}
	r.byComp[comp] = list
}

// list returns a component's errors, newest first.
func (r *recentErrors) list(component string) []GatewayError {
	r.mu.Lock()
	defer r.mu.Unlock()
	src := r.byComp[component]
	out := make([]GatewayError, len(src))
	for i, e := range src {
		out[len(src)-1-i] = e
	}
	return out
}

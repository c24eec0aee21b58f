package gateway

import "time"

// AccessRecord is what the gateway knows about one finished request. The
// proxy hands it to the Observer, which turns it into metrics, the access
// log and the per-component list of recent errors.
type AccessRecord struct {
	Time      time.Time
	RequestID string
	Remote    string
	Method    string
	Host      string
	Path      string
	Proto     string
	Route     *Route // nil for unknown hosts and TCP
	Component string // team/alias for TCP records (HTTP ones take Route's)
	TCPPort   int    // the gateway port of a TCP record
	Upstream  string // instance address, empty when none was tried
	Status    int
	BytesIn   int64
	BytesOut  int64
	Duration  time.Duration
	Cause     string // the Failure cause when the gateway answered itself
}

// component is the team/alias the record belongs to, "" for none.
func (r *AccessRecord) component() string {
	if r.Route != nil {
		return r.Route.Component
	}
	return r.Component
}

// Observer receives every finished request. It runs on the request's
// goroutine and must not keep the record after it returns.
type Observer interface {
	Observe(*AccessRecord)
}

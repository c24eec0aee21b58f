package gateway

import (
	"strconv"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics counts requests, latency and bytes per route. Label lookups are
// cached per route so the hot path does no hashing of label values.
type metrics struct {
	requests *prometheus.CounterVec
	latency  *prometheus.HistogramVec
	bytes    *prometheus.CounterVec
	routes   sync.Map // route key -> *routeMetrics
}

type routeMetrics struct {
	route, component string
	latency          prometheus.Observer
	in, out          prometheus.Counter
	mu               sync.Mutex
	byCode           map[int]prometheus.Counter
}

func newMetrics() *metrics {
	return &metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "berth_gateway_requests_total", Help: "Requests through the gateway by route, component and status code.",
		}, []string{"route", "component", "code"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "berth_gateway_request_duration_seconds", Help: "Time from request to the end of the response, by route.",
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30},
		}, []string{"route", "component"}),
		bytes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "berth_gateway_bytes_total", Help: "Bytes through the gateway by route and direction (in: from clients, out: to clients).",
		}, []string{"route", "component", "direction"}),
	}
}

// Collectors are registered by the server next to the API's metrics.
func (m *metrics) Collectors() []prometheus.Collector {
	return []prometheus.Collector{m.requests, m.latency, m.bytes}
}

// metricRoute names a route in metrics: the rule id, the TCP port, or
// "unmatched" for requests no route took.
func metricRoute(rec *AccessRecord) string {
	switch {
	case rec.Route != nil && rec.Route.ID != "":
		return rec.Route.ID
	case rec.TCPPort != 0:
		return "tcp-" + strconv.Itoa(rec.TCPPort)
	default:
		return "unmatched"
	}
}

func (m *metrics) observe(rec *AccessRecord) {
	key := metricRoute(rec)
	comp := rec.component()
	v, ok := m.routes.Load(key)
	if !ok || v.(*routeMetrics).component != comp {
		rm := &routeMetrics{route: key, component: comp,
			latency: m.latency.WithLabelValues(key, comp),
			in:      m.bytes.WithLabelValues(key, comp, "in"),
			out:     m.bytes.WithLabelValues(key, comp, "out"),
			byCode:  map[int]prometheus.Counter{}}
		m.routes.Store(key, rm)
		v = rm
	}
	rm := v.(*routeMetrics)
	rm.mu.Lock()
	c, ok := rm.byCode[rec.Status]
	if !ok {
		code := strconv.Itoa(rec.Status)
		if rec.Status == 0 {
			code = "error" // a TCP connection the gateway could not forward
		}
		c = m.requests.WithLabelValues(key, comp, code)
		rm.byCode[rec.Status] = c
	}
	rm.mu.Unlock()
	c.Inc()
	rm.latency.Observe(rec.Duration.Seconds())
	if rec.BytesIn > 0 {
		rm.in.Add(float64(rec.BytesIn))
	}
	if rec.BytesOut > 0 {
		rm.out.Add(float64(rec.BytesOut))
	}
}

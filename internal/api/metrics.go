package api

import (
	"context"
	"log/slog"
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/berth-platform/berth/internal/model"
	"github.com/berth-platform/berth/internal/store"
)

type metrics struct {
	registry *prometheus.Registry
	requests *prometheus.CounterVec
	latency  *prometheus.HistogramVec
}

func newMetrics(st store.Store, extra ...prometheus.Collector) *metrics {
	m := &metrics{
		registry: prometheus.NewRegistry(),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "berth_api_requests_total", Help: "API requests by method, route and status code.",
		}, []string{"method", "route", "code"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "berth_api_request_duration_seconds", Help: "API request latency by method and route.",
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5},
		}, []string{"method", "route"}),
	}
	m.registry.MustRegister(m.requests, m.latency, &taskCollector{store: st},
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	m.registry.MustRegister(extra...)
	return m
}

func (m *metrics) observe(method, route string, code int, d time.Duration) {
	m.requests.WithLabelValues(method, route, strconv.Itoa(code)).Inc()
	m.latency.WithLabelValues(method, route).Observe(d.Seconds())
}

func (m *metrics) handler() http.Handler {
	return promhttp.HandlerFor(m.registry, promhttp.HandlerOpts{})
}

// serveMetrics answers /metrics on the API address for the platform admin
// only: the series name every team and component, which no team may list.
// An unauthenticated scraper gets its own address (MetricsHandler).
func (a *API) serveMetrics(w http.ResponseWriter, r *http.Request) error {
	if p := principalFrom(r.Context()); !p.Admin {
		return forbidden("/metrics needs the admin token (DATA/admin-token); a scraper without one can use the server's --metrics-listen address")
	}
	a.metrics.handler().ServeHTTP(w, r)
	return nil
}

// MetricsHandler serves the metrics with no token, for a separate listener
// (--metrics-listen) that only the operator's network reaches.
func (a *API) MetricsHandler() http.Handler {
	return a.metrics.handler()
}

// taskCollector reads the queue depth from the store at scrape time, so it
// is right whichever server of a cluster queued the tasks.
type taskCollector struct{ store store.Store }

var taskDesc = prometheus.NewDesc("berth_tasks", "Durable tasks by status (queued and running are the queue depth).", []string{"status"}, nil)

func (c *taskCollector) Describe(ch chan<- *prometheus.Desc) { ch <- taskDesc }

func (c *taskCollector) Collect(ch chan<- prometheus.Metric) {
	if c.store == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	counts, err := c.store.CountTasks(ctx)
	if err != nil {
		slog.Warn("count tasks for metrics", "err", err)
		return
	}
	for _, s := range []model.TaskStatus{model.TaskQueued, model.TaskRunning, model.TaskSuccess, model.TaskFailure} {
		ch <- prometheus.MustNewConstMetric(taskDesc, prometheus.GaugeValue, float64(counts[s]), string(s))
	}
}

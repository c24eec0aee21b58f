package worker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/berth-platform/berth/internal/model"
	"github.com/berth-platform/berth/internal/netguard"
	"github.com/berth-platform/berth/internal/runtime"
	"github.com/berth-platform/berth/internal/runtime/probe"
)

// ThirdParty watches the endpoints of thirdparty components (services
// berth does not run): it checks each endpoint's health, balances dependents
// and the gateway over the healthy ones, and derives the component's
// status from them.
type ThirdParty struct {
	// expose publishes healthy endpoints at the component's stable inner
	// address; nil when no runtime runs (the gateway still balances).
	expose func(ctx context.Context, team, componentID string, ports []model.Port, addrs []string) error
	// Guard says which addresses endpoints may be dialled at; set before
	// the first Apply. Names are resolved through it each time they are
	// checked and published, so a name pointed at the host later is
	// refused then.
	Guard *netguard.Policy

	mu sync.Mutex
	// watchers holds an *endpointWatcher by component id. Writes happen
	// under mu; the gateway reads it on every request without a lock.
	watchers sync.Map
}

// NewThirdParty returns a watcher set; driver may be nil.
func NewThirdParty(driver runtime.Driver) *ThirdParty {
	tp := &ThirdParty{}
	if driver != nil {
		tp.expose = driver.Expose
	}
	return tp
}

// endpointWatcher checks one component's endpoints.
type endpointWatcher struct {
	key       string // what it was started with; a change restarts it
	component model.Component
	guard     *netguard.Policy
	cancel    context.CancelFunc
	done      chan struct{}

	mu     sync.Mutex
	health map[string]*endpointHealth
	order  []string
	// refused holds why an endpoint is not dialled (the guard refused
	// its address, or its name does not resolve), by endpoint.
	refused map[string]error
	// healthy is read on every gateway request.
	healthy atomic.Pointer[[]string]
}

type endpointHealth struct {
	tracker *probe.Tracker
	checked bool
	lastErr string
}

// endpointsOf is every endpoint of c: the static list, then the registered.
func endpointsOf(c *model.Component) []string {
	var out []string
	for _, ep := range append(append([]string(nil), c.Endpoints...), c.RegisteredEndpoints...) {
		if !slices.Contains(out, ep) {
			out = append(out, ep)
		}
	}
	return out
}

func watchKey(c *model.Component) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s|%v|%v|", c.Desired, endpointsOf(c), c.Ports)
	if p := c.Readiness; p != nil {
		fmt.Fprintf(&b, "%+v", *p)
	}
	return b.String()
}

// Sync starts, restarts and stops watchers to match the thirdparty
// components given (every one of them; the others are stopped).
func (tp *ThirdParty) Sync(ctx context.Context, comps []model.Component) {
	seen := map[string]bool{}
	for i := range comps {
		if comps[i].Kind == model.KindThirdParty {
			seen[comps[i].ID] = true
			tp.Apply(ctx, &comps[i])
		}
	}
	tp.mu.Lock()
	var gone []*endpointWatcher
	tp.watchers.Range(func(id, w any) bool {
		if !seen[id.(string)] {
			gone = append(gone, w.(*endpointWatcher))
			tp.watchers.Delete(id)
		}
		return true
	})
	tp.mu.Unlock()
	for _, w := range gone {
		tp.retire(ctx, w)
	}
}

// Apply starts watching c's endpoints when it should run, restarts the
// watch when its endpoints or health check changed, and stops it otherwise.
func (tp *ThirdParty) Apply(ctx context.Context, c *model.Component) {
	tp.mu.Lock()
	old := tp.watcher(c.ID)
	key := watchKey(c)
	if old != nil && old.key == key {
		tp.mu.Unlock()
		return
	}
	tp.watchers.Delete(c.ID)
	var w *endpointWatcher
	var wctx context.Context
	var cancel context.CancelFunc
	if c.Desired == model.DesiredRunning {
		w = &endpointWatcher{key: key, component: *c, guard: tp.Guard, health: map[string]*endpointHealth{}, order: endpointsOf(c), done: make(chan struct{})}
		initial := c.Readiness == nil // unchecked endpoints count as healthy
		for _, ep := range w.order {
			w.health[ep] = &endpointHealth{tracker: probe.NewTracker(c.Readiness, initial)}
		}
		// The watch lives as long as berth, not as the request that
		// applied it.
		wctx, cancel = context.WithCancel(context.WithoutCancel(ctx))
		w.cancel = cancel
		tp.watchers.Store(c.ID, w)
	}
	tp.mu.Unlock()
	if old != nil {
		old.stop()
	}
	if w == nil {
		if old != nil {
			tp.retire(ctx, old)
		}
		return
	}
	w.publish(wctx, tp.expose)
	go w.run(wctx, tp.expose)
}

// retire stops a watcher and empties the component's inner address.
func (tp *ThirdParty) retire(ctx context.Context, w *endpointWatcher) {
	w.stop()
	if tp.expose != nil {
		_ = tp.expose(ctx, w.component.Team, w.component.ID, w.component.Ports, nil)
	}
}

// Close stops every watcher.
func (tp *ThirdParty) Close() {
	tp.mu.Lock()
	defer tp.mu.Unlock()
	tp.watchers.Range(func(id, w any) bool {
		w.(*endpointWatcher).stop()
		tp.watchers.Delete(id)
		return true
	})
}

func (w *endpointWatcher) stop() {
	w.cancel()
	<-w.done
}

func (w *endpointWatcher) run(ctx context.Context, expose func(context.Context, string, string, []model.Port, []string) error) {
	defer close(w.done)
	p := w.component.Readiness
	if p == nil {
		w.republish(ctx, expose)
		return
	}
	t := time.NewTicker(probe.Period(p))
	defer t.Stop()
	for {
		var wg sync.WaitGroup
		for _, ep := range w.order {
			wg.Add(1)
			go func() {
				defer wg.Done()
				err := checkEndpoint(ctx, w.guard, p, ep)
				if ctx.Err() != nil {
					return
				}
				w.mu.Lock()
				h := w.health[ep]
				h.tracker.Observe(err)
				h.checked = true
				h.lastErr = ""
				if err != nil {
					h.lastErr = err.Error()
				}
				w.mu.Unlock()
			}()
		}
		wg.Wait()
		w.publish(ctx, expose)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// republish re-resolves the endpoints of a watcher without a health check
// now and then: names may move, to an address the guard refuses too.
func (w *endpointWatcher) republish(ctx context.Context, expose func(context.Context, string, string, []model.Port, []string) error) {
	t := time.NewTicker(30 * time.Second)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			w.publish(ctx, expose)
		}
	}
}

// checkEndpoint runs the health check against one endpoint, on the
// endpoint's own port unless the check names one. It checks the address
// the guard resolved, so a probe never reaches a refused one.
func checkEndpoint(ctx context.Context, guard *netguard.Policy, p *model.Probe, ep string) error {
	addrs, err := guard.Resolve(ctx, ep)
	if err != nil {
		return err
	}
	host, port, err := net.SplitHostPort(addrs[0])
	if err != nil {
		return fmt.Errorf("endpoint %q: %w", ep, err)
	}
	cp := *p
	if cp.Port == 0 {
		cp.Port, _ = strconv.Atoi(port)
	}
	return probe.Check(ctx, &cp, host, nil)
}

// resolveHealthy turns healthy endpoints into the addresses to dial, as
// the guard resolves them now: the gateway and the service addresses
// dial these, never a name that could resolve elsewhere by then. It
// returns why the others were refused.
func (w *endpointWatcher) resolveHealthy(ctx context.Context, healthy []string) ([]string, map[string]error) {
	var out []string
	refused := map[string]error{}
	for _, ep := range healthy {
		addrs, err := w.guard.Resolve(ctx, ep)
		if err != nil {
			refused[ep] = err
			continue
		}
		for _, a := range addrs {
			if !slices.Contains(out, a) {
				out = append(out, a)
			}
		}
	}
	return out, refused
}

// publish hands the healthy endpoints to the runtime when they changed.
func (w *endpointWatcher) publish(ctx context.Context, expose func(context.Context, string, string, []model.Port, []string) error) {
	w.mu.Lock()
	var healthy []string
	for _, ep := range w.order {
		if w.health[ep].tracker.OK() {
			healthy = append(healthy, ep)
		}
	}
	w.mu.Unlock()
	healthy, refused := w.resolveHealthy(ctx, healthy)
	w.mu.Lock()
	for ep, why := range refused {
		if was := w.refused[ep]; was == nil || was.Error() != why.Error() { // once, not every round
			slog.Warn("thirdparty endpoint not dialled", "component", w.component.Alias, "endpoint", ep, "err", why)
		}
	}
	w.refused = refused
	w.mu.Unlock()
	if old := w.healthy.Load(); old != nil && slices.Equal(*old, healthy) {
		return
	}
	w.healthy.Store(&healthy)
	if expose != nil {
		if err := expose(ctx, w.component.Team, w.component.ID, w.component.Ports, healthy); err != nil {
			slog.Warn("publish thirdparty endpoints", "component", w.component.Alias, "err", err)
		}
	}
}

func (tp *ThirdParty) watcher(componentID string) *endpointWatcher {
	w, _ := tp.watchers.Load(componentID)
	ew, _ := w.(*endpointWatcher)
	return ew
}

// Endpoints returns the healthy endpoints of a thirdparty component, and
// whether componentID is one that berth watches.
func (tp *ThirdParty) Endpoints(componentID string) ([]string, bool) {
	w := tp.watcher(componentID)
	if w == nil {
		return nil, false
	}
	if h := w.healthy.Load(); h != nil {
		return *h, true
	}
	return nil, true
}

// Instances shows each endpoint as an instance, with its health.
func (tp *ThirdParty) Instances(c *model.Component) []model.Instance {
	w := tp.watcher(c.ID)
	if w == nil {
		return nil
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	var out []model.Instance
	for _, ep := range w.order {
		h := w.health[ep]
		in := model.Instance{ID: ep, Address: ep, Status: model.InstanceRunning, Reason: "Healthy", Message: "the health check passes"}
		switch {
		case w.refused[ep] != nil:
			in.Status, in.Reason, in.Message = model.InstanceUnhealthy, "LookupFailed", w.refused[ep].Error()
			in.Advice = "check that the endpoint's host name resolves on berth's machine"
			if errors.As(w.refused[ep], new(*netguard.Error)) {
				in.Reason = "EndpointNotAllowed"
				in.Advice = "point the endpoint at the service's own address, not at berth's host or internal networks"
			}
		case c.Readiness == nil:
			in.Reason, in.Message = "NotChecked", "no health check is set: the endpoint counts as healthy"
			in.Advice = "set a health check (readiness) so that berth stops sending traffic to an endpoint that is down"
		case !h.tracker.OK() && !h.checked:
			in.Status, in.Reason, in.Message = model.InstanceNotReady, "NotChecked", "not checked yet"
		case !h.tracker.OK():
			in.Status, in.Reason, in.Message = model.InstanceUnhealthy, "Unhealthy", h.lastErr
			in.Advice = "check that the service at " + ep + " is up and that the health check's path and port are right"
		}
		out = append(out, in)
	}
	return out
}

// Status derives a thirdparty component's status from its endpoints:
// closed with none, running with at least one healthy, abnormal with none
// healthy.
func (tp *ThirdParty) Status(c *model.Component) (model.ComponentStatus, string) {
	if c.Desired != model.DesiredRunning {
		return model.StatusClosed, ""
	}
	eps := endpointsOf(c)
	if len(eps) == 0 {
		return model.StatusClosed, "no endpoints: add static endpoints, or let the service register itself with PUT .../endpoints and the component's endpoint key"
	}
	instances := tp.Instances(c)
	if instances == nil {
		return model.StatusStarting, "checking the endpoints"
	}
	var ready int
	var down []string
	for _, in := range instances {
		switch in.Status {
		case model.InstanceRunning:
			ready++
		case model.InstanceUnhealthy:
			down = append(down, in.ID+": "+in.Message)
		}
	}
	switch {
	case ready > 0 && len(down) == 0:
		return model.StatusRunning, fmt.Sprintf("%d of %d endpoint(s) healthy", ready, len(instances))
	case ready > 0:
		return model.StatusRunning, fmt.Sprintf("%d of %d endpoint(s) healthy; down: %s", ready, len(instances), strings.Join(down, "; "))
	case len(down) == 0:
		return model.StatusStarting, "checking the endpoints"
	default:
		return model.StatusAbnormal, "no endpoint is healthy: " + strings.Join(down, "; ")
	}
}

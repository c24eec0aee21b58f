package worker

import (
	"context"
	"crypto/tls"
	"log/slog"
	"strconv"
	"time"

	"github.com/berth-platform/berth/internal/gateway"
	"github.com/berth-platform/berth/internal/model"
	"github.com/berth-platform/berth/internal/store"
)

// EndpointSource gives the ready addresses of a component's port (the
// runtime's, or a third-party component's healthy endpoints).
type EndpointSource func(componentID string, port int) []string

// GatewaySync keeps the gateway's routing state in line with the store:
// outer ports with their default domains, HTTP and TCP rules, and
// certificates. Instances coming and going need no sync: routes ask the
// EndpointSource on every request.
type GatewaySync struct {
	store      store.Store
	gw         *gateway.Gateway
	endpoints  EndpointSource
	baseDomain string
	wake       chan struct{}
	interval   time.Duration

	certs    map[string]*tls.Certificate // parsed, by id and expiry
	limiters map[string]*limiter         // by rule id, kept across syncs

	// Hints, set before the first Sync, explain refused upstreams on the
	// gateway's 502 page.
	Hints HintSource
}

// limiter remembers the settings a rule's bucket was made with, so a sync
// keeps the bucket (and its count) unless the rule's limit changed.
type limiter struct {
	rate  float64
	burst int
	l     *gateway.RateLimiter
}

// NewGatewaySync returns a sync for gw; baseDomain names default domains.
func NewGatewaySync(st store.Store, gw *gateway.Gateway, endpoints EndpointSource, baseDomain string) *GatewaySync {
	if endpoints == nil {
		endpoints = func(string, int) []string { return nil }
	}
	return &GatewaySync{store: st, gw: gw, endpoints: endpoints, baseDomain: baseDomain,
		wake: make(chan struct{}, 1), interval: 2 * time.Second, certs: map[string]*tls.Certificate{}, limiters: map[string]*limiter{}}
}

// Wake asks for a sync now (after an API write); calls coalesce.
func (s *GatewaySync) Wake() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// Run syncs at once, on every Wake, and every few seconds as a backstop
// for writes that did not wake it (another berth server on PostgreSQL).
func (s *GatewaySync) Run(ctx context.Context) {
	t := time.NewTicker(s.interval)
	defer t.Stop()
	for {
		if err := s.Sync(ctx); err != nil && ctx.Err() == nil {
			slog.Warn("gateway sync", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-s.wake:
		case <-t.C:
		}
	}
}

// Sync builds the state from the store and applies it.
func (s *GatewaySync) Sync(ctx context.Context) error {
	state, err := s.build(ctx)
	if err != nil {
		return err
	}
	for port, err := range s.gw.Apply(state) {
		slog.Warn("gateway tcp port not published", "port", port, "err", err)
	}
	return nil
}

func (s *GatewaySync) build(ctx context.Context) (gateway.State, error) {
	var state gateway.State
	comps, err := s.store.ListAllComponents(ctx)
	if err != nil {
		return state, err
	}
	byAlias := map[string]*model.Component{}
	waits := s.waiting(ctx, comps)
	for i := range comps {
		c := &comps[i]
		byAlias[c.Team+"/"+c.Alias] = c
		for _, p := range c.Ports {
			if p.Outer && p.Published() {
				r := s.route(c, p.Port, model.DefaultDomain(c.Alias, p.Port, c.Team, s.baseDomain))
				r.WaitingFor = waits[c.ID]
				state.HTTP = append(state.HTTP, r)
			}
		}
	}
	rules, err := s.store.ListAllHTTPRules(ctx)
	if err != nil {
		return state, err
	}
	claims, err := s.domainClaims(ctx)
	if err != nil {
		return state, err
	}
	limiters := map[string]*limiter{}
	for _, rule := range rules {
		c := byAlias[rule.Team+"/"+rule.Component]
		if c == nil {
			continue
		}
		// A domain given to another team (or a rule older than domain
		// owners) stays stored but is not served.
		if !model.DomainUsable(claims, rule.Team, rule.Domain, s.baseDomain) {
			continue
		}
		r := s.route(c, rule.Port, rule.Domain)
		r.WaitingFor = waits[c.ID]
		r.ID, r.Path, r.Headers, r.Weight = rule.ID, rule.Path, rule.Headers, rule.Weight
		applyOptions(&r, rule.RouteOptions)
		if o := rule.RouteOptions; o.RateLimit > 0 {
			l := s.limiters[rule.ID]
			if l == nil || l.rate != o.RateLimit || l.burst != o.RateBurst {
				l = &limiter{rate: o.RateLimit, burst: o.RateBurst, l: gateway.NewRateLimiter(o.RateLimit, o.RateBurst)}
			}
			limiters[rule.ID] = l
			r.Limiter = l.l
		}
		state.HTTP = append(state.HTTP, r)
	}
	s.limiters = limiters
	tcpRules, err := s.store.ListAllTCPRules(ctx)
	if err != nil {
		return state, err
	}
	for _, rule := range tcpRules {
		c := byAlias[rule.Team+"/"+rule.Component]
		if c == nil {
			continue
		}
		id, port := c.ID, rule.Port
		state.TCP = append(state.TCP, gateway.TCPRoute{Port: rule.GatewayPort, Component: rule.Team + "/" + rule.Component,
			Target: port, Upstreams: func() []string { return s.endpoints(id, port) }})
	}
	state.Certs, err = s.certificates(ctx, claims)
	return state, err
}

// waiting names, for each component held back by its dependencies, those
// it waits for: the gateway's 503 says them. A lookup that fails leaves the
// general page.
func (s *GatewaySync) waiting(ctx context.Context, comps []model.Component) map[string][]string {
	out := map[string][]string{}
	for i := range comps {
		c := &comps[i]
		if c.Status != model.StatusWaiting {
			continue
		}
		names, err := WaitingOn(ctx, s.store, c)
		if err != nil {
			slog.Debug("gateway: dependencies of a waiting component", "component", c.Alias, "err", err)
			continue
		}
		out[c.ID] = names
	}
	return out
}

// domainClaims maps each claimed domain to its team.
func (s *GatewaySync) domainClaims(ctx context.Context) (map[string]string, error) {
	list, err := s.store.ListDomainClaims(ctx)
	if err != nil {
		return nil, err
	}
	claims := make(map[string]string, len(list))
	for _, c := range list {
		claims[c.Domain] = c.Team
	}
	return claims, nil
}

func (s *GatewaySync) route(c *model.Component, port int, domain string) gateway.Route {
	id := c.ID
	return gateway.Route{ID: "default-" + c.Team + "-" + c.Alias + "-" + strconv.Itoa(port), Domain: domain, Path: "/",
		Component: c.Team + "/" + c.Alias, Port: port,
		Upstreams: func() []string { return s.endpoints(id, port) }, Hint: s.hint(id), NotReady: s.notReady(id, port)}
}

func applyOptions(r *gateway.Route, o model.RouteOptions) {
	r.RewritePath = o.RewritePath
	r.Timeouts = gateway.Timeouts{Connect: seconds(o.ConnectTimeout), Read: seconds(o.ReadTimeout), Send: seconds(o.SendTimeout)}
	r.MaxBodyBytes = o.MaxBodySize
	r.RedirectHTTPS = o.RedirectHTTPS
}

func seconds(n int) time.Duration { return time.Duration(n) * time.Second }

// certificates parses each certificate once; a renewal changes its expiry
// and so its cache key.
func (s *GatewaySync) certificates(ctx context.Context, claims map[string]string) ([]*tls.Certificate, error) {
	all, err := s.store.ListAllCertificates(ctx)
	if err != nil {
		return nil, err
	}
	fresh := map[string]*tls.Certificate{}
	var out []*tls.Certificate
	for _, c := range all {
		// The gateway picks certificates by name across teams: one naming
		// another team's domain would be served for it.
		if !model.CertificateUsable(claims, c.Team, c.Domains, s.baseDomain) {
			continue
		}
		key := c.ID + "@" + c.NotAfter.String()
		parsed, ok := s.certs[key]
		if !ok {
			parsed, err = gateway.ParseCertificate([]byte(c.CertPEM), []byte(c.KeyPEM))
			if err != nil {
				slog.Warn("gateway certificate unusable", "team", c.Team, "name", c.Name, "err", err)
				continue
			}
		}
		fresh[key] = parsed
		out = append(out, parsed)
	}
	s.certs = fresh
	return out, nil
}

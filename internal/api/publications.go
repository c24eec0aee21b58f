package api

import (
	"context"
	"net"
	"net/http"
	"strconv"

	"github.com/berth-platform/berth/internal/gateway"
	"github.com/berth-platform/berth/internal/model"
)

// GatewayInfo is what the API tells about the gateway.
type GatewayInfo struct {
	BaseDomain string
	// HTTPPort and HTTPSPort are the gateway's ports (0 when off); URLs
	// leave out 80 and 443.
	HTTPPort, HTTPSPort int
	// Host is the machine's address, for TCP ports.
	Host string
	// RecentErrors lists a component's (team/alias) last gateway errors.
	RecentErrors func(component string) []gateway.GatewayError
	// Changed asks the gateway to resync from the store now.
	Changed func()
}

// publication is how an outer port is reached from outside.
type publication struct {
	Domains    []string `json:"domains,omitempty"`
	URLs       []string `json:"urls,omitempty"`
	TCPAddress string   `json:"tcp_address,omitempty"`
}

// publications maps each published port of c to its domains and TCP
// address. rules are the team's HTTP and TCP rules (read once for a list).
func (a *API) publications(c *model.Component, httpRules []model.HTTPRule, tcpRules []model.TCPRule) map[int]publication {
	gw := a.cfg.Gateway
	if gw == nil {
		return nil
	}
	out := map[int]publication{}
	add := func(port int, domain, path string, https bool) {
		p := out[port]
		p.Domains = append(p.Domains, domain)
		p.URLs = append(p.URLs, gw.url(domain, path, https))
		out[port] = p
	}
	for _, p := range c.Ports {
		if p.Outer && p.Published() {
			add(p.Port, model.DefaultDomain(c.Alias, p.Port, c.Team, gw.BaseDomain), "/", false)
		}
	}
	for _, r := range httpRules {
		if r.Component == c.Alias {
			// A rule with a certificate is reached over HTTPS.
			add(r.Port, r.Domain, r.Path, r.Certificate != "" || r.AutoTLS || r.RedirectHTTPS)
		}
	}
	for _, r := range tcpRules {
		if r.Component == c.Alias {
			p := out[r.Port]
			p.TCPAddress = net.JoinHostPort(gw.Host, strconv.Itoa(r.GatewayPort))
			out[r.Port] = p
		}
	}
	return out
}

func (gw *GatewayInfo) url(domain, path string, https bool) string {
	if (https || gw.HTTPPort == 0) && gw.HTTPSPort != 0 {
		return "https://" + hostPort(domain, gw.HTTPSPort, 443) + path
	}
	return "http://" + hostPort(domain, gw.HTTPPort, 80) + path
}

func hostPort(host string, port, dflt int) string {
	if port == dflt || port == 0 {
		return host
	}
	return net.JoinHostPort(host, strconv.Itoa(port))
}

// teamRules reads a team's HTTP and TCP rules.
func (a *API) teamRules(ctx context.Context, team string) ([]model.HTTPRule, []model.TCPRule, error) {
	if a.cfg.Gateway == nil {
		return nil, nil, nil
	}
	h, err := a.store.ListHTTPRules(ctx, team)
	if err != nil {
		return nil, nil, err
	}
	t, err := a.store.ListTCPRules(ctx, team)
	return h, t, err
}

// publishTCP gives every outer TCP/UDP port of c a gateway port, and takes
// it away from ports that are no longer outer. check only looks for room,
// so a request that would exhaust the range fails before it changes
// anything.
func (a *API) publishTCP(ctx context.Context, c *model.Component, check bool) error {
	if a.cfg.Gateway == nil {
		return nil
	}
	rules, err := a.store.ListTCPRules(ctx, c.Team)
	if err != nil {
		return err
	}
	has := map[int]bool{}
	for _, r := range rules {
		if r.Component != c.Alias {
			continue
		}
		has[r.Port] = true
		if !check && !outerTCP(c, r.Port) {
			if err := a.store.DeleteTCPRule(ctx, r.Team, r.ID); err != nil {
				return err
			}
		}
	}
	for _, p := range c.Ports {
		if !outerTCP(c, p.Port) || has[p.Port] {
			continue
		}
		if check {
			_, err := a.freeTCPPort(ctx)
			return err
		}
		rule := &model.TCPRule{ID: model.NewID("tcp"), Team: c.Team, Component: c.Alias, Port: p.Port}
		if err := a.reserveTCPRule(ctx, rule); err != nil {
			return err
		}
	}
	return nil
}

func outerTCP(c *model.Component, port int) bool {
	for _, p := range c.Ports {
		if p.Port == port {
			return p.Outer && !p.Published()
		}
	}
	return false
}

// gatewayErrors lists the requests the gateway answered itself for a
// component, newest first: why it was unreachable, without the server log.
func (a *API) gatewayErrors(w http.ResponseWriter, r *http.Request) error {
	c, err := a.componentAccess(r, model.RoleViewer)
	if err != nil {
		return err
	}
	list := []gateway.GatewayError{}
	if gw := a.cfg.Gateway; gw != nil && gw.RecentErrors != nil {
		list = append(list, gw.RecentErrors(c.Team+"/"+c.Alias)...)
	}
	writeJSON(w, http.StatusOK, items(list))
	return nil
}

package netguard

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strings"
)

// The same wall for the other addresses tenants name and berth dials from
// the host itself: git repositories it clones and registries it pulls
// from. One policy, one allowance (--allow-endpoint-cidr), so a platform
// admin who opens a range opens it for all of them.

// HostError is a git or registry host the policy refuses.
type HostError struct {
	Use  string // what berth connects to there: "git repository", "image registry"
	Host string // as named, host[:port]
	Addr netip.Addr
	Why  string
}

func (e *HostError) Error() string {
	via := ""
	if h := strings.Trim(hostOnly(e.Host), "[]"); h != e.Addr.String() {
		via = " resolves to " + e.Addr.String() + ", which"
	}
	return fmt.Sprintf("%s%s is %s: berth itself connects to the %s, from its host, so it cannot be the host's loopback, link-local or own address, nor in berth's internal networks; a platform admin can allow a range with `berth server --allow-endpoint-cidr CIDR`",
		e.Host, via, e.Why, e.Use)
}

func hostOnly(hostport string) string {
	if h, _, err := net.SplitHostPort(hostport); err == nil {
		return h
	}
	return hostport
}

// CheckHost resolves host (host, host:port, [v6] or [v6]:port) as Resolve
// does and returns the addresses berth may dial it at. A forbidden address
// is a *HostError; a look-up failure is returned wrapped (the dial would
// fail as well). use names what berth connects to, for the message.
func (p *Policy) CheckHost(ctx context.Context, use, host, defaultPort string) ([]netip.AddrPort, error) {
	endpoint := host
	if _, _, err := net.SplitHostPort(host); err != nil {
		endpoint = net.JoinHostPort(strings.Trim(host, "[]"), defaultPort)
	}
	addrs, err := p.Resolve(ctx, endpoint)
	var ge *Error
	if errors.As(err, &ge) {
		return nil, &HostError{Use: use, Host: host, Addr: ge.Addr, Why: ge.Why}
	}
	if err != nil {
		return nil, err
	}
	out := make([]netip.AddrPort, 0, len(addrs))
	for _, a := range addrs {
		ap, err := netip.ParseAddrPort(a)
		if err != nil {
			return nil, fmt.Errorf("resolved %s: %w", host, err)
		}
		out = append(out, ap)
	}
	return out, nil
}

// DialContext dials address (host:port) at an address the policy allows,
// resolving the name itself right before the dial: a name that changes
// its answer between a check and the connection (DNS rebinding) gets no
// second look-up. For http.Transport.DialContext.
func (p *Policy) DialContext(use string) func(ctx context.Context, network, address string) (net.Conn, error) {
	var d net.Dialer
	return func(ctx context.Context, network, address string) (net.Conn, error) {
		addrs, err := p.CheckHost(ctx, use, address, "")
		if err != nil {
			return nil, err
		}
		var last error
		for _, a := range addrs {
			conn, err := d.DialContext(ctx, network, a.String())
			if err == nil {
				return conn, nil
			}
			last = err
		}
		if last == nil {
			last = fmt.Errorf("%s has no address", address)
		}
		return nil, last
	}
}

// IsDockerHub reports whether a registry host is Docker Hub's: no tenant
// can point those names anywhere, so they need no look-up on every check.
func IsDockerHub(host string) bool {
	switch strings.ToLower(host) {
	case "docker.io", "index.docker.io", "registry-1.docker.io":
		return true
	}
	return false
}

// Package netguard decides which addresses tenant-named endpoints may
// point at. An endpoint (a thirdparty component's address, and through it a
// TCP or HTTP rule) is dialled by berth itself, from the host: pointing it
// at the host's loopback, its own addresses or berth's internal networks
// would publish what only the host should reach. A platform admin can
// allow ranges on purpose (berth server --allow-endpoint-cidr).
package netguard

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"time"
)

// Policy says which addresses endpoints may use. The zero value forbids
// the built-in ranges and the host's addresses and allows nothing extra.
type Policy struct {
	// Allowed ranges are accepted even inside a forbidden one.
	Allowed []netip.Prefix
	// Internal ranges are berth's own networks (instance bridge, service
	// addresses), forbidden besides the built-in ones.
	Internal []netip.Prefix
	// HostAddrs lists the host's own addresses; nil reads the interfaces.
	HostAddrs func() []netip.Addr
	// Resolver looks host names up; nil is net.DefaultResolver.
	Resolver *net.Resolver
}

// builtin are never endpoints unless allowed: "this network" (0.0.0.0/8
// reaches the host on Linux), loopback, link-local, multicast, broadcast.
var builtin = []struct {
	prefix netip.Prefix
	what   string
}{
	{netip.MustParsePrefix("0.0.0.0/8"), "an unspecified (this-host) address"},
	{netip.MustParsePrefix("127.0.0.0/8"), "a loopback address of berth's host"},
	{netip.MustParsePrefix("169.254.0.0/16"), "a link-local address (cloud metadata services live there)"},
	{netip.MustParsePrefix("224.0.0.0/4"), "a multicast address"},
	{netip.MustParsePrefix("255.255.255.255/32"), "the broadcast address"},
	{netip.MustParsePrefix("::/128"), "an unspecified (this-host) address"},
	{netip.MustParsePrefix("::1/128"), "a loopback address of berth's host"},
	{netip.MustParsePrefix("fe80::/10"), "a link-local address"},
	{netip.MustParsePrefix("ff00::/8"), "a multicast address"},
}

// Error is an endpoint refused by the policy.
type Error struct {
	Endpoint string     // as named, HOST:PORT
	Addr     netip.Addr // the address refused (the host's, or what it resolves to)
	Why      string
}

func (e *Error) Error() string {
	via := ""
	if host, _, err := net.SplitHostPort(e.Endpoint); err == nil && host != e.Addr.String() {
		via = " resolves to " + e.Addr.String() + ", which"
	}
	return fmt.Sprintf("%s%s is %s: endpoints and TCP rules cannot point at the host's loopback, link-local or own addresses, nor at berth's internal networks; a platform admin can allow a range with `berth server --allow-endpoint-cidr CIDR`",
		e.Endpoint, via, e.Why)
}

// ParsePrefixes reads CIDRs (a bare address is a single-address range).
func ParsePrefixes(cidrs []string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, s := range cidrs {
		for _, part := range strings.Split(s, ",") {
			part = strings.TrimSpace(part)
			if part == "" {
				continue
			}
			p, err := netip.ParsePrefix(part)
			if err != nil {
				a, aerr := netip.ParseAddr(part)
				if aerr != nil {
					return nil, fmt.Errorf("%q is not a CIDR such as 10.1.0.0/16 or an address: %w", part, err)
				}
				p = netip.PrefixFrom(a, a.BitLen())
			}
			out = append(out, p.Masked())
		}
	}
	return out, nil
}

// CheckAddr refuses an address of a forbidden range that no allowed range
// contains; it says which range it is in.
func (p *Policy) CheckAddr(a netip.Addr) (why string, ok bool) {
	// Prefixes never contain an address with a zone (fe80::1%eth0).
	a = a.Unmap().WithZone("")
	for _, allowed := range p.allowed() {
		if allowed.Contains(a) {
			return "", true
		}
	}
	for _, b := range builtin {
		if b.prefix.Contains(a) {
			return b.what, false
		}
	}
	for _, in := range p.internal() {
		if in.Contains(a) {
			return "inside berth's internal network " + in.String(), false
		}
	}
	for _, h := range p.hostAddrs() {
		if h == a {
			return "an address of berth's host", false
		}
	}
	return "", true
}

func (p *Policy) allowed() []netip.Prefix {
	if p == nil {
		return nil
	}
	return p.Allowed
}

func (p *Policy) internal() []netip.Prefix {
	if p == nil {
		return nil
	}
	return p.Internal
}

func (p *Policy) hostAddrs() []netip.Addr {
	if p != nil && p.HostAddrs != nil {
		return p.HostAddrs()
	}
	return InterfaceAddrs()
}

// InterfaceAddrs lists the host's addresses now (interfaces come and go).
func InterfaceAddrs() []netip.Addr {
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		return nil
	}
	var out []netip.Addr
	for _, a := range addrs {
		if n, ok := a.(*net.IPNet); ok {
			if ip, ok := netip.AddrFromSlice(n.IP); ok {
				out = append(out, ip.Unmap())
			}
		}
	}
	return out
}

// resolveTimeout bounds a look-up, so an API call or a health check does
// not hang on a slow DNS server.
const resolveTimeout = 3 * time.Second

// Resolve checks endpoint (HOST:PORT) and returns the addresses it may be
// dialled at, as IP:PORT. A literal address is checked as it is; a host
// name is looked up and refused when any of its addresses is forbidden (a
// name with one bad address is a name pointed at the host on purpose).
func (p *Policy) Resolve(ctx context.Context, endpoint string) ([]string, error) {
	host, port, err := net.SplitHostPort(endpoint)
	if err != nil {
		return nil, fmt.Errorf("endpoint %q: %w", endpoint, err)
	}
	var addrs []netip.Addr
	if a, err := netip.ParseAddr(strings.TrimSuffix(host, ".")); err == nil {
		addrs = []netip.Addr{a}
	} else {
		ctx, cancel := context.WithTimeout(ctx, resolveTimeout)
		defer cancel()
		r := net.DefaultResolver
		if p != nil && p.Resolver != nil {
			r = p.Resolver
		}
		addrs, err = r.LookupNetIP(ctx, "ip", host)
		if err != nil {
			return nil, fmt.Errorf("look up %s: %w", host, err)
		}
	}
	out := make([]string, 0, len(addrs))
	for _, a := range addrs {
		if why, ok := p.CheckAddr(a); !ok {
			return nil, &Error{Endpoint: endpoint, Addr: a.Unmap(), Why: why}
		}
		out = append(out, net.JoinHostPort(a.Unmap().String(), port))
	}
	return out, nil
}

// Check is Resolve for an API call: a forbidden address is refused, but a
// name that does not resolve yet passes (the watcher checks it again each
// time it dials).
func (p *Policy) Check(ctx context.Context, endpoint string) error {
	_, err := p.Resolve(ctx, endpoint)
	if _, ok := err.(*Error); ok {
		return err
	}
	return nil
}

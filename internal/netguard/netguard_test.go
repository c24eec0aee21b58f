package netguard

import (
	"context"
	"errors"
	"net/netip"
	"strings"
	"testing"
)

func TestResolveRefusesTheHost(t *testing.T) {
	host := netip.MustParseAddr("192.0.2.7")
	p := &Policy{
		Internal:  []netip.Prefix{netip.MustParsePrefix("10.213.0.0/16")},
		HostAddrs: func() []netip.Addr { return []netip.Addr{host} },
	}
	ctx := context.Background()
	for _, ep := range []string{
		"127.0.0.1:22", "127.9.9.9:80", "[::1]:80", "[::ffff:127.0.0.1]:80", "0.0.0.0:80", "0.1.2.3:80",
		"169.254.169.254:80", "[fe80::1%lo]:80", "224.0.0.1:80", "10.213.0.1:80", "192.0.2.7:5432", "localhost:80",
	} {
		var ge *Error
		if _, err := p.Resolve(ctx, ep); !errors.As(err, &ge) || !strings.Contains(err.Error(), "--allow-endpoint-cidr") {
			t.Errorf("%s: %v, want refused", ep, err)
		}
	}
	for _, ep := range []string{"10.0.0.9:80", "192.0.2.8:80", "[2001:db8::1]:443"} {
		if addrs, err := p.Resolve(ctx, ep); err != nil || len(addrs) != 1 {
			t.Errorf("%s: %v %v, want allowed", ep, addrs, err)
		}
	}
	allowed, err := ParsePrefixes([]string{"127.0.0.0/8,192.0.2.7"})
	if err != nil {
		t.Fatal(err)
	}
	p.Allowed = allowed
	for _, ep := range []string{"127.0.0.1:22", "192.0.2.7:5432"} {
		if _, err := p.Resolve(ctx, ep); err != nil {
			t.Errorf("%s inside an allowed range: %v", ep, err)
		}
	}
	if _, err := p.Resolve(ctx, "169.254.169.254:80"); err == nil {
		t.Error("an allowed range opened another one")
	}
	if _, err := ParsePrefixes([]string{"nope"}); err == nil {
		t.Error("a bad CIDR was accepted")
	}
}

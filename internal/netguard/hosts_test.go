package netguard

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"strings"
	"testing"
)

func TestCheckHostRefusesTheHost(t *testing.T) {
	p := &Policy{HostAddrs: func() []netip.Addr { return []netip.Addr{netip.MustParseAddr("192.0.2.7")} }}
	ctx := context.Background()
	for _, host := range []string{"127.0.0.1", "127.0.0.1:8080", "[::1]", "[::1]:22", "localhost:5000", "192.0.2.7", "169.254.169.254"} {
		var he *HostError
		_, err := p.CheckHost(ctx, "git repository", host, "443")
		if !errors.As(err, &he) || !strings.Contains(err.Error(), host) || !strings.Contains(err.Error(), "--allow-endpoint-cidr") {
			t.Errorf("%s: %v, want a HostError naming it", host, err)
		}
	}
	addrs, err := p.CheckHost(ctx, "image registry", "192.0.2.8", "443")
	if err != nil || len(addrs) != 1 || addrs[0].String() != "192.0.2.8:443" {
		t.Errorf("192.0.2.8: %v %v, want 192.0.2.8:443", addrs, err)
	}
	p.Allowed, _ = ParsePrefixes([]string{"127.0.0.0/8"})
	if _, err := p.CheckHost(ctx, "git repository", "127.0.0.1:8080", "443"); err != nil {
		t.Errorf("allowed loopback: %v", err)
	}
}

func TestDialContextRefusesBeforeConnecting(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan struct{}, 1)
	go func() {
		if c, err := ln.Accept(); err == nil {
			accepted <- struct{}{}
			c.Close()
		}
	}()
	var he *HostError
	if _, err := (&Policy{}).DialContext("image registry")(context.Background(), "tcp", ln.Addr().String()); !errors.As(err, &he) {
		t.Fatalf("dial of loopback: %v, want refused", err)
	}
	select {
	case <-accepted:
		t.Fatal("the refused dial reached the listener")
	default:
	}
	allowed, _ := ParsePrefixes([]string{"127.0.0.1"})
	conn, err := (&Policy{Allowed: allowed}).DialContext("image registry")(context.Background(), "tcp", ln.Addr().String())
	if err != nil {
		t.Fatalf("allowed dial: %v", err)
	}
	conn.Close()
}

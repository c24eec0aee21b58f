package server

import (
	"net/netip"
	"testing"

	"github.com/berth-platform/berth/internal/runtime/containerd"
)

func TestEndpointPolicy(t *testing.T) {
	cfg := Config{Containerd: containerd.DriverConfig{Subnet: "10.99.0.0/16"}}
	p, err := endpointPolicy(cfg)
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range []string{"10.99.3.4", "10.214.0.9", "10.215.7.1", "127.0.0.1"} {
		if _, ok := p.CheckAddr(netip.MustParseAddr(a)); ok {
			t.Errorf("%s allowed", a)
		}
	}
	if _, ok := p.CheckAddr(netip.MustParseAddr("10.213.0.9")); !ok {
		t.Error("the default instance subnet is refused although berth uses another one")
	}
	t.Setenv(allowEndpointEnv, "127.0.0.0/8, 10.99.3.0/24")
	if p, err = endpointPolicy(cfg); err != nil {
		t.Fatal(err)
	}
	for _, a := range []string{"127.0.0.1", "10.99.3.4"} {
		if _, ok := p.CheckAddr(netip.MustParseAddr(a)); !ok {
			t.Errorf("%s refused inside an allowed range", a)
		}
	}
	cfg.AllowEndpointCIDRs = []string{"not-a-cidr"}
	if _, err := endpointPolicy(cfg); err == nil {
		t.Error("a bad --allow-endpoint-cidr was accepted")
	}
}

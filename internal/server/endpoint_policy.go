package server

import (
	"fmt"
	"net/netip"
	"os"
	"strings"

	"github.com/berth-platform/berth/internal/netguard"
	"github.com/berth-platform/berth/internal/runtime/containerd"
)

// allowEndpointEnv names ranges endpoints may use, comma-separated, when
// the configuration names none (the CLI's --allow-endpoint-cidr).
const allowEndpointEnv = "BERTH_ALLOW_ENDPOINT_CIDR"

// buildSubnetRange is where the build network picks its subnet when none
// is set (internal/build/buildkit's autoSubnetRange).
const buildSubnetRange = "10.215.0.0/16"

// endpointPolicy is what tenants' endpoints may point at: not the host, not
// berth's instance and service networks, except the ranges allowed.
func endpointPolicy(cfg Config) (*netguard.Policy, error) {
	allow := cfg.AllowEndpointCIDRs
	if len(allow) == 0 && os.Getenv(allowEndpointEnv) != "" {
		allow = []string{os.Getenv(allowEndpointEnv)}
	}
	allowed, err := netguard.ParsePrefixes(allow)
	if err != nil {
		return nil, fmt.Errorf("--allow-endpoint-cidr: %w", err)
	}
	var internal []netip.Prefix
	for _, s := range []string{orDefault(cfg.Containerd.Subnet, containerd.DefaultSubnet), orDefault(cfg.Containerd.ServiceSubnet, containerd.DefaultServiceSubnet),
		orDefault(cfg.BuildSubnet, buildSubnetRange)} {
		p, err := netip.ParsePrefix(strings.TrimSpace(s))
		if err != nil {
			return nil, fmt.Errorf("instance or service subnet %q: %w", s, err)
		}
		internal = append(internal, p.Masked())
	}
	return &netguard.Policy{Allowed: allowed, Internal: internal}, nil
}

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

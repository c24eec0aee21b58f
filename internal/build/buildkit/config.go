package buildkit

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// cniPoolSize is how many attached network namespaces buildkitd keeps
// ready for RUN steps.
const cniPoolSize = 4

// renderConfig is buildkitd.toml. Everything berth depends on is written
// out rather than left to defaults or command-line flags, so the file
// alone explains how the daemon was set up:
//   - the oci worker (runc) and not the containerd one: berth's containerd
//     runs the workloads and does not need to share its content store with
//     builds; a build cache in buildkitd's own root is simpler to account
//     and to wipe;
//   - the overlayfs snapshotter: "auto" can silently fall back to native
//     (full copies per step), which is slow and fills the disk;
//   - the network mode: "auto" picks up a CNI config from /etc/buildkit if
//     one happens to exist; berth's is its own CNI configuration (an
//     isolated bridge, see network.go) or, if asked for, the host's;
//   - the cache cap (maxUsedSpace, which replaced gckeepstorage);
//   - registries that speak plain HTTP (berth's hub on loopback) or have
//     mirrors;
//   - a bounded build history, which otherwise keeps every build's
//     records and provenance for two days.
func renderConfig(cfg DaemonConfig, root, address string, bn *buildNetwork) (string, error) {
	var b strings.Builder
	fmt.Fprintf(&b, "root = %s\n", strconv.Quote(root))
	fmt.Fprintf(&b, "debug = %t\n", cfg.Debug)
	fmt.Fprintf(&b, "\n[grpc]\n  address = [%s]\n", strconv.Quote(address))
	b.WriteString("\n[history]\n  maxAge = 86400\n  maxEntries = 20\n")

	b.WriteString("\n[worker.oci]\n  enabled = true\n  snapshotter = \"overlayfs\"\n")
	switch {
	case cfg.NetworkMode == NetworkHost:
		b.WriteString("  networkMode = \"host\"\n")
	case cfg.NetworkMode == NetworkIsolated && bn != nil:
		// A small pool of namespaces kept attached saves a CNI ADD per
		// RUN step; buildkitd releases them (CNI DEL) when it stops.
		fmt.Fprintf(&b, "  networkMode = \"cni\"\n  cniConfigPath = %s\n  cniBinaryPath = %s\n  cniPoolSize = %d\n",
			strconv.Quote(bn.confPath()), strconv.Quote(bn.binDir), cniPoolSize)
	default:
		return "", fmt.Errorf("network mode %q: want %s or %s", cfg.NetworkMode, NetworkIsolated, NetworkHost)
	}
	fmt.Fprintf(&b, "  gc = true\n  maxUsedSpace = %s\n", strconv.Quote(cfg.GCKeepStorage))
	b.WriteString("\n[worker.containerd]\n  enabled = false\n")

	regs := slices.Clone(cfg.Registries)
	slices.SortFunc(regs, func(a, b RegistryConfig) int { return strings.Compare(a.Host, b.Host) })
	for _, r := range regs {
		if r.Host == "" || strings.ContainsAny(r.Host, "/ \"") {
			return "", fmt.Errorf("registry host %q: want HOST or HOST:PORT", r.Host)
		}
		fmt.Fprintf(&b, "\n[registry.%s]\n", strconv.Quote(r.Host))
		if len(r.Mirrors) > 0 {
			quoted := make([]string, len(r.Mirrors))
			for i, m := range r.Mirrors {
				quoted[i] = strconv.Quote(m)
			}
			fmt.Fprintf(&b, "  mirrors = [%s]\n", strings.Join(quoted, ", "))
		}
		if r.PlainHTTP {
			b.WriteString("  http = true\n")
		}
		if r.Insecure {
			b.WriteString("  insecure = true\n")
		}
	}
	return b.String(), nil
}

package buildkit

import (
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strings"

	"github.com/vishvananda/netlink"

	"github.com/berth-platform/berth/internal/runtime/cninetwork"
)

// RUN steps execute tenant code. On the host network they would see and
// reach everything the host does: services bound to 127.0.0.1, the
// host's other addresses, berth's instances and service addresses. So by
// default ("isolated") each RUN step gets its own network namespace on a
// bridge of its own (not the instances' bridge), through BuildKit's CNI
// mode with a configuration berth writes, and iptables rules berth owns:
//   - nothing from the bridge reaches the host itself (INPUT: every
//     address of the host, the bridge's gateway and service addresses
//     included; the host's loopback is out of reach anyway, a namespace
//     has its own), except DNS to a resolver the host's resolv.conf names
//     at one of the host's own addresses;
//   - nothing from the bridge reaches the networks in Deny (berth's
//     instance and service subnets);
//   - nothing starts a connection to a RUN step, not even another RUN
//     step on the same bridge (another team's build);
//   - everything else is forwarded and masqueraded: registries, module
//     proxies and package mirrors stay reachable;
//   - IPv6 from the bridge is dropped (a link-local address of the bridge
//     would otherwise reach the host's listeners on [::]).
//
// buildkitd itself stays on the host network: it pulls base images and
// pushes to berth's hub on loopback, which RUN steps never need.

// Network modes of RUN steps.
const (
	NetworkIsolated = "isolated"
	NetworkHost     = "host"
)

// DefaultBuildBridge is the build bridge when none is configured.
const DefaultBuildBridge = "berthbk0"

// autoSubnetRange is where a build subnet is picked from when none is
// configured: next to berth's default instance (10.213/16) and service
// (10.214/16) ranges.
const autoSubnetRange = "10.215.0.0/16"

// NetworkConfig is the isolated network of RUN steps.
type NetworkConfig struct {
	// Bridge is the Linux bridge the RUN steps are attached to; at most
	// 15 bytes. Default DefaultBuildBridge. Two berths on one machine need
	// different bridges.
	Bridge string
	// Subnet is the IPv4 range of RUN steps; "" picks a free /24 in
	// 10.215.0.0/16 (starting at one derived from the bridge name).
	Subnet string
	// BinDir holds the CNI plugins (bridge, host-local, loopback); default
	// /usr/lib/cni, else /opt/cni/bin.
	BinDir string
	// Deny are the networks, besides the host's own addresses, that RUN
	// steps must not reach: berth's instance and service subnets.
	Deny []string
}

// buildNetwork is a NetworkConfig checked and resolved for one daemon.
type buildNetwork struct {
	bridge string
	subnet *net.IPNet
	binDir string
	deny   []*net.IPNet
	dir    string // DIR/cni: the conflist and the IPAM leases
	// hostResolvers are the host's own addresses that resolv.conf names
	// as nameservers: RUN steps may send DNS there and nothing else.
	hostResolvers []net.IP
}

var bridgeNameRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]{0,14}$`)

// newBuildNetwork validates cfg and picks the subnet; dir is the daemon's.
func newBuildNetwork(cfg NetworkConfig, dir string) (*buildNetwork, error) {
	n := &buildNetwork{bridge: cfg.Bridge, dir: filepath.Join(dir, "cni"), hostResolvers: localResolvers()}
	if n.bridge == "" {
		n.bridge = DefaultBuildBridge
	}
	if !bridgeNameRE.MatchString(n.bridge) {
		return nil, fmt.Errorf("build bridge %q: want 1-15 letters, digits, '.', '_' or '-'", n.bridge)
	}
	for _, d := range cfg.Deny {
		_, ipn, err := net.ParseCIDR(d)
		if err != nil {
			return nil, fmt.Errorf("build network: denied network %q: %w", d, err)
		}
		n.deny = append(n.deny, ipn)
	}
	var err error
	if n.binDir, err = cniBinDir(cfg.BinDir); err != nil {
		return nil, err
	}
	if cfg.Subnet != "" {
		n.subnet, err = n.checkSubnet(cfg.Subnet)
	} else {
		n.subnet, err = n.pickSubnet()
	}
	if err != nil {
		return nil, err
	}
	return n, nil
}

// cniBinDir finds the CNI plugins: Debian's containernetworking-plugins
// install them in /usr/lib/cni, the upstream tarball in /opt/cni/bin.
func cniBinDir(dir string) (string, error) {
	candidates := []string{cninetwork.DefaultBinDir, "/opt/cni/bin"}
	if dir != "" {
		candidates = []string{dir}
	}
	for _, d := range candidates {
		ok := true
		for _, plugin := range []string{"bridge", "host-local", "loopback"} {
			if _, err := os.Stat(filepath.Join(d, plugin)); err != nil {
				ok = false
			}
		}
		if ok {
			return d, nil
		}
	}
	return "", fmt.Errorf("build network: the CNI plugins bridge, host-local and loopback are not in %v (apt-get install containernetworking-plugins)", candidates)
}

// checkSubnet parses s and checks that it is free on this host and apart
// from the denied networks.
func (n *buildNetwork) checkSubnet(s string) (*net.IPNet, error) {
	ip, ipn, err := net.ParseCIDR(s)
	if err != nil {
		return nil, fmt.Errorf("build subnet %q: %w", s, err)
	}
	if ip.To4() == nil {
		return nil, fmt.Errorf("build subnet %s: only IPv4 is supported", s)
	}
	if ones, _ := ipn.Mask.Size(); ones > 28 {
		return nil, fmt.Errorf("build subnet %s is too small: want /28 or larger", s)
	}
	for _, d := range n.deny {
		if cninetwork.Overlaps(ipn, d) {
			return nil, fmt.Errorf("build subnet %s overlaps berth's network %s: choose another", ipn, d)
		}
	}
	// A bridge left from an earlier run carries the gateway address.
	if err := cninetwork.CheckSubnet(ipn, n.bridge); err != nil {
		return nil, fmt.Errorf("build subnet: %w", err)
	}
	return ipn, nil
}

// pickSubnet takes the first free /24 of autoSubnetRange, starting at one
// the bridge name hashes to, so that berths with different bridges on
// one machine (tests, a second data directory) rarely even try the same.
func (n *buildNetwork) pickSubnet() (*net.IPNet, error) {
	h := fnv.New32a()
	h.Write([]byte(n.bridge))
	start := h.Sum32() % 256
	_, base, _ := net.ParseCIDR(autoSubnetRange)
	var last error
	for i := range uint32(256) {
		third := (start + i) % 256
		cidr := fmt.Sprintf("%d.%d.%d.0/24", base.IP[0], base.IP[1], third)
		ipn, err := n.checkSubnet(cidr)
		if err == nil {
			return ipn, nil
		}
		last = err
	}
	return nil, fmt.Errorf("build network: no free /24 in %s (set a build subnet): %w", autoSubnetRange, last)
}

func (n *buildNetwork) confPath() string { return filepath.Join(n.dir, "build.conflist") }
func (n *buildNetwork) ipamDir() string  { return filepath.Join(n.dir, "ipam") }

// gateway is the bridge's address, the RUN steps' default route.
func (n *buildNetwork) gateway() net.IP {
	ip := n.subnet.IP.Mask(n.subnet.Mask).To4()
	return net.IPv4(ip[0], ip[1], ip[2], ip[3]+1).To4()
}

// writeConf writes the conflist buildkitd reads. The bridge plugin does
// not masquerade (ipMasq): berth's own NAT rule does, one rule for the
// subnet instead of a chain per RUN step that a killed buildkitd would
// leave behind. The leases live under berth's directory, not
// /var/lib/cni, so that two berths never share them.
func (n *buildNetwork) writeConf() error {
	conf := map[string]any{
		"cniVersion": "1.0.0",
		"name":       "berth-build-" + n.bridge,
		"plugins": []any{map[string]any{
			"type":      "bridge",
			"bridge":    n.bridge,
			"isGateway": true,
			"ipMasq":    false,
			"ipam": map[string]any{
				"type":    "host-local",
				"dataDir": n.ipamDir(),
				"ranges":  [][]map[string]string{{{"subnet": n.subnet.String(), "gateway": n.gateway().String()}}},
				"routes":  []map[string]string{{"dst": "0.0.0.0/0"}},
			},
		}},
	}
	b, err := json.MarshalIndent(conf, "", "  ")
	if err != nil {
		return err
	}
	if err := os.MkdirAll(n.dir, 0o700); err != nil {
		return fmt.Errorf("build network: %w", err)
	}
	// Leases of RUN steps of an earlier buildkitd are stale: it is gone.
	if err := os.RemoveAll(n.ipamDir()); err != nil {
		return fmt.Errorf("build network: %w", err)
	}
	if err := os.WriteFile(n.confPath(), b, 0o600); err != nil {
		return fmt.Errorf("build network: %w", err)
	}
	return nil
}

// bridgeNetfilter says whether bridged traffic passes iptables
// (br_netfilter): only then do the FORWARD rules keep two RUN steps on
// the bridge apart. This kernel's nftables cannot match the bridge of a
// port, and Debian's bridge plugin cannot isolate ports.
func bridgeNetfilter() bool {
	b, err := os.ReadFile("/proc/sys/net/bridge/bridge-nf-call-iptables")
	return err == nil && strings.TrimSpace(string(b)) == "1"
}

// cniResultCache is where libcni inside buildkitd caches the result of
// every ADD (BuildKit does not let it be moved under berth's directory).
const cniResultCache = "/var/lib/cni/results"

// removeCNICache removes the cached results of the namespaces below
// netnsDir (buildkitd's root/net/cni): a buildkitd that was killed or
// forced to shut down never ran their DEL. Other programs' entries stay.
func removeCNICache(netnsDir string) error {
	entries, err := os.ReadDir(cniResultCache)
	if err != nil {
		return nil // no cache, nothing left
	}
	var errs []error
	for _, e := range entries {
		path := filepath.Join(cniResultCache, e.Name())
		b, err := os.ReadFile(path)
		if err != nil {
			continue
		}
		var cached struct {
			NetNS string `json:"netns"`
		}
		if json.Unmarshal(b, &cached) != nil || !strings.HasPrefix(cached.NetNS, netnsDir+string(filepath.Separator)) {
			continue
		}
		if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// removeBridge deletes the bridge and the leases once buildkitd is gone.
func (n *buildNetwork) removeBridge() error {
	var errs []error
	if link, err := netlink.LinkByName(n.bridge); err == nil {
		if _, ok := link.(*netlink.Bridge); ok {
			if err := netlink.LinkDel(link); err != nil {
				errs = append(errs, fmt.Errorf("delete bridge %s: %w", n.bridge, err))
			}
		}
	}
	if err := os.RemoveAll(n.ipamDir()); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// Package cninetwork attaches container network namespaces to a Linux
// bridge through the standard CNI plugins (bridge, host-local, loopback).
//
// The embedded containerd engine is its own kubelet: every instance gets a
// network namespace with an address on one bridge, reachable from the host
// (berth's service proxy dials instance IPs) and masqueraded towards the
// outside. CNI is used instead of hand-written netlink code because the
// plugins already get the hard parts right (veth pairs, hairpin, IPAM with
// file locks, iptables masquerade chains) and because it is what the
// Kubernetes driver's clusters use, so instances behave the same on both.
//
// Nothing here writes to the system CNI locations (/etc/cni, /var/lib/cni):
// the IPAM leases and libcni's result cache live under berth's own state
// directory so that berth can be removed without leaving state behind and
// so that two berth data directories never hand out the same address.
package cninetwork

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"sync"

	"github.com/containernetworking/cni/libcni"
	"github.com/containernetworking/cni/pkg/types"
	types100 "github.com/containernetworking/cni/pkg/types/100"
)

// cniVersion is the newest spec version that Debian 12's plugins (1.1.1)
// support; libcni speaks it too.
const cniVersion = "1.0.0"

// DefaultBinDir is where Debian's containernetworking-plugins installs the
// plugin binaries.
const DefaultBinDir = "/usr/lib/cni"

// ifName is the name of the container side of the veth pair.
const ifName = "eth0"

// Config describes one bridge network.
type Config struct {
	// Name is the CNI network name. It appears in iptables comments and in
	// the IPAM directory; default "berth-" + Bridge.
	Name string
	// Bridge is the Linux bridge device ("berth0"); at most 15 bytes.
	Bridge string
	// Subnet is the IPv4 CIDR instances get addresses from; the first
	// address is the bridge's (the gateway).
	Subnet string
	// BinDir holds the CNI plugins; default DefaultBinDir.
	BinDir string
	// StateDir holds IPAM leases (ipam/) and libcni's result cache
	// (cache/); required.
	StateDir string
	// MTU of the bridge and veths; 0 lets the plugin choose.
	MTU int
}

// Network is a configured bridge network. It is safe for concurrent use.
type Network struct {
	cfg     Config
	subnet  *net.IPNet
	gateway net.IP
	cni     *libcni.CNIConfig
	bridge  *libcni.NetworkConfigList
	lo      *libcni.NetworkConfigList

	// mu serialises CNI invocations. The plugins lock their own files, but
	// the idempotency checks here (cached result, then ADD) must not
	// interleave for the same container, and one lock is simple and cheap
	// next to the cost of forking the plugins.
	mu sync.Mutex
}

// New validates cfg, checks that the subnet is free on this host and
// prepares the CNI configuration. It does not create the bridge: the
// bridge plugin does that on the first Setup.
func New(cfg Config) (*Network, error) {
	if cfg.Bridge == "" {
		return nil, errors.New("cninetwork: bridge name is required")
	}
	if len(cfg.Bridge) > 15 {
		return nil, fmt.Errorf("cninetwork: bridge name %q is longer than 15 bytes", cfg.Bridge)
	}
	if cfg.StateDir == "" {
		return nil, errors.New("cninetwork: state directory is required")
	}
	if cfg.Name == "" {
		cfg.Name = "berth-" + cfg.Bridge
	}
	if cfg.BinDir == "" {
		cfg.BinDir = DefaultBinDir
	}
	ip, subnet, err := net.ParseCIDR(cfg.Subnet)
	if err != nil {
		return nil, fmt.Errorf("cninetwork: subnet %q: %w", cfg.Subnet, err)
	}
	if ip.To4() == nil {
		return nil, fmt.Errorf("cninetwork: subnet %s: only IPv4 subnets are supported", cfg.Subnet)
	}
	if ones, _ := subnet.Mask.Size(); ones > 30 {
		return nil, fmt.Errorf("cninetwork: subnet %s is too small (at most /30)", subnet)
	}
	if _, err := os.Stat(filepath.Join(cfg.BinDir, "bridge")); err != nil {
		return nil, fmt.Errorf("cninetwork: CNI bridge plugin not found in %s (install containernetworking-plugins): %w", cfg.BinDir, err)
	}
	// Our own bridge carries the gateway address inside the subnet; it is
	// not a collision.
	if err := CheckSubnet(subnet, cfg.Bridge); err != nil {
		return nil, err
	}

	n := &Network{cfg: cfg, subnet: subnet, gateway: nthIP(subnet, 1)}
	for _, d := range []string{n.ipamDir(), n.cacheDir()} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return nil, fmt.Errorf("cninetwork: %w", err)
		}
	}
	n.cni = libcni.NewCNIConfigWithCacheDir([]string{cfg.BinDir}, n.cacheDir(), nil)

	if n.bridge, err = libcni.ConfListFromBytes(n.bridgeConf()); err != nil {
		return nil, fmt.Errorf("cninetwork: bridge configuration: %w", err)
	}
	loConf, _ := json.Marshal(map[string]any{
		"cniVersion": cniVersion,
		"name":       cfg.Name + "-lo",
		"plugins":    []any{map[string]any{"type": "loopback"}},
	})
	if n.lo, err = libcni.ConfListFromBytes(loConf); err != nil {
		return nil, fmt.Errorf("cninetwork: loopback configuration: %w", err)
	}
	return n, nil
}

// bridgeConf is the conflist for the bridge: isGateway gives the bridge the
// gateway address (so the host reaches instances directly), ipMasq lets
// instances reach the outside, hairpinMode lets an instance reach itself
// through a service address that berth's proxy maps back to it.
func (n *Network) bridgeConf() []byte {
	bridge := map[string]any{
		"type":        "bridge",
		"bridge":      n.cfg.Bridge,
		"isGateway":   true,
		"ipMasq":      true,
		"hairpinMode": true,
		"ipam": map[string]any{
			"type":    "host-local",
			"dataDir": n.ipamDir(),
			"ranges": [][]map[string]string{{{
				"subnet":  n.subnet.String(),
				"gateway": n.gateway.String(),
			}}},
			"routes": []map[string]string{{"dst": "0.0.0.0/0"}},
		},
	}
	if n.cfg.MTU > 0 {
		bridge["mtu"] = n.cfg.MTU
	}
	b, _ := json.Marshal(map[string]any{
		"cniVersion": cniVersion,
		"name":       n.cfg.Name,
		"plugins":    []any{bridge},
	})
	return b
}

func (n *Network) ipamDir() string  { return filepath.Join(n.cfg.StateDir, "ipam") }
func (n *Network) cacheDir() string { return filepath.Join(n.cfg.StateDir, "cache") }

// Name is the CNI network name.
func (n *Network) Name() string { return n.cfg.Name }

// Bridge is the bridge device name.
func (n *Network) Bridge() string { return n.cfg.Bridge }

// Subnet is the network's address range.
func (n *Network) Subnet() *net.IPNet {
	s := *n.subnet
	return &s
}

// Gateway is the bridge's own address: the instances' default route and the
// address under which they reach the host.
func (n *Network) Gateway() net.IP { return append(net.IP(nil), n.gateway...) }

// Setup attaches the network namespace at netnsPath to the bridge under
// containerID and returns the address it got. Calling it again for a
// container that is already attached to the same namespace returns the
// existing address; an attachment to another namespace (a stale one from a
// previous container with the same ID) is torn down first.
func (n *Network) Setup(ctx context.Context, containerID, netnsPath string) (net.IP, error) {
	if containerID == "" || netnsPath == "" {
		return nil, errors.New("cninetwork: setup needs a container ID and a network namespace path")
	}
	n.mu.Lock()
	defer n.mu.Unlock()

	rt := n.runtimeConf(containerID, netnsPath, ifName)
	if cached, err := n.cni.GetNetworkListCachedResult(n.bridge, rt); err == nil && cached != nil {
		_, cachedRT, _ := n.cni.GetNetworkListCachedConfig(n.bridge, rt)
		if cachedRT != nil && cachedRT.NetNS == netnsPath {
			// Same container, same path: still attached unless the
			// namespace was re-created meanwhile, which CHECK finds out.
			if ip, err := resultIP(cached); err == nil && n.cni.CheckNetworkList(ctx, n.bridge, rt) == nil {
				return ip, nil
			}
		}
		stale := rt
		if cachedRT != nil {
			stale = cachedRT
		}
		if err := n.del(ctx, containerID, stale); err != nil {
			return nil, fmt.Errorf("cninetwork: remove stale attachment of %s: %w", containerID, err)
		}
	}

	if _, err := n.cni.AddNetworkList(ctx, n.lo, n.runtimeConf(containerID, netnsPath, "lo")); err != nil {
		return nil, fmt.Errorf("cninetwork: loopback for %s: %w", containerID, err)
	}
	res, err := n.cni.AddNetworkList(ctx, n.bridge, rt)
	if err != nil {
		// Give back whatever part of the ADD succeeded (the IPAM lease
		// above all) so that a retry starts clean.
		_ = n.cni.DelNetworkList(context.WithoutCancel(ctx), n.bridge, rt)
		return nil, fmt.Errorf("cninetwork: attach %s to bridge %s: %w", containerID, n.cfg.Bridge, err)
	}
	ip, err := resultIP(res)
	if err != nil {
		_ = n.cni.DelNetworkList(context.WithoutCancel(ctx), n.bridge, rt)
		return nil, fmt.Errorf("cninetwork: attach %s: %w", containerID, err)
	}
	return ip, nil
}

// Teardown detaches containerID: it removes the veth, the masquerade rules
// and releases the address. It is idempotent: an unknown container, a
// namespace that is already gone, or an empty netnsPath are fine. The
// namespace should still exist for the masquerade rules to be found (the
// bridge plugin reads the addresses from inside it), which is why the
// containerd engine pins namespaces instead of using /proc/<pid>/ns/net.
func (n *Network) Teardown(ctx context.Context, containerID, netnsPath string) error {
	if containerID == "" {
		return errors.New("cninetwork: teardown needs a container ID")
	}
	n.mu.Lock()
	defer n.mu.Unlock()

	rt := n.runtimeConf(containerID, netnsPath, ifName)
	if netnsPath != "" && !IsNamespace(netnsPath) {
		// The namespace is gone (or unpinned by a reboot): the veth went
		// with it. Without a path the plugins only release the address.
		rt.NetNS = ""
	}
	if err := n.del(ctx, containerID, rt); err != nil {
		return fmt.Errorf("cninetwork: detach %s from bridge %s: %w", containerID, n.cfg.Bridge, err)
	}
	lo := n.runtimeConf(containerID, rt.NetNS, "lo")
	if err := n.cni.DelNetworkList(ctx, n.lo, lo); err != nil {
		return fmt.Errorf("cninetwork: loopback of %s: %w", containerID, err)
	}
	return nil
}

// del runs the bridge DEL and then removes masquerade rules it could not
// see: the plugin finds them through the addresses inside the namespace,
// so a namespace that is gone or was re-created hides them. A DEL that
// failed on such leftovers (a chain still referenced) is retried once
// after the sweep.
func (n *Network) del(ctx context.Context, containerID string, rt *libcni.RuntimeConf) error {
	err := n.cni.DelNetworkList(ctx, n.bridge, rt)
	if serr := sweepMasquerade(ctx, n.cfg.Name, containerID); serr != nil {
		return fmt.Errorf("masquerade rules: %w", serr)
	}
	if err != nil {
		err = n.cni.DelNetworkList(ctx, n.bridge, rt)
	}
	return err
}

func (n *Network) runtimeConf(id, netns, ifname string) *libcni.RuntimeConf {
	return &libcni.RuntimeConf{ContainerID: id, NetNS: netns, IfName: ifname}
}

// resultIP picks the IPv4 address the bridge plugin assigned to eth0.
func resultIP(r types.Result) (net.IP, error) {
	res, err := types100.NewResultFromResult(r)
	if err != nil {
		return nil, fmt.Errorf("CNI result: %w", err)
	}
	for _, ipc := range res.IPs {
		if ip4 := ipc.Address.IP.To4(); ip4 != nil {
			return ip4, nil
		}
	}
	return nil, errors.New("CNI result has no IPv4 address")
}

// nthIP is the n-th address of subnet (n=1 is the first host address).
func nthIP(subnet *net.IPNet, n int) net.IP {
	ip := append(net.IP(nil), subnet.IP.To4()...)
	for i := len(ip) - 1; i >= 0 && n > 0; i-- {
		sum := int(ip[i]) + n
		ip[i] = byte(sum)
		n = sum >> 8
	}
	return ip
}

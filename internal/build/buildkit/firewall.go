package buildkit

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"slices"
	"strings"
)

// The rules live in chains of berth's own, one per table and direction,
// named after the bridge, and are reached by one jump rule each from the
// built-in chains, inserted first so that no ACCEPT of another program
// (Docker, a CNI firewall plugin) comes before them. Removing them is
// removing those jumps and chains: nothing else is touched.

// rule is one iptables invocation without the command (-A, -I, -D).
type rule struct {
	table, chain string
	spec         []string
}

// chainName is berth's chain for a direction ("I" input, "F" forward,
// "N" nat) of one bridge: at most 10+15 bytes, under iptables' 28.
func (n *buildNetwork) chainName(dir string) string { return "BERTH-BK" + dir + "-" + n.bridge }

func (n *buildNetwork) comment() []string {
	return []string{"-m", "comment", "--comment", "berth build network " + n.bridge}
}

// reject refuses with a TCP reset (a RUN step gets "connection refused"
// at once, not a hang until its timeout) and ICMP for everything else.
func reject(match ...string) [][]string {
	return [][]string{
		slices.Concat(match, []string{"-p", "tcp", "-j", "REJECT", "--reject-with", "tcp-reset"}),
		slices.Concat(match, []string{"-j", "REJECT"}),
	}
}

// v4Chains are berth's IPv4 chains with their rules, in order.
func (n *buildNetwork) v4Chains() []rule {
	in, fwd, nat := n.chainName("I"), n.chainName("F"), n.chainName("N")
	var rules []rule
	add := func(table, chain string, specs ...[]string) {
		for _, s := range specs {
			rules = append(rules, rule{table, chain, s})
		}
	}
	// The one host service RUN steps may need: a resolver the host
	// itself uses that listens on one of the host's addresses (buildkitd
	// replaces loopback resolvers with public ones).
	for _, ns := range n.hostResolvers {
		for _, proto := range []string{"udp", "tcp"} {
			add("filter", in, []string{"-d", ns.String(), "-p", proto, "--dport", "53", "-j", "ACCEPT"})
		}
	}
	add("filter", in, reject()...)
	add("filter", fwd,
		[]string{"-o", n.bridge, "-m", "conntrack", "--ctstate", "RELATED,ESTABLISHED", "-j", "ACCEPT"},
		[]string{"-o", n.bridge, "-j", "DROP"})
	for _, d := range n.deny {
		add("filter", fwd, reject("-i", n.bridge, "-d", d.String())...)
	}
	// Accepted here, not left to the FORWARD policy: a host whose policy
	// is DROP (Docker sets it) would otherwise cut builds off the outside.
	add("filter", fwd, []string{"-i", n.bridge, "-j", "ACCEPT"})
	add("nat", nat, []string{"!", "-o", n.bridge, "-j", "MASQUERADE"})
	return rules
}

// v4Jumps lead from the built-in chains into berth's.
func (n *buildNetwork) v4Jumps() []rule {
	c := n.comment()
	return []rule{
		{"filter", "INPUT", slices.Concat([]string{"-i", n.bridge}, c, []string{"-j", n.chainName("I")})},
		{"filter", "FORWARD", slices.Concat([]string{"-i", n.bridge}, c, []string{"-j", n.chainName("F")})},
		{"filter", "FORWARD", slices.Concat([]string{"-o", n.bridge}, c, []string{"-j", n.chainName("F")})},
		{"nat", "POSTROUTING", slices.Concat([]string{"-s", n.subnet.String()}, c, []string{"-j", n.chainName("N")})},
	}
}

// v6Chains drop all IPv6 of the bridge: RUN steps have no IPv6 address to
// route, only link-local ones that reach the host.
func (n *buildNetwork) v6Chains() []rule {
	return []rule{{"filter", n.chainName("I"), []string{"-j", "DROP"}}}
}

func (n *buildNetwork) v6Jumps() []rule {
	c := n.comment()
	return []rule{
		{"filter", "INPUT", slices.Concat([]string{"-i", n.bridge}, c, []string{"-j", n.chainName("I")})},
		{"filter", "FORWARD", slices.Concat([]string{"-i", n.bridge}, c, []string{"-j", n.chainName("I")})},
		{"filter", "FORWARD", slices.Concat([]string{"-o", n.bridge}, c, []string{"-j", n.chainName("I")})},
	}
}

// installFirewall replaces whatever an earlier run left with fresh rules.
// IPv4 rules are required; IPv6 ones only where the kernel has IPv6.
func (n *buildNetwork) installFirewall(ctx context.Context) error {
	ipt, err := exec.LookPath("iptables")
	if err != nil {
		return fmt.Errorf("build network: iptables not found (apt-get install iptables), or run builds on the host network: %w", err)
	}
	if err := n.install(ctx, ipt, n.v4Chains(), n.v4Jumps()); err != nil {
		return err
	}
	ip6t, err := exec.LookPath("ip6tables")
	if err != nil {
		return nil
	}
	if err := n.install(ctx, ip6t, n.v6Chains(), n.v6Jumps()); err != nil && ipv6Enabled() {
		return err
	}
	return nil
}

func (n *buildNetwork) install(ctx context.Context, bin string, chains, jumps []rule) error {
	n.uninstall(ctx, bin, chains, jumps)
	created := map[string]bool{}
	for _, r := range chains {
		if key := r.table + "/" + r.chain; !created[key] {
			if err := iptables(ctx, bin, "-t", r.table, "-N", r.chain); err != nil {
				return err
			}
			created[key] = true
		}
		if err := iptables(ctx, bin, append([]string{"-t", r.table, "-A", r.chain}, r.spec...)...); err != nil {
			return err
		}
	}
	for _, r := range jumps {
		if err := iptables(ctx, bin, append([]string{"-t", r.table, "-I", r.chain, "1"}, r.spec...)...); err != nil {
			return err
		}
	}
	return nil
}

// removeFirewall removes berth's jumps and chains of this bridge.
func (n *buildNetwork) removeFirewall(ctx context.Context) error {
	var errs []error
	if ipt, err := exec.LookPath("iptables"); err == nil {
		errs = append(errs, n.uninstall(ctx, ipt, n.v4Chains(), n.v4Jumps()))
	}
	if ip6t, err := exec.LookPath("ip6tables"); err == nil {
		if err := n.uninstall(ctx, ip6t, n.v6Chains(), n.v6Jumps()); err != nil && ipv6Enabled() {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// uninstall deletes every copy of the jumps (a crash between insert and
// delete could leave two), then flushes and deletes the chains. A rule
// or chain that is not there is not an error.
func (n *buildNetwork) uninstall(ctx context.Context, bin string, chains, jumps []rule) error {
	var errs []error
	for _, r := range jumps {
		for range 16 {
			args := append([]string{"-t", r.table, "-D", r.chain}, r.spec...)
			if err := iptables(ctx, bin, args...); err != nil {
				break
			}
		}
	}
	done := map[string]bool{}
	for _, r := range chains {
		key := r.table + "/" + r.chain
		if done[key] {
			continue
		}
		done[key] = true
		if iptables(ctx, bin, "-t", r.table, "-n", "-L", r.chain) != nil {
			continue // no such chain
		}
		if err := iptables(ctx, bin, "-t", r.table, "-F", r.chain); err != nil {
			errs = append(errs, err)
		}
		if err := iptables(ctx, bin, "-t", r.table, "-X", r.chain); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

func iptables(ctx context.Context, bin string, args ...string) error {
	out, err := exec.CommandContext(ctx, bin, append([]string{"-w"}, args...)...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s %s: %w: %s", bin, strings.Join(args, " "), err, bytes.TrimSpace(out))
	}
	return nil
}

// ipv6Enabled says whether the kernel has IPv6 at all: without it there
// are no IPv6 rules to write and no link-local path to the host.
func ipv6Enabled() bool {
	_, err := os.Stat("/proc/net/if_inet6")
	return err == nil
}

// hostResolvers are the nameservers in resolv.conf (text) that are
// addresses of this host (hostAddrs), loopback excepted.
func hostResolvers(text string, hostAddrs []net.IP) []net.IP {
	var found []net.IP
	for _, line := range strings.Split(text, "\n") {
		f := strings.Fields(line)
		if len(f) < 2 || f[0] != "nameserver" {
			continue
		}
		ip := net.ParseIP(f[1])
		if ip == nil || ip.To4() == nil || ip.IsLoopback() {
			continue
		}
		if slices.ContainsFunc(hostAddrs, ip.Equal) && !slices.ContainsFunc(found, ip.Equal) {
			found = append(found, ip.To4())
		}
	}
	return found
}

// localResolvers reads the resolv.conf files buildkitd takes its
// nameservers from.
func localResolvers() []net.IP {
	var hostAddrs []net.IP
	addrs, _ := net.InterfaceAddrs()
	for _, a := range addrs {
		if ipn, ok := a.(*net.IPNet); ok {
			hostAddrs = append(hostAddrs, ipn.IP)
		}
	}
	var text string
	for _, f := range []string{"/etc/resolv.conf", "/run/systemd/resolve/resolv.conf"} {
		b, _ := os.ReadFile(f)
		text += string(b) + "\n"
	}
	return hostResolvers(text, hostAddrs)
}

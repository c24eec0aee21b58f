package cninetwork

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
)

// TeamNetworks gives every team a bridge and a subnet of its own, carved
// out of one address range, so that teams never share a layer-2 segment.
// Traffic between two teams' bridges would still be routed by the host;
// a filter chain (jumped to from FORWARD) drops whatever enters from one
// team's bridge towards any other address of the range. Instances reach
// other teams only through what the host publishes (gateway routes).
//
// With br_netfilter loaded, bridged frames inside one team's bridge pass
// FORWARD too, with the same bridge as in- and out-interface; the rule
// spares exactly those.
type TeamNetworks struct {
	cfg      TeamConfig
	supernet *net.IPNet
	prefix   int // of every team's block
	chain    string

	mu   sync.Mutex
	nets map[int]*Network
}

// TeamConfig describes the range the team networks share.
type TeamConfig struct {
	// Bridge is the prefix of the bridge names: team i gets Bridge-i,
	// shortened to fit the 15-byte limit of device names.
	Bridge string
	// Subnet is the whole IPv4 range; each team gets one block of it
	// (see teamPrefix: /24 blocks of a /16 or a /20, /28 of a /24).
	Subnet string
	// StateDir holds one directory of IPAM leases and CNI cache per team.
	StateDir string
	// BinDir holds the CNI plugins; default DefaultBinDir.
	BinDir string
}

// NewTeamNetworks checks that the range is free on the host and installs
// the isolation chain; the bridges come with each team's first instance.
func NewTeamNetworks(ctx context.Context, cfg TeamConfig) (*TeamNetworks, error) {
	if cfg.Bridge == "" || cfg.StateDir == "" {
		return nil, errors.New("cninetwork: team networks need a bridge prefix and a state directory")
	}
	_, supernet, err := net.ParseCIDR(cfg.Subnet)
	if err != nil || supernet.IP.To4() == nil {
		return nil, fmt.Errorf("cninetwork: subnet %q is not an IPv4 CIDR", cfg.Subnet)
	}
	ones, _ := supernet.Mask.Size()
	if ones > 26 {
		return nil, fmt.Errorf("cninetwork: subnet %s is too small to split per team; give at least a /26 (a /16 gives 256 teams of 253 instances)", supernet)
	}
	t := &TeamNetworks{cfg: cfg, supernet: supernet, prefix: teamPrefix(ones),
		chain: "BERTH-ISO-" + shorten(cfg.Bridge, 15), nets: map[int]*Network{}}
	if err := t.checkFree(); err != nil {
		return nil, err
	}
	if err := t.installChain(ctx); err != nil {
		return nil, err
	}
	return t, nil
}

// teamPrefix is the size of each team's block in a range of /ones: a /24
// (253 instances) while that leaves at least 16 teams, at most 1024 blocks,
// and 16 smaller blocks of a range under /20.
func teamPrefix(ones int) int {
	if ones <= 20 {
		return min(24, ones+10)
	}
	return min(ones+4, 28)
}

// checkFree refuses a range that overlaps an address of the host, except
// the addresses of our own team bridges (a restart finds them).
func (t *TeamNetworks) checkFree() error {
	var own []string
	for i := range t.blocks() {
		own = append(own, t.bridgeName(i))
	}
	return CheckSubnet(t.supernet, own...)
}

// blocks is how many teams fit in the range.
func (t *TeamNetworks) blocks() int {
	ones, _ := t.supernet.Mask.Size()
	return 1 << (t.prefix - ones)
}

// bridgeName is team block i's bridge.
func (t *TeamNetworks) bridgeName(i int) string {
	sfx := "-" + strconv.Itoa(i)
	return shorten(t.cfg.Bridge, 15-len(sfx)) + sfx
}

func shorten(s string, n int) string {
	if len(s) > n {
		return s[:n]
	}
	return s
}

// block is the subnet of team block i.
func (t *TeamNetworks) block(i int) *net.IPNet {
	size := 1 << (32 - t.prefix)
	return &net.IPNet{IP: nthIP(t.supernet, i*size), Mask: net.CIDRMask(t.prefix, 32)}
}

// Range is the whole address range of the team networks.
func (t *TeamNetworks) Range() *net.IPNet {
	s := *t.supernet
	return &s
}

// Network is team block i's network, prepared on first use.
func (t *TeamNetworks) Network(i int) (*Network, error) {
	if i < 0 || i >= t.blocks() {
		return nil, fmt.Errorf("cninetwork: subnet %s holds %d team networks and all are taken; give berth a larger --subnet", t.supernet, t.blocks())
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if n, ok := t.nets[i]; ok {
		return n, nil
	}
	bridge := t.bridgeName(i)
	n, err := New(Config{Bridge: bridge, Subnet: t.block(i).String(), BinDir: t.cfg.BinDir,
		StateDir: filepath.Join(t.cfg.StateDir, bridge)})
	if err != nil {
		return nil, err
	}
	if err := t.isolate(context.Background(), bridge); err != nil {
		return nil, err
	}
	t.nets[i] = n
	return n, nil
}

// Release removes team block i's network (bridge, masquerade rules,
// leases) and its isolation rule, so that the block can serve another
// team. Its instances must be gone.
func (t *TeamNetworks) Release(ctx context.Context, i int) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	bridge := t.bridgeName(i)
	n := t.nets[i]
	if n == nil {
		n = &Network{cfg: Config{Name: "berth-" + bridge, Bridge: bridge, StateDir: filepath.Join(t.cfg.StateDir, bridge)}}
	}
	if err := n.Destroy(ctx); err != nil {
		return err
	}
	_ = os.Remove(n.cfg.StateDir)
	delete(t.nets, i)
	rule := []string{"-i", bridge, "!", "-o", bridge, "-d", t.supernet.String(), "-j", "DROP"}
	for iptables(ctx, append([]string{"-D", t.chain}, rule...)...) == nil {
	}
	return nil
}

// Networks are the team networks prepared so far.
func (t *TeamNetworks) Networks() []*Network {
	t.mu.Lock()
	defer t.mu.Unlock()
	out := make([]*Network, 0, len(t.nets))
	for _, n := range t.nets {
		out = append(out, n)
	}
	return out
}

// Destroy removes every team network of the range, prepared by this
// process or an earlier one, and the isolation chain (uninstall and
// tests).
func (t *TeamNetworks) Destroy(ctx context.Context) error {
	var errs []error
	links := map[string]bool{}
	if ifaces, err := net.Interfaces(); err == nil {
		for _, iface := range ifaces {
			links[iface.Name] = true
		}
	}
	for i := range t.blocks() {
		bridge := t.bridgeName(i)
		n := &Network{cfg: Config{Name: "berth-" + bridge, Bridge: bridge, StateDir: filepath.Join(t.cfg.StateDir, bridge)}}
		if _, err := os.Stat(n.cfg.StateDir); err != nil && !links[bridge] {
			continue // never used
		}
		errs = append(errs, n.Destroy(ctx))
		_ = os.Remove(n.cfg.StateDir)
	}
	t.mu.Lock()
	t.nets = map[int]*Network{}
	t.mu.Unlock()
	errs = append(errs, t.removeChain(ctx))
	return errors.Join(errs...)
}

func iptables(ctx context.Context, args ...string) error {
	out, err := exec.CommandContext(ctx, "iptables", append([]string{"-w"}, args...)...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("iptables %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return nil
}

// ensureRule appends rule to chain unless it is there.
func ensureRule(ctx context.Context, chain string, rule ...string) error {
	if iptables(ctx, append([]string{"-C", chain}, rule...)...) == nil {
		return nil
	}
	return iptables(ctx, append([]string{"-A", chain}, rule...)...)
}

// installChain creates the chain and jumps to it first thing in FORWARD,
// ahead of rules that accept bridge traffic wholesale (Docker's, the
// bridge plugin's).
func (t *TeamNetworks) installChain(ctx context.Context) error {
	if _, err := exec.LookPath("iptables"); err != nil {
		return errors.New("cninetwork: iptables is needed to keep teams' networks apart; install it (apt-get install iptables)")
	}
	if iptables(ctx, "-L", t.chain, "-n") != nil {
		if err := iptables(ctx, "-N", t.chain); err != nil {
			return fmt.Errorf("cninetwork: %w", err)
		}
	}
	jump := []string{"-j", t.chain, "-m", "comment", "--comment", "berth team isolation"}
	if iptables(ctx, append([]string{"-C", "FORWARD"}, jump...)...) == nil {
		return nil
	}
	if err := iptables(ctx, append([]string{"-I", "FORWARD", "1"}, jump...)...); err != nil {
		return fmt.Errorf("cninetwork: %w", err)
	}
	return nil
}

// isolate drops what enters from bridge towards the range and does not
// stay on bridge: another team's instances. (Other bridges' own addresses
// are the host's and go through INPUT, not FORWARD.)
func (t *TeamNetworks) isolate(ctx context.Context, bridge string) error {
	if err := ensureRule(ctx, t.chain, "-i", bridge, "!", "-o", bridge, "-d", t.supernet.String(), "-j", "DROP"); err != nil {
		return fmt.Errorf("cninetwork: isolate %s: %w", bridge, err)
	}
	return nil
}

func (t *TeamNetworks) removeChain(ctx context.Context) error {
	jump := []string{"-j", t.chain, "-m", "comment", "--comment", "berth team isolation"}
	for iptables(ctx, append([]string{"-D", "FORWARD"}, jump...)...) == nil {
	}
	if iptables(ctx, "-L", t.chain, "-n") != nil {
		return nil
	}
	if err := iptables(ctx, "-F", t.chain); err != nil {
		return err
	}
	return iptables(ctx, "-X", t.chain)
}

// Chain is the isolation chain's name in the filter table.
func (t *TeamNetworks) Chain() string { return t.chain }

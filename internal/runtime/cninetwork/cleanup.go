package cninetwork

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"sort"
	"strconv"
	"strings"

	"github.com/vishvananda/netlink"
)

// The bridge plugin masquerades each instance through a per-container
// chain "CNI-<hash>" jumped to from nat/POSTROUTING by a rule commented
// `name: "<network>" id: "<container>"`. Its DEL removes them only while
// the container's network namespace still exists (it reads the addresses
// from inside). When a namespace vanished first (a reboot, a crash between
// steps), the rules would stay forever; sweepMasquerade finds them by their
// comment instead.

// sweepMasquerade deletes the POSTROUTING rules the bridge plugin added for
// network netName (and container id, unless id is empty) together with the
// chains they jump to. Missing iptables is not an error: then the plugin
// could not have added rules either.
func sweepMasquerade(ctx context.Context, netName, id string) error {
	bin, err := exec.LookPath("iptables")
	if err != nil {
		return nil
	}
	out, err := exec.CommandContext(ctx, bin, "-w", "-t", "nat", "-L", "POSTROUTING", "-n", "--line-numbers").Output()
	if err != nil {
		return fmt.Errorf("list nat POSTROUTING: %w", err)
	}
	want := fmt.Sprintf("name: %q", netName)
	if id != "" {
		want += fmt.Sprintf(" id: %q", id)
	}
	type rule struct {
		num   int
		chain string
	}
	var rules []rule
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		line := sc.Text()
		if !strings.Contains(line, "/* "+want) {
			continue
		}
		f := strings.Fields(line)
		if len(f) < 2 {
			continue
		}
		num, err := strconv.Atoi(f[0])
		if err != nil {
			continue
		}
		rules = append(rules, rule{num: num, chain: f[1]})
	}
	// Delete from the bottom so the numbers above stay valid.
	sort.Slice(rules, func(i, j int) bool { return rules[i].num > rules[j].num })
	var errs []error
	for _, r := range rules {
		if out, err := exec.CommandContext(ctx, bin, "-w", "-t", "nat", "-D", "POSTROUTING", strconv.Itoa(r.num)).CombinedOutput(); err != nil {
			errs = append(errs, fmt.Errorf("delete POSTROUTING rule %d: %w: %s", r.num, err, bytes.TrimSpace(out)))
			continue
		}
		if strings.HasPrefix(r.chain, "CNI-") {
			_ = exec.CommandContext(ctx, bin, "-w", "-t", "nat", "-F", r.chain).Run()
			_ = exec.CommandContext(ctx, bin, "-w", "-t", "nat", "-X", r.chain).Run()
		}
	}
	return errors.Join(errs...)
}

// Destroy removes everything the network put on the host: masquerade rules
// of every container, the bridge device and the IPAM leases and cache. It
// is for uninstalling and for tests; running instances lose connectivity.
func (n *Network) Destroy(ctx context.Context) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	var errs []error
	if err := sweepMasquerade(ctx, n.cfg.Name, ""); err != nil {
		errs = append(errs, err)
	}
	if link, err := netlink.LinkByName(n.cfg.Bridge); err == nil {
		if err := netlink.LinkDel(link); err != nil {
			errs = append(errs, fmt.Errorf("delete bridge %s: %w", n.cfg.Bridge, err))
		}
	}
	for _, d := range []string{n.ipamDir(), n.cacheDir()} {
		if err := os.RemoveAll(d); err != nil {
			errs = append(errs, err)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("cninetwork: destroy %s: %w", n.cfg.Name, err)
	}
	return nil
}

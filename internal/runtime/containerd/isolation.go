package containerd

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"

	"github.com/berth-platform/berth/internal/mounts"
	"github.com/berth-platform/berth/internal/runtime/cninetwork"
)

// isolation keeps teams apart on this machine: each team has a number
// (teamIndex) that picks its user namespace id range and its network.
type isolation struct {
	teams    *teamIndex
	networks *cninetwork.TeamNetworks
	// userNS is on when containers get user namespaces; note says why
	// not otherwise.
	userNS bool
	note   string
}

// openIsolation decides on user namespaces (mode of DriverConfig.UserNS)
// and reads the teams' numbers; openNetworks comes once containerd runs.
func openIsolation(cfg DriverConfig, stateDir string) (*isolation, error) {
	iso := &isolation{}
	switch cfg.UserNS {
	case UserNSOff:
		iso.note = "off (--userns=off)"
	case "", UserNSAuto, UserNSOn:
		if why := userNSSupport(); why != "" {
			if cfg.UserNS == UserNSOn {
				return nil, fmt.Errorf("user namespaces are required (--userns=on) but %s", why)
			}
			iso.note = "unavailable: " + why
		} else {
			iso.userNS = true
		}
	default:
		return nil, fmt.Errorf("--userns %q: use on, off or auto", cfg.UserNS)
	}
	if !iso.userNS {
		slog.Warn("WARNING: containers run without user namespaces: root in a container is root on the host", "userns", iso.note)
	}
	var err error
	if iso.teams, err = openTeamIndex(filepath.Join(stateDir, "teams.json")); err != nil {
		return nil, err
	}
	return iso, nil
}

// openNetworks prepares the team networks, including those of teams that
// already have containers, so that stopping them finds their network.
func (iso *isolation) openNetworks(ctx context.Context, cfg DriverConfig, stateDir string) error {
	var err error
	iso.networks, err = cninetwork.NewTeamNetworks(ctx, cninetwork.TeamConfig{
		Bridge: cfg.Bridge, Subnet: cfg.Subnet, StateDir: filepath.Join(stateDir, "cni")})
	if err != nil {
		return err
	}
	for _, n := range iso.teams.all() {
		if _, err := iso.networks.Network(n.Net); err != nil {
			return err
		}
	}
	return nil
}

// retireSharedBridge undoes the one bridge an older berth attached every
// instance to (cfg.Bridge over the whole subnet, in which the team blocks
// now lie): its containers are stopped, to be started again by their
// controllers on their team's network, and the bridge is removed.
func (d *Driver) retireSharedBridge(ctx context.Context, stateDir string) error {
	if _, err := net.InterfaceByName(d.cfg.Bridge); err != nil {
		return nil
	}
	shared, err := cninetwork.New(cninetwork.Config{Bridge: d.cfg.Bridge, Subnet: d.cfg.Subnet, StateDir: filepath.Join(stateDir, "cni")})
	if err != nil {
		return fmt.Errorf("the shared bridge %s of an older berth: %w", d.cfg.Bridge, err)
	}
	d.engine.AddNetwork(shared)
	infos, err := d.engine.List(ctx)
	if err != nil {
		return fmt.Errorf("list containers: %w", err)
	}
	for _, info := range infos {
		if info.Network != "" || info.IP == nil {
			continue
		}
		slog.Warn("stopping an instance of the shared bridge of an older berth; it starts again on its team's network", "container", info.ID)
		if err := d.engine.Stop(ctx, info.ID, stopGrace); err != nil {
			return fmt.Errorf("stop %s on the shared bridge: %w", info.ID, err)
		}
	}
	if err := shared.Destroy(ctx); err != nil {
		return fmt.Errorf("remove the shared bridge of an older berth: %w", err)
	}
	slog.Info("removed the shared bridge of an older berth", "bridge", d.cfg.Bridge)
	return nil
}

// summary is the containerd phase line's account of isolation.
func (iso *isolation) summary() string {
	nets := fmt.Sprintf("a bridge per team in %s", iso.networks.Range())
	if !iso.userNS {
		return "WARNING: user namespaces " + iso.note + ", containers run as host root; " + nets
	}
	return fmt.Sprintf("user namespaces on (team root = host uid %d + %d per team); %s", IDBase, IDRange, nets)
}

// place puts an instance of team on the team's network and, with user
// namespaces, in the team's id range.
func (iso *isolation) place(is *InstanceSpec, team string) error {
	nums, err := iso.teams.of(team)
	if err != nil {
		return err
	}
	if is.Network, err = iso.networks.Network(nums.Net); err != nil {
		return err
	}
	if iso.userNS {
		m := teamIDMap(nums.IDs)
		is.UserNS = &m
	}
	return nil
}

// mayConnect says whether remote may open a connection to a service
// address of team's: an instance of that team, or the host itself.
// Instances of other teams and every other machine are refused.
func (iso *isolation) mayConnect(team string, known bool, remote net.IP) bool {
	if !iso.networks.Range().Contains(remote) {
		return isHostAddress(remote)
	}
	if !known {
		return false
	}
	nums, ok := iso.teams.lookup(team)
	if !ok {
		return false
	}
	n, err := iso.networks.Network(nums.Net)
	return err == nil && n.Subnet().Contains(remote)
}

// isHostAddress reports whether ip is one of this machine's addresses.
func isHostAddress(ip net.IP) bool {
	if ip.IsLoopback() {
		return true
	}
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		return false
	}
	for _, a := range addrs {
		if ipn, ok := a.(*net.IPNet); ok && ipn.IP.Equal(ip) {
			return true
		}
	}
	return false
}

// BundleStateDir is where a supervised containerd keeps the containers'
// bundles for the data directory dataDir: outside it, as the data
// directory is private (0700) and runc mounts a user-namespaced
// container's root file system as the container's mapped root, which must
// be able to walk there. Bundles are runtime state and belong under /run
// anyway.
func BundleStateDir(dataDir string) string {
	if abs, err := filepath.Abs(dataDir); err == nil {
		dataDir = abs
	}
	sum := sha256.Sum256([]byte(dataDir))
	return filepath.Join("/run/berth", hex.EncodeToString(sum[:6]))
}

// bundleStateDir makes BundleStateDir and its parent searchable (0711).
func bundleStateDir(dataDir string) (string, error) {
	dir := BundleStateDir(dataDir)
	for _, d := range []string{filepath.Dir(dir), dir} {
		if err := os.MkdirAll(d, 0o711); err != nil {
			return "", fmt.Errorf("containerd state directory: %w", err)
		}
		if err := os.Chmod(d, 0o711); err != nil {
			return "", fmt.Errorf("containerd state directory: %w", err)
		}
	}
	return dir, nil
}

// ReleaseTeam gives back what a deleted team held on this machine: its
// network (bridge, leases, isolation rule) and its block for a next team.
// Its user id range is never given to another team. It refuses while a
// component of the team still has instances.
func (d *Driver) ReleaseTeam(ctx context.Context, team string) error {
	var comps []string
	d.teamOf.Range(func(k, v any) bool {
		if v.(string) == team {
			comps = append(comps, k.(string))
		}
		return true
	})
	for _, id := range comps {
		if c := d.controller(id); c != nil && len(c.instanceIDs()) > 0 {
			return fmt.Errorf("team %s still runs component %s; remove its components first", team, id)
		}
	}
	nums, ok := d.iso.teams.lookup(team)
	if !ok {
		return nil
	}
	if err := d.iso.networks.Release(ctx, nums.Net); err != nil {
		return fmt.Errorf("release team %s: %w", team, err)
	}
	for _, id := range comps {
		d.teamOf.Delete(id)
	}
	return d.iso.teams.release(team)
}

// RemoveBundleStateDir detaches what is still mounted in dataDir's bundle
// directory (root file systems of containers whose shims were killed, as
// tests and benchmarks do) and removes it; for uninstalling and tests.
func RemoveBundleStateDir(dataDir string) error {
	dir := BundleStateDir(dataDir)
	if _, err := mounts.UnmountUnder(dir); err != nil {
		return fmt.Errorf("unmount under %s: %w", dir, err)
	}
	return os.RemoveAll(dir)
}

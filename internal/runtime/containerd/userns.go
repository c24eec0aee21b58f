package containerd

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"

	"github.com/opencontainers/runtime-spec/specs-go"

	"github.com/berth-platform/berth/internal/runtime/cninetwork"
)

// Every team's containers run in a user namespace of their own range of
// host ids: root in a container is uid IDBase+IDRange*index on the host,
// an id no host file and no other team owns. 65536 ids per team is what a
// container image may use (nobody is 65534).
const (
	IDBase  = 100000
	IDRange = 65536
)

// User namespace modes of DriverConfig.UserNS.
const (
	UserNSAuto = "auto" // on when the kernel can, else start-up says why not
	UserNSOn   = "on"   // required: start-up fails without them
	UserNSOff  = "off"  // containers run as host root (a platform admin's choice)
)

// IDMap maps a container's ids 0..Size-1 to host ids HostID..; uids and
// gids alike.
type IDMap struct {
	HostID, Size uint32
}

func (m IDMap) mappings() []specs.LinuxIDMapping {
	return []specs.LinuxIDMapping{{ContainerID: 0, HostID: m.HostID, Size: m.Size}}
}

// maxIDRanges keeps every range below 2^32 host ids.
const maxIDRanges = (1<<32 - IDBase) / IDRange

// teamIDMap is the id range number n.
func teamIDMap(n int) IDMap {
	return IDMap{HostID: uint32(IDBase + IDRange*n), Size: IDRange}
}

// teamNumbers are what a team is given on this machine: its id range,
// never handed to another team (files of a deleted team's kept volumes
// still belong to it), and its network block, reused once released.
type teamNumbers struct {
	IDs int `json:"ids"`
	Net int `json:"net"`
}

// teamIndex keeps the teams' numbers in a file: they must not change
// while a team's files and containers exist.
type teamIndex struct {
	file string
	mu   sync.Mutex
	st   struct {
		NextIDs int                    `json:"next_ids"`
		Teams   map[string]teamNumbers `json:"teams"`
	}
}

func openTeamIndex(file string) (*teamIndex, error) {
	t := &teamIndex{file: file}
	b, err := os.ReadFile(file)
	switch {
	case errors.Is(err, fs.ErrNotExist):
	case err != nil:
		return nil, fmt.Errorf("team index: %w", err)
	default:
		if err := json.Unmarshal(b, &t.st); err != nil {
			return nil, fmt.Errorf("team index %s: %w", file, err)
		}
	}
	if t.st.Teams == nil {
		t.st.Teams = map[string]teamNumbers{}
	}
	return t, nil
}

// of returns team's numbers, allocating them the first time: the next id
// range, the lowest free network block.
func (t *teamIndex) of(team string) (teamNumbers, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if n, ok := t.st.Teams[team]; ok {
		return n, nil
	}
	if t.st.NextIDs >= maxIDRanges {
		return teamNumbers{}, fmt.Errorf("no user id range left for team %s: %d teams were given one on this machine", team, maxIDRanges)
	}
	used := map[int]bool{}
	for _, n := range t.st.Teams {
		used[n.Net] = true
	}
	n := teamNumbers{IDs: t.st.NextIDs}
	for used[n.Net] {
		n.Net++
	}
	t.st.Teams[team] = n
	t.st.NextIDs++
	if err := t.save(); err != nil {
		delete(t.st.Teams, team)
		t.st.NextIDs--
		return teamNumbers{}, err
	}
	return n, nil
}

// lookup returns team's numbers without allocating.
func (t *teamIndex) lookup(team string) (teamNumbers, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	n, ok := t.st.Teams[team]
	return n, ok
}

// release forgets team; its network block becomes free, its id range
// stays used.
func (t *teamIndex) release(team string) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	if _, ok := t.st.Teams[team]; !ok {
		return nil
	}
	delete(t.st.Teams, team)
	return t.save()
}

// all is a copy of the allocations.
func (t *teamIndex) all() map[string]teamNumbers {
	t.mu.Lock()
	defer t.mu.Unlock()
	out := make(map[string]teamNumbers, len(t.st.Teams))
	for k, v := range t.st.Teams {
		out[k] = v
	}
	return out
}

func (t *teamIndex) save() error {
	b, _ := json.Marshal(t.st)
	tmp := t.file + ".tmp"
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		return fmt.Errorf("team index: %w", err)
	}
	if err := os.Rename(tmp, t.file); err != nil {
		return fmt.Errorf("team index: %w", err)
	}
	return nil
}

// userNSSupport says why this machine cannot run containers in user
// namespaces, or "" if it can: it creates one with a mapping, as runc
// will.
func userNSSupport() string {
	b, err := os.ReadFile("/proc/sys/user/max_user_namespaces")
	if err == nil && strings.TrimSpace(string(b)) == "0" {
		return "the kernel allows no user namespaces (user.max_user_namespaces = 0)"
	}
	if _, err := os.Stat("/proc/self/ns/user"); err != nil {
		return "the kernel has no user namespaces (CONFIG_USER_NS)"
	}
	cmd := exec.Command("/bin/true")
	cmd.SysProcAttr = &syscall.SysProcAttr{
		Cloneflags:  syscall.CLONE_NEWUSER,
		UidMappings: []syscall.SysProcIDMap{{ContainerID: 0, HostID: IDBase, Size: 1}},
		GidMappings: []syscall.SysProcIDMap{{ContainerID: 0, HostID: IDBase, Size: 1}},
	}
	if err := cmd.Run(); err != nil {
		return "creating a user namespace failed: " + err.Error()
	}
	return ""
}

// chownVolume gives a volume directory to the container's root, so that it
// can write its own volume. A directory owned by another id (made before
// user namespaces, or with --userns=off) is handed over with everything in
// it, links included but never followed.
func chownVolume(dir string, m *IDMap) error {
	if m == nil {
		return nil
	}
	fi, err := os.Lstat(dir)
	if err != nil {
		return fmt.Errorf("volume %s: %w", dir, err)
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok || (st.Uid == m.HostID && st.Gid == m.HostID) {
		return nil
	}
	err = filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		return shiftOwner(p, m)
	})
	if err != nil {
		return fmt.Errorf("volume %s: give it to the container's root (uid %d): %w", dir, m.HostID, err)
	}
	return nil
}

// shiftOwner moves a file's owner into the range: host id n becomes
// HostID+n when n is below Size, anything else becomes the range's root.
func shiftOwner(p string, m *IDMap) error {
	fi, err := os.Lstat(p)
	if err != nil {
		return err
	}
	st := fi.Sys().(*syscall.Stat_t)
	if !fi.IsDir() && st.Nlink > 1 {
		// A hard link may be a file outside the volume (made while
		// containers ran as host root): leave it alone.
		return nil
	}
	shift := func(id uint32) int {
		if id >= m.HostID && id < m.HostID+m.Size {
			return int(id)
		}
		if id < m.Size {
			return int(m.HostID + id)
		}
		return int(m.HostID)
	}
	return os.Lchown(p, shift(st.Uid), shift(st.Gid))
}

// userNSLabel is stored on a container: the host id its root maps to.
func userNSLabel(m *IDMap) string {
	if m == nil {
		return ""
	}
	return strconv.FormatUint(uint64(m.HostID), 10)
}

// userNSPath is where the user namespace that owns the network namespace
// at nsPath is pinned.
func userNSPath(nsPath string) string { return nsPath + ".user" }

// newNamespaces pins a network namespace for an instance, owned by a new
// user namespace with m when m is set: runc exec joins the container's
// user namespace before its network namespace, and only succeeds if the
// latter belongs to the former.
func newNamespaces(nsPath string, m *IDMap) error {
	if m == nil {
		return cninetwork.NewNamespace(nsPath)
	}
	return cninetwork.NewNamespaceInUser(nsPath, userNSPath(nsPath), cninetwork.IDMapping{HostID: m.HostID, Size: m.Size})
}

// removeNamespaces unpins what newNamespaces pinned.
func removeNamespaces(nsPath string) error {
	return errors.Join(cninetwork.RemoveNamespace(nsPath), cninetwork.RemoveNamespace(userNSPath(nsPath)))
}

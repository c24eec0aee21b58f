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

// teamIDMap is the id range of team block index.
func teamIDMap(index int) IDMap {
	return IDMap{HostID: uint32(IDBase + IDRange*index), Size: IDRange}
}

// teamIndex hands every team a number for life, kept in a file: the
// number picks the team's id range and network block, which must not
// change while its files and containers exist.
type teamIndex struct {
	file string
	mu   sync.Mutex
	m    map[string]int
}

func openTeamIndex(file string) (*teamIndex, error) {
	t := &teamIndex{file: file, m: map[string]int{}}
	b, err := os.ReadFile(file)
	switch {
	case errors.Is(err, fs.ErrNotExist):
	case err != nil:
		return nil, fmt.Errorf("team index: %w", err)
	default:
		if err := json.Unmarshal(b, &t.m); err != nil {
			return nil, fmt.Errorf("team index %s: %w", file, err)
		}
	}
	return t, nil
}

// of returns team's number, allocating the next free one first time.
func (t *teamIndex) of(team string) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if i, ok := t.m[team]; ok {
		return i, nil
	}
	next := 0
	for _, i := range t.m {
		next = max(next, i+1)
	}
	t.m[team] = next
	if err := t.save(); err != nil {
		delete(t.m, team)
		return 0, err
	}
	return next, nil
}

// all is a copy of the allocations.
func (t *teamIndex) all() map[string]int {
	t.mu.Lock()
	defer t.mu.Unlock()
	out := make(map[string]int, len(t.m))
	for k, v := range t.m {
		out[k] = v
	}
	return out
}

func (t *teamIndex) save() error {
	b, _ := json.Marshal(t.m)
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

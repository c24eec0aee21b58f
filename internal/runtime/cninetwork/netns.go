package cninetwork

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"syscall"

	"golang.org/x/sys/unix"
)

// A pinned network namespace is a namespace bind-mounted onto a file. It
// lives as long as the mount, independent of any process. The containerd
// engine creates one per instance before the task exists and gives its
// path to runc, instead of attaching /proc/<pid>/ns/net afterwards: the
// namespace then outlives the task, so Teardown can still enter it after
// the instance crashed and remove the veth and masquerade rules, and the
// address is known before the container is created (it is stored in the
// container's labels, so it survives berth restarts).

// NewNamespace creates a network namespace and pins it at path (the file is
// created; its directory must exist or is created). It fails if path
// already exists.
func NewNamespace(path string) (err error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return fmt.Errorf("netns: %w", err)
	}
	f, err := os.OpenFile(path, os.O_RDONLY|os.O_CREATE|os.O_EXCL, 0o444)
	if err != nil {
		return fmt.Errorf("netns: %w", err)
	}
	f.Close()
	defer func() {
		if err != nil {
			os.Remove(path)
		}
	}()

	errc := make(chan error, 1)
	go func() {
		// The thread is left locked on purpose: it ends up in the new
		// namespace, and a goroutine that exits locked takes its thread
		// with it, so no other goroutine ever runs in that namespace.
		runtime.LockOSThread()
		if err := unix.Unshare(unix.CLONE_NEWNET); err != nil {
			errc <- fmt.Errorf("unshare: %w", err)
			return
		}
		src := fmt.Sprintf("/proc/%d/task/%d/ns/net", os.Getpid(), unix.Gettid())
		if err := unix.Mount(src, path, "none", unix.MS_BIND, ""); err != nil {
			errc <- fmt.Errorf("bind mount %s: %w", src, err)
			return
		}
		errc <- nil
	}()
	if err := <-errc; err != nil {
		return fmt.Errorf("netns: create %s: %w", path, err)
	}
	return nil
}

// RemoveNamespace unpins and deletes the namespace at path. It is
// idempotent: a missing file or one that is no longer a mount point (after
// a reboot) is fine.
func RemoveNamespace(path string) error {
	if err := unix.Unmount(path, unix.MNT_DETACH); err != nil &&
		!errors.Is(err, unix.EINVAL) && !errors.Is(err, unix.ENOENT) {
		return fmt.Errorf("netns: unmount %s: %w", path, err)
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("netns: %w", err)
	}
	return nil
}

// IsNamespace reports whether path is a pinned network namespace.
func IsNamespace(path string) bool {
	var st unix.Statfs_t
	if err := unix.Statfs(path, &st); err != nil {
		return false
	}
	return st.Type == unix.NSFS_MAGIC
}

// IDMapping maps container ids 0..Size-1 to host ids HostID.. (uids and
// gids alike).
type IDMapping struct{ HostID, Size uint32 }

// NewNamespaceInUser creates a user namespace with mapping m and a network
// namespace owned by it, and pins them at userPath and netPath. A
// container that joins both can run commands later (exec joins the user
// namespace first, then needs to be privileged over the network one),
// while its root holds no privilege over the host's namespaces.
func NewNamespaceInUser(netPath, userPath string, m IDMapping) (err error) {
	for _, p := range []string{netPath, userPath} {
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return fmt.Errorf("netns: %w", err)
		}
		f, err := os.OpenFile(p, os.O_RDONLY|os.O_CREATE|os.O_EXCL, 0o444)
		if err != nil {
			return fmt.Errorf("netns: %w", err)
		}
		f.Close()
	}
	defer func() {
		if err != nil {
			_ = RemoveNamespace(netPath)
			_ = RemoveNamespace(userPath)
		}
	}()
	// A multi-threaded process cannot enter a new user namespace, so a
	// child does; it waits on its stdin while its namespaces are pinned.
	cat, err := exec.LookPath("cat")
	if err != nil {
		return fmt.Errorf("netns: %w", err)
	}
	cmd := exec.Command(cat)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return fmt.Errorf("netns: %w", err)
	}
	idmap := []syscall.SysProcIDMap{{ContainerID: 0, HostID: int(m.HostID), Size: int(m.Size)}}
	cmd.SysProcAttr = &syscall.SysProcAttr{
		Cloneflags:  syscall.CLONE_NEWUSER | syscall.CLONE_NEWNET,
		UidMappings: idmap, GidMappings: idmap,
		Pdeathsig: syscall.SIGKILL,
	}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("netns: start a process in a new user namespace: %w", err)
	}
	defer func() {
		stdin.Close()
		_ = cmd.Wait()
	}()
	for ns, path := range map[string]string{"user": userPath, "net": netPath} {
		src := fmt.Sprintf("/proc/%d/ns/%s", cmd.Process.Pid, ns)
		if err := unix.Mount(src, path, "none", unix.MS_BIND, ""); err != nil {
			return fmt.Errorf("netns: bind mount %s: %w", src, err)
		}
	}
	return nil
}

package baseimage

import (
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"
)

// slimRootfs makes, in slim, a root file system of Debian's static
// busybox alone, taken from full (a minbase with busybox-static
// installed). A static site needs a file server and a shell, not the
// 120 MB of minbase: the image shrinks to about 1 MB. The layout follows
// Debian's (merged /usr, busybox's applets as links next to it) so that
// plans can use /bin/sh, cp and the like as in the other images.
func slimRootfs(full, slim string) error {
	for _, d := range []struct {
		path string
		mode uint32
	}{
		{"usr/bin", 0o755}, {"usr/sbin", 0o755}, {"etc", 0o755}, {"root", 0o700}, {"tmp", 0o1777},
		{"var/tmp", 0o1777}, {"proc", 0o555}, {"sys", 0o555}, {"dev", 0o755}, {"run", 0o755}, {"app", 0o755},
	} {
		p := filepath.Join(slim, d.path)
		if err := os.MkdirAll(p, 0o755); err != nil {
			return err
		}
		// unix.Chmod: os.Chmod takes Go's own sticky bit, not 01000.
		if err := unix.Chmod(p, d.mode); err != nil {
			return err
		}
	}
	for _, l := range []string{"bin", "sbin"} {
		if err := os.Symlink("usr/"+l, filepath.Join(slim, l)); err != nil {
			return err
		}
	}
	bb := filepath.Join(slim, "usr/bin/busybox")
	if err := copyFile(filepath.Join(full, "usr/bin/busybox"), bb, 0o755); err != nil {
		return fmt.Errorf("busybox: %w", err)
	}
	// Users and groups so that file owners and `USER` resolve; os-release
	// so that tools can tell what the image is.
	for _, f := range []string{"etc/passwd", "etc/group", "usr/lib/os-release"} {
		if err := copyFile(filepath.Join(full, f), filepath.Join(slim, f), 0o644); err != nil {
			return err
		}
	}
	if err := os.Symlink("../usr/lib/os-release", filepath.Join(slim, "etc/os-release")); err != nil {
		return err
	}
	// The binary is static, so the host can ask it for its applets.
	list, err := exec.Command(bb, "--list-full").Output()
	if err != nil {
		return fmt.Errorf("busybox --list-full: %w", err)
	}
	for _, applet := range strings.Fields(string(list)) {
		// Merged /usr: bin/ls is usr/bin/ls.
		if strings.HasPrefix(applet, "bin/") || strings.HasPrefix(applet, "sbin/") {
			applet = "usr/" + applet
		}
		p := filepath.Join(slim, applet)
		if _, err := os.Lstat(p); err == nil {
			continue
		}
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return err
		}
		if err := os.Symlink("/usr/bin/busybox", p); err != nil {
			return err
		}
	}
	return nil
}

func copyFile(src, dst string, mode os.FileMode) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return err
	}
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, mode)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

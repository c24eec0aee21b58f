package baseimage

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/berth-platform/berth/internal/mounts"
)

// Suite is the Debian release the base images are made from.
const Suite = "bookworm"

// baseRootfs returns a minbase root file system of Suite, made once by
// debootstrap and then reused: it is the slow part (a few minutes of
// downloads) and the same for every language. A directory without the
// completion marker is what an interrupted debootstrap left and is made
// again.
func (p *preparer) baseRootfs(ctx context.Context) (string, error) {
	dir := filepath.Join(p.opt.WorkDir, "debootstrap", Suite+"-minbase-"+p.arch)
	rootfs := filepath.Join(dir, "rootfs")
	marker := filepath.Join(dir, "complete")
	if b, err := os.ReadFile(marker); err == nil {
		p.progress("debootstrap: reusing %s (%s)", rootfs, strings.TrimSpace(string(b)))
		return rootfs, nil
	}
	if _, err := exec.LookPath("debootstrap"); err != nil {
		return "", errors.New("debootstrap not found (apt-get install debootstrap)")
	}
	if err := removeTree(dir); err != nil {
		return "", fmt.Errorf("remove incomplete %s: %w", dir, err)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	logPath := filepath.Join(dir, "debootstrap.log")
	logf, err := os.Create(logPath)
	if err != nil {
		return "", err
	}
	defer logf.Close()
	p.progress("debootstrap: %s minbase (%s) from %s into %s; log %s", Suite, p.arch, p.mirror, rootfs, logPath)
	start := time.Now()
	err = runHost(ctx, logf, "debootstrap", "--variant=minbase", "--arch="+p.arch, Suite, rootfs, p.mirror)
	if err != nil {
		return "", fmt.Errorf("debootstrap (log %s): %w", logPath, err)
	}
	// debootstrap copies the host's name and resolver; an image must not
	// carry either (the runtime provides them).
	for _, f := range []string{"etc/hostname", "etc/resolv.conf"} {
		_ = os.Remove(filepath.Join(rootfs, f))
	}
	stamp := fmt.Sprintf("%s from %s, %s", time.Now().UTC().Format(time.RFC3339), p.mirror, time.Since(start).Round(time.Second))
	if err := os.WriteFile(marker, []byte(stamp+"\n"), 0o644); err != nil {
		return "", err
	}
	p.progress("debootstrap: done in %s", time.Since(start).Round(time.Second))
	return rootfs, nil
}

// removeTree removes dir after detaching anything mounted below it (a
// debootstrap killed before it unmounted its /proc, a tree made by hand or
// by an older berth): os.RemoveAll would descend into a mounted /proc or
// /dev. The commands here mount in namespaces of their own, so usually
// nothing is left.
func removeTree(dir string) error {
	if _, err := mounts.UnmountUnder(dir); err != nil {
		return err
	}
	return os.RemoveAll(dir)
}

// Package mounts detaches what was left mounted below a directory. Daemons
// and chroots mount file systems under berth's data directory (BuildKit
// the overlay root of each RUN step, debootstrap /proc and /dev); when they
// die or are killed those mounts stay, and neither a new daemon nor
// os.RemoveAll can get rid of the directories below them.
package mounts

import (
	"errors"
	"fmt"
	"path/filepath"
	"sort"
	"strings"

	"golang.org/x/sys/unix"
)

// UnmountUnder detaches every mount below dir (not dir itself), deepest
// first, and says how many there were. Lazy unmounts succeed even if
// something still has a file open there.
func UnmountUnder(dir string) (int, error) {
	dir, err := filepath.Abs(dir)
	if err != nil {
		return 0, err
	}
	if real, err := filepath.EvalSymlinks(dir); err == nil {
		dir = real
	}
	points, err := mountPoints()
	if err != nil {
		return 0, err
	}
	var under []string
	for _, p := range points {
		// Strictly below: dir itself may be a mount of its own (a disk
		// for the build cache) and is not ours to detach.
		if strings.HasPrefix(p, dir+"/") {
			under = append(under, p)
		}
	}
	// Deepest first, so that a parent is not detached before its children
	// (which would hide them from this list's paths).
	sort.Slice(under, func(i, j int) bool { return len(under[i]) > len(under[j]) })
	var errs []error
	n := 0
	for _, p := range under {
		if err := unix.Unmount(p, unix.MNT_DETACH); err != nil && !errors.Is(err, unix.EINVAL) && !errors.Is(err, unix.ENOENT) {
			errs = append(errs, fmt.Errorf("unmount %s: %w", p, err))
			continue
		}
		n++
	}
	return n, errors.Join(errs...)
}

package baseimage

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// unmountUnder detaches every mount below dir (not dir itself), deepest
// first, and says how many there were. Every command here mounts in a namespace of its own,
// so nothing should be left; this guards trees made otherwise (a
// debootstrap run by hand, an older berth), where os.RemoveAll would
// descend into a mounted /proc or /dev. Lazy unmounts succeed even if
// something still has a file open there.
func unmountUnder(dir string) (int, error) {
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

// mountPoints lists this mount namespace's mount points.
func mountPoints() ([]string, error) {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var out []string
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		// id parent major:minor root mountpoint options ...
		fields := strings.Fields(sc.Text())
		if len(fields) < 5 {
			continue
		}
		out = append(out, unescapeMount(fields[4]))
	}
	return out, sc.Err()
}

// unescapeMount undoes mountinfo's octal escapes (\040 for a space).
func unescapeMount(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+4 <= len(s) {
			if v, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(v))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

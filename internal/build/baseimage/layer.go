package baseimage

import (
	"archive/tar"
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/klauspost/compress/gzip"
	"golang.org/x/sys/unix"
)

// skipContents are directories whose contents do not belong in an image:
// the runtime mounts /proc, /sys and /dev, /tmp starts empty, apt's logs
// describe the making of the image. The directories themselves stay, with
// their modes (/tmp is 1777). apt's lists and downloads are removed in
// the root file system itself (see clean), keeping the directories apt
// expects.
var skipContents = map[string]bool{
	"proc": true, "sys": true, "dev": true, "tmp": true, "var/tmp": true, "var/log/apt": true,
}

// skipFiles are files the runtime provides (or that only describe the
// machine the image was made on).
var skipFiles = map[string]bool{
	"etc/hostname": true, "etc/resolv.conf": true, "etc/machine-id": true,
	"usr/sbin/policy-rc.d": true, "var/log/dpkg.log": true, "var/log/alternatives.log": true,
	"var/cache/ldconfig/aux-cache": true,
}

// writeLayer writes rootfs as one gzip-compressed tar layer to path and
// returns the uncompressed size. The walk is in lexical order and keeps
// owners, modes, times, hard links and file capabilities, so the layer is
// what the root file system is, not what the user running berth could
// read of it.
func writeLayer(ctx context.Context, rootfs, path string) (int64, error) {
	f, err := os.Create(path)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	bw := bufio.NewWriterSize(f, 1<<20)
	zw, err := gzip.NewWriterLevel(bw, gzip.DefaultCompression)
	if err != nil {
		return 0, err
	}
	cw := &countingWriter{w: zw}
	tw := tar.NewWriter(cw)
	links := map[[2]uint64]string{} // (dev, inode) -> first name
	err = filepath.WalkDir(rootfs, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		rel, err := filepath.Rel(rootfs, p)
		if err != nil || rel == "." {
			return err
		}
		rel = filepath.ToSlash(rel)
		if skipFiles[rel] {
			return nil
		}
		if parent := filepath.ToSlash(filepath.Dir(rel)); skipContents[parent] {
			if d.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		return addEntry(tw, p, rel, links)
	})
	if err != nil {
		return 0, fmt.Errorf("pack %s: %w", rootfs, err)
	}
	if err := tw.Close(); err != nil {
		return 0, err
	}
	if err := zw.Close(); err != nil {
		return 0, err
	}
	if err := bw.Flush(); err != nil {
		return 0, err
	}
	return cw.n, f.Close()
}

func addEntry(tw *tar.Writer, p, rel string, links map[[2]uint64]string) error {
	var st unix.Stat_t
	if err := unix.Lstat(p, &st); err != nil {
		return err
	}
	mode := st.Mode & unix.S_IFMT
	h := &tar.Header{
		Name:    rel,
		Mode:    int64(st.Mode & 0o7777),
		Uid:     int(st.Uid),
		Gid:     int(st.Gid),
		ModTime: time.Unix(st.Mtim.Sec, st.Mtim.Nsec),
		Format:  tar.FormatPAX,
	}
	switch mode {
	case unix.S_IFDIR:
		h.Typeflag, h.Name = tar.TypeDir, rel+"/"
	case unix.S_IFLNK:
		target, err := os.Readlink(p)
		if err != nil {
			return err
		}
		h.Typeflag, h.Linkname = tar.TypeSymlink, target
	case unix.S_IFREG:
		key := [2]uint64{uint64(st.Dev), st.Ino}
		if st.Nlink > 1 {
			if first, ok := links[key]; ok {
				h.Typeflag, h.Linkname = tar.TypeLink, first
				return tw.WriteHeader(h)
			}
			links[key] = rel
		}
		h.Typeflag, h.Size = tar.TypeReg, st.Size
	case unix.S_IFCHR, unix.S_IFBLK, unix.S_IFIFO:
		h.Typeflag = map[uint32]byte{unix.S_IFCHR: tar.TypeChar, unix.S_IFBLK: tar.TypeBlock, unix.S_IFIFO: tar.TypeFifo}[mode]
		h.Devmajor, h.Devminor = int64(unix.Major(st.Rdev)), int64(unix.Minor(st.Rdev))
	default:
		return nil // sockets
	}
	if caps, err := getxattr(p, "security.capability"); err == nil && len(caps) > 0 {
		h.PAXRecords = map[string]string{"SCHILY.xattr.security.capability": string(caps)}
	}
	if err := tw.WriteHeader(h); err != nil {
		return fmt.Errorf("%s: %w", rel, err)
	}
	if h.Typeflag != tar.TypeReg {
		return nil
	}
	src, err := os.Open(p)
	if err != nil {
		return err
	}
	defer src.Close()
	if _, err := io.CopyN(tw, src, h.Size); err != nil {
		return fmt.Errorf("%s: %w", rel, err)
	}
	return nil
}

func getxattr(p, name string) ([]byte, error) {
	buf := make([]byte, 256)
	n, err := unix.Lgetxattr(p, name, buf)
	if err != nil {
		if errors.Is(err, unix.ENODATA) || errors.Is(err, unix.ENOTSUP) {
			return nil, nil
		}
		return nil, err
	}
	return buf[:n], nil
}

// countingWriter counts the bytes written through it.
type countingWriter struct {
	w io.Writer
	n int64
}

func (c *countingWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

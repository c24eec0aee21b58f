package source

import (
	"archive/tar"
	"archive/zip"
	"compress/gzip"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path"
	"sort"
	"strings"
)

// Limits bound what an archive may expand to. Zero fields take the
// defaults of DefaultLimits.
type Limits struct {
	MaxFiles int     // entries of any kind
	MaxBytes int64   // total bytes written
	MaxRatio float64 // bytes written / archive size
}

// DefaultLimits are generous for source trees and packages, and far below
// what a decompression bomb produces.
func DefaultLimits() Limits {
	return Limits{MaxFiles: 100_000, MaxBytes: 4 << 30, MaxRatio: 200}
}

func (l Limits) withDefaults() Limits {
	d := DefaultLimits()
	if l.MaxFiles <= 0 {
		l.MaxFiles = d.MaxFiles
	}
	if l.MaxBytes <= 0 {
		l.MaxBytes = d.MaxBytes
	}
	if l.MaxRatio <= 0 {
		l.MaxRatio = d.MaxRatio
	}
	return l
}

// Small archives are exempt from the ratio check: a few KiB of zeros or
// repetitive text compress far beyond any sane ratio and harm nobody.
const ratioFloor = 1 << 20

// Extract unpacks a zip, jar, war, tar or tar.gz archive (judged by its
// content) into destDir, which must be absent or empty. Every write goes
// through an os.Root opened on destDir, so no entry, symlink or race can
// make it write outside, even for a moment. Entries that try are refused by
// name before anything is written for them, and the whole extraction is
// undone. A single top-level directory is stripped, as users zip the
// project's folder rather than its contents.
func Extract(archivePath, destDir string, limits Limits) error {
	format, err := DetectFormat(archivePath)
	if err != nil {
		return err
	}
	st, err := os.Stat(archivePath)
	if err != nil {
		return fmt.Errorf("open package: %w", err)
	}
	created, err := prepareEmptyDir(destDir)
	if err != nil {
		return err
	}
	root, err := os.OpenRoot(destDir)
	if err != nil {
		return fmt.Errorf("open destination: %w", err)
	}
	x := &extractor{root: root, limits: limits.withDefaults(), archiveSize: max(st.Size(), 1),
		kinds: map[string]entryKind{}, linkTargets: map[string]string{}, linkEntries: map[string]string{}}
	switch format {
	case FormatZip, FormatJar, FormatWar:
		err = x.zip(archivePath)
	case FormatTar, FormatTarGz:
		err = x.tar(archivePath, format == FormatTarGz)
	}
	if err == nil {
		var top string
		if top, err = x.stripTopDir(); err == nil {
			err = x.verifyLinks(top)
		}
	}
	closeErr := root.Close()
	if err != nil {
		emptyDir(destDir, created)
		slog.Info("package extraction refused", "archive", archivePath, "err", err)
		return err
	}
	if closeErr != nil {
		return fmt.Errorf("close destination: %w", closeErr)
	}
	slog.Debug("package extracted", "archive", archivePath, "format", format, "files", x.files, "bytes", x.bytes)
	return nil
}

type entryKind int

const (
	kindDir entryKind = iota + 1
	kindFile
	kindSymlink
)

type extractor struct {
	root        *os.Root
	limits      Limits
	archiveSize int64
	files       int
	bytes       int64
	kinds       map[string]entryKind // what each extracted path is
	linkTargets map[string]string    // symlink path -> its target as written
	linkEntries map[string]string    // symlink path -> its entry name in the archive
}

// cleanEntryName turns an archive name into a clean relative path, or says
// why it is unsafe. Any ".." is refused, even a harmless one: legitimate
// packers never write them.
func cleanEntryName(raw string) (string, error) {
	name := strings.ReplaceAll(raw, `\`, "/")
	for _, r := range name {
		if r < 0x20 || r == 0x7f {
			return "", &UnsafeEntryError{Entry: raw, Reason: "control characters in the name"}
		}
	}
	if strings.HasPrefix(name, "/") || len(name) >= 2 && name[1] == ':' {
		return "", &UnsafeEntryError{Entry: raw, Reason: "absolute path"}
	}
	for _, seg := range strings.Split(name, "/") {
		if seg == ".." {
			return "", &UnsafeEntryError{Entry: raw, Reason: "path traversal (..)"}
		}
	}
	clean := path.Clean(name)
	if clean == "." {
		return "", nil
	}
	return clean, nil
}

// place checks an entry's path against what is already extracted: nothing
// may be written through a symlink (the lexical checks below would no
// longer hold), and a link may not be replaced by a file written through it.
func (x *extractor) place(raw, name string) error {
	if x.files++; x.files > x.limits.MaxFiles {
		return &ArchiveLimitError{Entry: raw, Limit: "files", Max: float64(x.limits.MaxFiles), Got: float64(x.files)}
	}
	for dir := path.Dir(name); dir != "."; dir = path.Dir(dir) {
		switch x.kinds[dir] {
		case kindSymlink:
			return &UnsafeEntryError{Entry: raw, Reason: fmt.Sprintf("it is written through the symlink %q", dir)}
		case kindFile:
			return &UnsafeEntryError{Entry: raw, Reason: fmt.Sprintf("its parent %q is a file", dir)}
		}
	}
	if k := x.kinds[name]; k == kindSymlink || k == kindDir {
		return &UnsafeEntryError{Entry: raw, Reason: "it replaces a directory or symlink of the same name"}
	}
	return nil
}

func (x *extractor) mkdirParents(name string) error {
	dir := path.Dir(name)
	if dir == "." {
		return nil
	}
	if err := x.root.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("extract %s: %w", name, err)
	}
	for d := dir; d != "."; d = path.Dir(d) {
		x.kinds[d] = kindDir
	}
	return nil
}

func (x *extractor) dir(raw, name string) error {
	if name == "" {
		return nil
	}
	if err := x.place(raw, name); err != nil {
		return err
	}
	if err := x.root.MkdirAll(name, 0o755); err != nil {
		return fmt.Errorf("extract %s: %w", raw, err)
	}
	for d := name; d != "."; d = path.Dir(d) {
		x.kinds[d] = kindDir
	}
	return nil
}

func (x *extractor) file(raw, name string, mode fs.FileMode, r io.Reader) error {
	if name == "" {
		return &UnsafeEntryError{Entry: raw, Reason: "a file without a name"}
	}
	if err := x.place(raw, name); err != nil {
		return err
	}
	if err := x.mkdirParents(name); err != nil {
		return err
	}
	// Archives may hold a file twice (tar appends updates); the last wins.
	if x.kinds[name] == kindFile {
		if err := x.root.Remove(name); err != nil {
			return fmt.Errorf("extract %s: %w", raw, err)
		}
	}
	// Keep the executable bits (gradlew, mvnw) but nothing special.
	perm := mode.Perm()&0o755 | 0o600
	f, err := x.root.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_EXCL, perm)
	if err != nil {
		return fmt.Errorf("extract %s: %w", raw, err)
	}
	x.kinds[name] = kindFile
	copyErr := x.copy(raw, f, r)
	closeErr := f.Close()
	if copyErr != nil {
		return copyErr
	}
	if closeErr != nil {
		return fmt.Errorf("extract %s: %w", raw, closeErr)
	}
	return nil
}

// copy counts the bytes it actually writes: sizes in headers are claims.
func (x *extractor) copy(raw string, w io.Writer, r io.Reader) error {
	buf := make([]byte, 32<<10)
	for {
		n, err := r.Read(buf)
		if n > 0 {
			x.bytes += int64(n)
			if x.bytes > x.limits.MaxBytes {
				return &ArchiveLimitError{Entry: raw, Limit: "bytes", Max: float64(x.limits.MaxBytes), Got: float64(x.bytes)}
			}
			if ratio := float64(x.bytes) / float64(x.archiveSize); x.bytes > ratioFloor && ratio > x.limits.MaxRatio {
				return &ArchiveLimitError{Entry: raw, Limit: "compression ratio", Max: x.limits.MaxRatio, Got: ratio}
			}
			if _, werr := w.Write(buf[:n]); werr != nil {
				return fmt.Errorf("extract %s: %w", raw, werr)
			}
		}
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return fmt.Errorf("extract %s: %w", raw, err)
		}
	}
}

// symlink accepts relative links that stay inside the tree; build tools
// (and users' node_modules/.bin) rely on them.
func (x *extractor) symlink(raw, name, target string) error {
	if name == "" {
		return &UnsafeEntryError{Entry: raw, Reason: "a symlink without a name"}
	}
	if strings.HasPrefix(target, "/") || strings.Contains(target, `\`) {
		return &UnsafeEntryError{Entry: raw, Reason: fmt.Sprintf("symlink to the absolute path %q", target)}
	}
	resolved := path.Join(path.Dir(name), target)
	if resolved == ".." || strings.HasPrefix(resolved, "../") {
		return &UnsafeEntryError{Entry: raw, Reason: fmt.Sprintf("symlink pointing outside the package (%q)", target)}
	}
	if err := x.place(raw, name); err != nil {
		return err
	}
	if x.kinds[name] == kindFile {
		return &UnsafeEntryError{Entry: raw, Reason: "a symlink replacing a file of the same name"}
	}
	if err := x.mkdirParents(name); err != nil {
		return err
	}
	if err := x.root.Symlink(target, name); err != nil {
		return fmt.Errorf("extract %s: %w", raw, err)
	}
	x.kinds[name] = kindSymlink
	x.linkTargets[name] = target
	x.linkEntries[name] = raw
	return x.checkLink(raw, name)
}

// verifyLinks checks every symlink again once all are in place: an entry
// extracted later can turn an earlier link's harmless-looking path into an
// escape. top is the directory stripTopDir removed, if any.
func (x *extractor) verifyLinks(top string) error {
	names := make([]string, 0, len(x.linkEntries))
	for name := range x.linkEntries {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		final := name
		if top != "" {
			final = strings.TrimPrefix(name, top+"/")
		}
		if err := x.checkLink(x.linkEntries[name], final); err != nil {
			return err
		}
	}
	return nil
}

// hardlink accepts links to regular files extracted earlier from the same
// archive, which is all a tar writer produces.
func (x *extractor) hardlink(raw, name, target string) error {
	clean, err := cleanEntryName(target)
	if err != nil || clean == "" {
		return &UnsafeEntryError{Entry: raw, Reason: fmt.Sprintf("hard link to %q, outside the package", target)}
	}
	if x.kinds[clean] != kindFile {
		return &UnsafeEntryError{Entry: raw, Reason: fmt.Sprintf("hard link to %q, which is not a file extracted before it", target)}
	}
	if err := x.place(raw, name); err != nil {
		return err
	}
	if x.kinds[name] != 0 {
		return &UnsafeEntryError{Entry: raw, Reason: "a hard link replacing an entry of the same name"}
	}
	if err := x.mkdirParents(name); err != nil {
		return err
	}
	if err := x.root.Link(clean, name); err != nil {
		return fmt.Errorf("extract %s: %w", raw, err)
	}
	x.kinds[name] = kindFile
	return nil
}

func (x *extractor) zip(archivePath string) error {
	zr, err := zip.OpenReader(archivePath)
	if err != nil && !(errors.Is(err, zip.ErrInsecurePath) && zr != nil) {
		return &UnsupportedArchiveError{Detected: "a damaged zip file (" + err.Error() + ")"}
	}
	defer zr.Close()
	for _, f := range zr.File {
		if skipEntry(f.Name) {
			continue
		}
		name, err := cleanEntryName(f.Name)
		if err != nil {
			return err
		}
		mode := f.Mode()
		switch {
		case mode&fs.ModeSymlink != 0:
			// Zip symlinks are rare in real packages and invisible in most
			// unzip tools, which makes them a favourite for attacks.
			return &UnsafeEntryError{Entry: f.Name, Reason: "symlinks are not accepted in zip packages"}
		case mode&(fs.ModeDevice|fs.ModeCharDevice|fs.ModeNamedPipe|fs.ModeSocket) != 0:
			return &UnsafeEntryError{Entry: f.Name, Reason: "device, pipe or socket file"}
		case f.Flags&0x1 != 0:
			return &UnsafeEntryError{Entry: f.Name, Reason: "encrypted entry; upload an archive without a password"}
		case mode.IsDir() || strings.HasSuffix(f.Name, "/"):
			if err := x.dir(f.Name, name); err != nil {
				return err
			}
		default:
			rc, err := f.Open()
			if err != nil {
				return fmt.Errorf("extract %s: %w", f.Name, err)
			}
			err = x.file(f.Name, name, mode, rc)
			_ = rc.Close()
			if err != nil {
				return err
			}
		}
	}
	return nil
}

func (x *extractor) tar(archivePath string, gzipped bool) error {
	f, err := os.Open(archivePath)
	if err != nil {
		return fmt.Errorf("open package: %w", err)
	}
	defer f.Close()
	var r io.Reader = f
	if gzipped {
		zr, err := gzip.NewReader(f)
		if err != nil {
			return &UnsupportedArchiveError{Detected: "a damaged gzip file"}
		}
		defer zr.Close()
		r = zr
	}
	tr := tar.NewReader(r)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return nil
		}
		// With GODEBUG=tarinsecurepath=0 the reader flags bad names itself;
		// they are refused below with the entry named, as without it.
		if err != nil && !(errors.Is(err, tar.ErrInsecurePath) && h != nil) {
			return fmt.Errorf("read tar: %w", err)
		}
		if skipEntry(h.Name) {
			continue
		}
		name, err := cleanEntryName(h.Name)
		if err != nil {
			return err
		}
		switch h.Typeflag {
		case tar.TypeDir:
			err = x.dir(h.Name, name)
		case tar.TypeReg: // the reader reports old TypeRegA entries as TypeReg
			err = x.file(h.Name, name, fs.FileMode(h.Mode), tr)
		case tar.TypeSymlink:
			err = x.symlink(h.Name, name, h.Linkname)
		case tar.TypeLink:
			err = x.hardlink(h.Name, name, h.Linkname)
		case tar.TypeChar, tar.TypeBlock, tar.TypeFifo:
			err = &UnsafeEntryError{Entry: h.Name, Reason: "device or pipe file"}
		case tar.TypeXGlobalHeader:
			continue
		default:
			err = &UnsafeEntryError{Entry: h.Name, Reason: fmt.Sprintf("unsupported entry type %q", h.Typeflag)}
		}
		if err != nil {
			return err
		}
	}
}

// skipEntry drops the metadata macOS adds to archives, which would
// otherwise prevent stripping the project's top directory.
func skipEntry(name string) bool {
	return strings.HasPrefix(name, "__MACOSX/") || path.Base(name) == ".DS_Store"
}

// stripTopDir moves the content of a lone top-level directory up, and
// returns its name. It is skipped when a symlink would point outside the
// tree once moved.
func (x *extractor) stripTopDir() (string, error) {
	d, err := x.root.Open(".")
	if err != nil {
		return "", fmt.Errorf("read destination: %w", err)
	}
	entries, err := d.ReadDir(-1)
	_ = d.Close()
	if err != nil {
		return "", fmt.Errorf("read destination: %w", err)
	}
	if len(entries) != 1 || !entries[0].IsDir() {
		return "", nil
	}
	top := entries[0].Name()
	// Link targets are relative text: moved up one level, a link that
	// climbs through top/ itself would point outside.
	for name, target := range x.linkTargets {
		moved := path.Join(path.Dir(strings.TrimPrefix(name, top+"/")), target)
		if moved == ".." || strings.HasPrefix(moved, "../") {
			return "", nil
		}
	}
	var rnd [6]byte
	_, _ = rand.Read(rnd[:])
	tmp := ".berth-strip-" + hex.EncodeToString(rnd[:])
	if err := x.root.Rename(top, tmp); err != nil {
		return "", fmt.Errorf("strip top directory: %w", err)
	}
	sub, err := x.root.Open(tmp)
	if err != nil {
		return "", fmt.Errorf("strip top directory: %w", err)
	}
	children, err := sub.ReadDir(-1)
	_ = sub.Close()
	if err != nil {
		return "", fmt.Errorf("strip top directory: %w", err)
	}
	for _, c := range children {
		if err := x.root.Rename(tmp+"/"+c.Name(), c.Name()); err != nil {
			return "", fmt.Errorf("strip top directory: %w", err)
		}
	}
	if err := x.root.Remove(tmp); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return "", fmt.Errorf("strip top directory: %w", err)
	}
	return top, nil
}

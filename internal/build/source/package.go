package source

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
)

// PreparePackage turns an uploaded package into a build directory. A jar or
// war is placed as it is (a runnable artifact, which detection then sees as
// "a jar"); unpacking it would hand the build a tree of classes nobody can
// run. Zip and tar archives are extracted with Extract. dir must be absent
// or empty. The format found is returned for the build log.
func PreparePackage(archivePath, dir string, limits Limits) (Format, error) {
	format, err := DetectFormat(archivePath)
	if err != nil {
		return "", err
	}
	if format != FormatJar && format != FormatWar {
		return format, Extract(archivePath, dir, limits)
	}
	created, err := prepareEmptyDir(dir)
	if err != nil {
		return "", err
	}
	name := sanitizeName(filepath.Base(archivePath))
	if !strings.EqualFold(filepath.Ext(name), "."+string(format)) {
		name = "app." + string(format)
	}
	if err := copyFile(archivePath, filepath.Join(dir, name)); err != nil {
		emptyDir(dir, created)
		return "", err
	}
	return format, nil
}

func copyFile(src, dst string) error {
	// A hard link costs nothing when the upload and the build directory
	// share a file system; the upload store never rewrites a completed file.
	if err := os.Link(src, dst); err == nil {
		return nil
	}
	in, err := os.Open(src)
	if err != nil {
		return fmt.Errorf("place package: %w", err)
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return fmt.Errorf("place package: %w", err)
	}
	if _, err := io.Copy(out, in); err != nil {
		_ = out.Close()
		return fmt.Errorf("place package: %w", err)
	}
	if err := out.Close(); err != nil {
		return fmt.Errorf("place package: %w", err)
	}
	return nil
}

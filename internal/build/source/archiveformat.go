package source

import (
	"archive/zip"
	"bytes"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
)

// Format is what a package is, judged by its content: users name files
// freely (a .zip that is a tar.gz, a jar renamed .zip).
type Format string

const (
	FormatZip   Format = "zip"
	FormatTar   Format = "tar"
	FormatTarGz Format = "tar.gz"
	FormatJar   Format = "jar"
	FormatWar   Format = "war"
)

// DetectFormat reads the magic bytes of path; for zip files it also looks at
// the entries to tell a jar or war from a zip of sources.
func DetectFormat(path string) (Format, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", fmt.Errorf("open package: %w", err)
	}
	defer f.Close()
	head := make([]byte, 512)
	n, err := io.ReadFull(f, head)
	if err != nil && err != io.ErrUnexpectedEOF && err != io.EOF {
		return "", fmt.Errorf("read package: %w", err)
	}
	head = head[:n]
	switch {
	case bytes.HasPrefix(head, []byte("PK\x03\x04")), bytes.HasPrefix(head, []byte("PK\x05\x06")):
		return classifyZip(path)
	case bytes.HasPrefix(head, []byte{0x1f, 0x8b}):
		if _, err := f.Seek(0, io.SeekStart); err != nil {
			return "", fmt.Errorf("read package: %w", err)
		}
		zr, err := gzip.NewReader(f)
		if err != nil {
			return "", &UnsupportedArchiveError{Detected: "a damaged gzip file"}
		}
		inner := make([]byte, 512)
		m, _ := io.ReadFull(zr, inner)
		if isTar(inner[:m]) {
			return FormatTarGz, nil
		}
		return "", &UnsupportedArchiveError{Detected: "a gzip file that does not hold a tar archive"}
	case isTar(head):
		return FormatTar, nil
	case bytes.HasPrefix(head, []byte("BZh")):
		return "", &UnsupportedArchiveError{Detected: "a bzip2 file"}
	case bytes.HasPrefix(head, []byte("\xfd7zXZ\x00")):
		return "", &UnsupportedArchiveError{Detected: "an xz file"}
	case bytes.HasPrefix(head, []byte("7z\xbc\xaf\x27\x1c")):
		return "", &UnsupportedArchiveError{Detected: "a 7z archive"}
	case bytes.HasPrefix(head, []byte("Rar!")):
		return "", &UnsupportedArchiveError{Detected: "a rar archive"}
	}
	return "", &UnsupportedArchiveError{Detected: "not an archive"}
}

func isTar(block []byte) bool {
	// POSIX "ustar\x00" and GNU "ustar  \x00" both start with "ustar".
	return len(block) >= 262 && string(block[257:262]) == "ustar"
}

// classifyZip tells a war (WEB-INF/ at the top) and a jar (a manifest with
// classes or a Spring Boot layout) from a plain zip. A zip of a project that
// merely contains a jar somewhere is still a zip.
func classifyZip(path string) (Format, error) {
	zr, err := zip.OpenReader(path)
	if err != nil && !(errors.Is(err, zip.ErrInsecurePath) && zr != nil) {
		return "", &UnsupportedArchiveError{Detected: "a damaged zip file (" + err.Error() + ")"}
	}
	defer zr.Close()
	manifest, classes := false, false
	for _, f := range zr.File {
		name := strings.TrimPrefix(f.Name, "/")
		switch {
		case strings.HasPrefix(name, "WEB-INF/"):
			return FormatWar, nil
		case name == "META-INF/MANIFEST.MF":
			manifest = true
		case strings.HasSuffix(name, ".class"), strings.HasPrefix(name, "BOOT-INF/"):
			classes = true
		}
	}
	if manifest && classes {
		return FormatJar, nil
	}
	return FormatZip, nil
}

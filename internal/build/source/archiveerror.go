package source

import (
	"errors"
	"fmt"
)

// Kinds of refused archive, for errors.Is.
var (
	ErrUnsafeEntry        = errors.New("unsafe archive entry")
	ErrArchiveLimit       = errors.New("archive over limit")
	ErrUnsupportedArchive = errors.New("unsupported package format")
)

// UnsafeEntryError names the entry of an archive that would have written
// outside the destination or created something a build has no use for.
type UnsafeEntryError struct {
	Entry  string
	Reason string // e.g. "path traversal (..)", "symlink pointing outside the archive"
}

func (e *UnsafeEntryError) Error() string {
	return fmt.Sprintf("package refused: entry %q: %s; re-create the archive from the project directory with relative paths only",
		e.Entry, e.Reason)
}

func (e *UnsafeEntryError) Unwrap() error { return ErrUnsafeEntry }

// ArchiveLimitError is an archive that expands beyond what berth accepts,
// measured while extracting (headers can lie).
type ArchiveLimitError struct {
	Entry string // the entry being written when the limit was crossed
	Limit string // "files", "bytes" or "compression ratio"
	Max   float64
	Got   float64
}

func (e *ArchiveLimitError) Error() string {
	switch e.Limit {
	case "files":
		return fmt.Sprintf("package refused at entry %q: more than %.0f files; remove build outputs and dependencies (node_modules, target, vendor) from the package",
			e.Entry, e.Max)
	case "bytes":
		return fmt.Sprintf("package refused at entry %q: it expands to more than %.0f bytes; remove build outputs and dependencies from the package, or ask the administrator to raise the limit",
			e.Entry, e.Max)
	default:
		return fmt.Sprintf("package refused at entry %q: it expands more than %.0f times its compressed size, like a zip bomb; if the package is genuine, ask the administrator to raise the ratio limit",
			e.Entry, e.Max)
	}
}

func (e *ArchiveLimitError) Unwrap() error { return ErrArchiveLimit }

// UnsupportedArchiveError is a package berth cannot read.
type UnsupportedArchiveError struct {
	Detected string // what the magic bytes say it is
}

func (e *UnsupportedArchiveError) Error() string {
	return fmt.Sprintf("the package is %s; berth accepts jar, war, zip, tar and tar.gz (tgz) packages: re-pack it as one of these",
		e.Detected)
}

func (e *UnsupportedArchiveError) Unwrap() error { return ErrUnsupportedArchive }

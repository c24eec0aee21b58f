package source

import (
	"errors"
	"fmt"

	"github.com/berth-platform/berth/internal/build/tree"
)

// checkLink refuses the symlink name (entry raw) when following it, through
// the links around it, leaves the tree. The target text may stay inside
// only in appearance, climbing through a link extracted before it.
func (x *extractor) checkLink(raw, name string) error {
	err := tree.Follow(x.root, name)
	var esc *tree.EscapeError
	switch {
	case err == nil:
		return nil
	case errors.Is(err, tree.ErrLoop):
		return &UnsafeEntryError{Entry: raw, Reason: "symlink loop (more than 40 links to follow)"}
	case errors.As(err, &esc):
		return &UnsafeEntryError{Entry: raw, Reason: fmt.Sprintf("symlink pointing outside the package through other links (%s -> %s)", esc.Link, esc.Target)}
	}
	return fmt.Errorf("extract %s: %w", raw, err)
}

package plan

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"strings"
)

// ignoreMarker starts berth's lines in a .dockerignore. A kept checkout
// already has them from the last build: the file must come out the same,
// or the context (and the layer cache) changes.
const ignoreMarker = "\n# added by berth\n"

// WriteIgnore keeps .git (which differs between clones of the same commit,
// and would defeat the layer cache) and patterns out of the build context
// dir (relative to the source root srcRoot), on top of the repository's own
// .dockerignore. The file is replaced, never written through: a
// .dockerignore linked to a host file would have berth write that file as
// root. A link inside the tree (to .gitignore, say) is read and replaced by
// a regular file; a link leaving it is refused, naming it.
func WriteIgnore(srcRoot, dir string, patterns []string) error {
	t, err := openTree(srcRoot)
	if err != nil {
		return err
	}
	defer t.close()
	name := path.Join(dir, ".dockerignore")
	old, err := t.readFile(name)
	switch {
	case leaves(err):
		return err
	case err != nil && !errors.Is(err, fs.ErrNotExist):
		return fmt.Errorf("read %s: %w", name, err)
	case len(old) >= maxManifest:
		return &ManifestError{File: name, Err: fmt.Errorf("larger than %d bytes", maxManifest)}
	}
	own, _, _ := strings.Cut(string(old), ignoreMarker)
	add := ignoreMarker + ".git\n" + strings.Join(patterns, "\n") + "\n"
	return replaceFile(t.root, name, []byte(own+add))
}

// replaceFile writes data to a new file and renames it over name: rename
// replaces a symlink itself, where opening name would follow it.
func replaceFile(root *os.Root, name string, data []byte) error {
	tmp := name + ".berth-tmp"
	if err := root.Remove(tmp); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("write %s: %w", name, err)
	}
	f, err := root.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return fmt.Errorf("write %s: %w", name, err)
	}
	_, werr := f.Write(data)
	if cerr := f.Close(); werr == nil {
		werr = cerr
	}
	if werr == nil {
		werr = root.Rename(tmp, name)
	}
	if werr != nil {
		_ = root.Remove(tmp)
		return fmt.Errorf("write %s: %w", name, werr)
	}
	return nil
}

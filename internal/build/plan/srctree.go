package plan

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"

	"github.com/berth-platform/berth/internal/build/tree"
)

// maxManifest bounds what berth reads of a project file: manifests are
// small and the repository may be hostile.
const maxManifest = 1 << 20

// srcTree is a source directory read through os.Root: the repository is
// written by whoever pushed it, and no symlink in it may make berth read
// (or learn the existence of) a file of the host.
type srcTree struct {
	root *os.Root
}

func openTree(dir string) (*srcTree, error) {
	root, err := os.OpenRoot(dir)
	if err != nil {
		return nil, fmt.Errorf("detect: %w", err)
	}
	return &srcTree{root: root}, nil
}

func (t *srcTree) close() { _ = t.root.Close() }

// stat follows symlinks that stay inside the tree.
func (t *srcTree) stat(rel string) (fs.FileInfo, error) {
	st, err := t.root.Stat(treePath(rel))
	return st, t.explain(rel, err)
}

func (t *srcTree) readDir(rel string) ([]fs.DirEntry, error) {
	d, err := t.root.Open(treePath(rel))
	if err != nil {
		return nil, t.explain(rel, err)
	}
	defer d.Close()
	return d.ReadDir(-1)
}

// readFile returns at most maxManifest bytes of rel.
func (t *srcTree) readFile(rel string) ([]byte, error) {
	f, err := t.root.Open(treePath(rel))
	if err != nil {
		return nil, t.explain(rel, err)
	}
	defer f.Close()
	return io.ReadAll(io.LimitReader(f, maxManifest))
}

// explain turns os.Root's refusal of a path into a *LinkError naming the
// symlink that leaves the tree; other errors pass unchanged.
func (t *srcTree) explain(rel string, err error) error {
	if err == nil || errors.Is(err, fs.ErrNotExist) {
		return err
	}
	ferr := tree.Follow(t.root, treePath(rel))
	var esc *tree.EscapeError
	switch {
	case errors.As(ferr, &esc):
		return &LinkError{File: rel, Link: esc.Link, Target: esc.Target}
	case errors.Is(ferr, tree.ErrLoop):
		return &LinkError{File: rel, Loop: true}
	}
	return err
}

// leaves reports whether rel cannot be followed inside the tree.
func leaves(err error) bool {
	var le *LinkError
	return errors.As(err, &le)
}

func treePath(rel string) string {
	if rel == "" {
		return "."
	}
	return path.Clean(rel)
}

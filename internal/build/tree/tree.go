// Package tree follows paths inside untrusted trees (git checkouts,
// extracted uploads) the way the kernel would, to tell which symlink makes
// a path leave the tree. Reads and writes themselves go through os.Root,
// which refuses such paths but does not say why.
package tree

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"strings"
)

// maxLinkHops bounds link chains as the kernel does (MAXSYMLINKS).
const maxLinkHops = 40

// ErrLoop is a chain of links longer than the kernel would follow.
var ErrLoop = errors.New("too many levels of symlinks")

// EscapeError is a path that leaves its tree through the symlink Link,
// whose target is Target.
type EscapeError struct {
	Path   string // the path followed, relative to the tree
	Link   string // the symlink that leaves, relative to the tree
	Target string // the link's target as written
}

func (e *EscapeError) Error() string {
	return fmt.Sprintf("%s leaves the directory through the symlink %s -> %s", e.Path, e.Link, e.Target)
}

// Follow resolves name (slash-separated, relative to root) through every
// symlink on the way and returns an *EscapeError if it leaves root, ErrLoop
// for a link loop, nil if it stays inside. Checking a link's target text
// alone is not enough: with "a/b -> ..", "c -> a/b/.." points above the
// tree although it reads as "a". Components that do not exist (yet) count
// as plain directories, so that no later addition can make the path leave.
func Follow(root *os.Root, name string) error {
	if strings.HasPrefix(name, "/") {
		return &EscapeError{Path: name, Link: name, Target: name}
	}
	var dir []string // the link-free directory reached so far
	rest := strings.Split(name, "/")
	link, target := "", ""
	for hops := 0; len(rest) > 0; {
		part := rest[0]
		rest = rest[1:]
		switch part {
		case "", ".":
			continue
		case "..":
			if len(dir) == 0 {
				return &EscapeError{Path: name, Link: link, Target: target}
			}
			dir = dir[:len(dir)-1]
			continue
		}
		cur := path.Join(path.Join(dir...), part)
		fi, err := root.Lstat(cur)
		switch {
		case errors.Is(err, fs.ErrNotExist):
			dir = append(dir, part)
			continue
		case err != nil:
			return fmt.Errorf("resolve %s: %w", cur, err)
		case fi.Mode()&fs.ModeSymlink == 0:
			dir = append(dir, part)
			continue
		}
		if hops++; hops > maxLinkHops {
			return fmt.Errorf("resolve %s: %w", name, ErrLoop)
		}
		next, err := root.Readlink(cur)
		if err != nil {
			return fmt.Errorf("resolve %s: %w", cur, err)
		}
		link, target = cur, next
		if strings.HasPrefix(next, "/") {
			return &EscapeError{Path: name, Link: link, Target: target}
		}
		rest = append(strings.Split(next, "/"), rest...)
	}
	return nil
}

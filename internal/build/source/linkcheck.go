package source

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

// errLinkLoop is a chain of links longer than the kernel would follow.
var errLinkLoop = errors.New("too many levels of symlinks")

// linkEscape follows the symlink name inside root the way the kernel would,
// through every link on the way, and returns the first step that leaves the
// tree ("" when it stays inside). Checking a link's target text alone is not
// enough: "a/b -> .." makes "c -> a/b/.." point above the tree although it
// reads as "a". Components that do not exist (yet) are taken as plain
// directories, so a link cannot be made to escape later by an entry
// extracted after it.
func linkEscape(root *os.Root, name string) (string, error) {
	target, err := root.Readlink(name)
	if err != nil {
		return "", fmt.Errorf("read link %s: %w", name, err)
	}
	var dir []string // the resolved, link-free directory we stand in
	if d := path.Dir(name); d != "." {
		dir = strings.Split(d, "/")
	}
	return walkLink(root, dir, target)
}

func walkLink(root *os.Root, dir []string, target string) (string, error) {
	if strings.HasPrefix(target, "/") {
		return target, nil
	}
	rest := strings.Split(target, "/")
	for hops := 0; len(rest) > 0; {
		part := rest[0]
		rest = rest[1:]
		switch part {
		case "", ".":
			continue
		case "..":
			if len(dir) == 0 {
				return target, nil
			}
			dir = dir[:len(dir)-1]
			continue
		}
		cur := path.Join(append(append([]string{}, dir...), part)...)
		fi, err := root.Lstat(cur)
		switch {
		case errors.Is(err, fs.ErrNotExist):
			dir = append(dir, part)
			continue
		case err != nil:
			return "", fmt.Errorf("resolve %s: %w", cur, err)
		case fi.Mode()&fs.ModeSymlink == 0:
			dir = append(dir, part)
			continue
		}
		if hops++; hops > maxLinkHops {
			return "", errLinkLoop
		}
		next, err := root.Readlink(cur)
		if err != nil {
			return "", fmt.Errorf("resolve %s: %w", cur, err)
		}
		if strings.HasPrefix(next, "/") {
			return cur + " -> " + next, nil
		}
		target = cur + " -> " + next
		rest = append(strings.Split(next, "/"), rest...)
	}
	return "", nil
}

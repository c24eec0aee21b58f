package tree

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
)

func TestFollow(t *testing.T) {
	dir := t.TempDir()
	mk := func(name string) {
		if err := os.MkdirAll(filepath.Join(dir, name), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	ln := func(target, name string) {
		if err := os.Symlink(target, filepath.Join(dir, name)); err != nil {
			t.Fatal(err)
		}
	}
	mk("a/b")
	ln("..", "a/up")           // -> the root
	ln("a/up/..", "climb")     // reads as "a", is the root's parent
	ln("/etc", "abs")          // absolute
	ln("a/b", "inside")        // plain
	ln("inside/../../a", "ok") // a/b/../../a = a
	ln("loop2", "loop1")
	ln("loop1", "loop2")
	root, err := os.OpenRoot(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer root.Close()
	for _, tc := range []struct {
		name   string
		escape bool
		link   string // the link named by the escape
		loop   bool
	}{
		{name: "a/b/c"},
		{name: "inside/x"},
		{name: "ok/b"},
		{name: "a/up/a/b"},
		{name: "missing/../a"},
		{name: "climb", escape: true, link: "a/up"},
		{name: "climb/x", escape: true, link: "a/up"},
		{name: "abs/passwd", escape: true, link: "abs"},
		{name: "a/up/abs", escape: true, link: "abs"},
		{name: "missing/../..", escape: true}, // no link, still out
		{name: "loop1", loop: true},
	} {
		err := Follow(root, tc.name)
		var esc *EscapeError
		switch {
		case tc.loop:
			if !errors.Is(err, ErrLoop) {
				t.Errorf("%s: %v, want a loop", tc.name, err)
			}
		case !tc.escape:
			if err != nil {
				t.Errorf("%s: %v, want inside", tc.name, err)
			}
		case !errors.As(err, &esc) || esc.Link != tc.link:
			t.Errorf("%s: %v, want an escape through %s", tc.name, err, tc.link)
		}
	}
}

package plan

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/berth-platform/berth/internal/model"
)

// hostileTree is a checkout whose links point at hostFile, a file of "the
// host" outside it, which must never be read or written through them.
type hostileTree struct {
	root, hostFile string
}

const hostContent = "web: /bin/sh -c 'cat /etc/shadow'\nFROM host-secret\n"

func newHostileTree(t *testing.T) hostileTree {
	t.Helper()
	host := filepath.Join(t.TempDir(), "host-file")
	writeTestFile(t, host, hostContent)
	old := time.Now().Add(-time.Hour)
	if err := os.Chtimes(host, old, old); err != nil {
		t.Fatal(err)
	}
	return hostileTree{root: t.TempDir(), hostFile: host}
}

func writeTestFile(t *testing.T, p, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

func (h hostileTree) write(t *testing.T, name, content string) {
	writeTestFile(t, filepath.Join(h.root, filepath.FromSlash(name)), content)
}

func (h hostileTree) link(t *testing.T, name, target string) {
	t.Helper()
	p := filepath.Join(h.root, filepath.FromSlash(name))
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(target, p); err != nil {
		t.Fatal(err)
	}
}

// assertHostUntouched fails when the host file changed in any way.
func (h hostileTree) assertHostUntouched(t *testing.T) {
	t.Helper()
	st, err := os.Stat(h.hostFile)
	if err != nil {
		t.Fatal(err)
	}
	data, _ := os.ReadFile(h.hostFile)
	if string(data) != hostContent || time.Since(st.ModTime()) < 30*time.Minute {
		t.Fatalf("the host file was written through the checkout: %q", data)
	}
}

func assertLinkError(t *testing.T, err error, file string) {
	t.Helper()
	var le *LinkError
	if !errors.As(err, &le) {
		t.Fatalf("err = %v, want a LinkError naming %s", err, file)
	}
	if !strings.Contains(err.Error(), file) || !strings.Contains(err.Error(), "leaves the source directory") {
		t.Fatalf("error %q does not name %s as leaving the source directory", err, file)
	}
}

func TestWriteIgnoreNeverWritesThroughALink(t *testing.T) {
	for _, tc := range []struct{ name, target string }{
		{"absolute link to a host file", ""},
		{"relative link climbing out", "rel"},
		{"link to a host path that does not exist yet", "missing"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHostileTree(t)
			h.write(t, "index.html", "<p>hi</p>")
			target := h.hostFile
			switch tc.target {
			case "rel":
				rel, err := filepath.Rel(h.root, h.hostFile)
				if err != nil {
					t.Fatal(err)
				}
				target = rel
			case "missing":
				target = filepath.Join(filepath.Dir(h.hostFile), "created-by-berth")
			}
			h.link(t, ".dockerignore", target)
			err := WriteIgnore(h.root, "", []string{"node_modules"})
			assertLinkError(t, err, ".dockerignore")
			h.assertHostUntouched(t)
			if _, err := os.Lstat(filepath.Join(filepath.Dir(h.hostFile), "created-by-berth")); !errors.Is(err, fs.ErrNotExist) {
				t.Fatalf("a host file was created through the link: %v", err)
			}
		})
	}
}

func TestWriteIgnoreReplacesALinkInsideTheTree(t *testing.T) {
	h := newHostileTree(t)
	h.write(t, "app/.gitignore", "dist\n")
	h.link(t, "app/.dockerignore", ".gitignore")
	for range 2 { // a kept checkout gets the same file again
		if err := WriteIgnore(h.root, "app", []string{"node_modules"}); err != nil {
			t.Fatal(err)
		}
	}
	p := filepath.Join(h.root, "app", ".dockerignore")
	st, err := os.Lstat(p)
	if err != nil || !st.Mode().IsRegular() {
		t.Fatalf(".dockerignore is still a link (%v, %v)", st.Mode(), err)
	}
	got, _ := os.ReadFile(p)
	if want := "dist\n" + ignoreMarker + ".git\nnode_modules\n"; string(got) != want {
		t.Fatalf(".dockerignore = %q, want %q", got, want)
	}
	if b, _ := os.ReadFile(filepath.Join(h.root, "app", ".gitignore")); string(b) != "dist\n" {
		t.Fatalf(".gitignore was written through the link: %q", b)
	}
	if _, err := os.Lstat(p + ".berth-tmp"); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("temporary file left behind: %v", err)
	}
}

func TestDetectRefusesProcfileLinkedOutside(t *testing.T) {
	// The same answer whether the host file exists or not: detection must
	// not tell which host paths exist.
	for _, missing := range []bool{false, true} {
		h := newHostileTree(t)
		h.write(t, "index.html", "<p>hi</p>")
		target := h.hostFile
		if missing {
			target += ".missing"
		}
		h.link(t, "Procfile", target)
		det, err := Detect(h.root, "")
		assertLinkError(t, err, "Procfile")
		if det.Cmd != "" {
			t.Fatalf("the host file became the start command %q", det.Cmd)
		}
	}
}

func TestDetectRefusesManifestsLinkedOutside(t *testing.T) {
	for _, tc := range []struct {
		name, file string
		setup      func(t *testing.T, h *hostileTree)
		src        model.Source
	}{
		{name: "Dockerfile", file: "Dockerfile", setup: func(t *testing.T, h *hostileTree) {
			h.link(t, "Dockerfile", h.hostFile)
		}},
		{name: "Dockerfile at a user path through a linked directory", file: "build/Dockerfile",
			src: model.Source{Dockerfile: "build/Dockerfile"}, setup: func(t *testing.T, h *hostileTree) {
				h.link(t, "build", filepath.Dir(h.hostFile))
				if err := os.Rename(h.hostFile, filepath.Join(filepath.Dir(h.hostFile), "Dockerfile")); err != nil {
					t.Fatal(err)
				}
				h.hostFile = filepath.Join(filepath.Dir(h.hostFile), "Dockerfile")
			}},
		{name: "rainbondfile", file: "rainbondfile", setup: func(t *testing.T, h *hostileTree) {
			h.write(t, "index.html", "<p>hi</p>")
			h.link(t, "rainbondfile", h.hostFile)
		}},
		{name: "package.json", file: "package.json", setup: func(t *testing.T, h *hostileTree) {
			h.link(t, "package.json", h.hostFile)
		}},
		{name: "go.mod in a subdirectory", file: "svc/go.mod", src: model.Source{Subdir: "svc"}, setup: func(t *testing.T, h *hostileTree) {
			h.link(t, "svc/go.mod", "../../"+filepath.Base(filepath.Dir(h.hostFile))+"/host-file")
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHostileTree(t)
			tc.setup(t, &h)
			det, err := DetectSource(h.root, tc.src)
			if err == nil {
				_, err = Generate(det, Options{})
			}
			assertLinkError(t, err, tc.file)
			h.assertHostUntouched(t)
		})
	}
}

func TestDetectFollowsLinksInsideTheTree(t *testing.T) {
	h := newHostileTree(t)
	h.write(t, "deploy/Procfile.real", "web: ./server --port 8080\n")
	h.link(t, "Procfile", "deploy/Procfile.real")
	h.write(t, "docker/Dockerfile", "FROM alpine:3.20\nEXPOSE 9000\n")
	h.link(t, "Dockerfile", "docker/../docker/Dockerfile")
	det, err := Detect(h.root, "")
	if err != nil {
		t.Fatal(err)
	}
	if det.Cmd != "./server --port 8080" || det.Language != Dockerfile {
		t.Fatalf("cmd %q, language %s", det.Cmd, det.Language)
	}
	p, err := Generate(det, Options{})
	if err != nil || p.Port != 9000 {
		t.Fatalf("plan port %d, %v", p.Port, err)
	}
}

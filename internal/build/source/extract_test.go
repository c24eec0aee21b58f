package source

import (
	"archive/tar"
	"archive/zip"
	"bytes"
	"compress/gzip"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
)

type entry struct {
	name, body, link string
	mode             int64
	typ              byte // tar type; 0 means a regular file
}

func writeZip(t *testing.T, path string, entries []entry) {
	t.Helper()
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	for _, e := range entries {
		h := &zip.FileHeader{Name: e.name, Method: zip.Deflate}
		mode := fs.FileMode(0o644)
		if e.mode != 0 {
			mode = fs.FileMode(e.mode)
		}
		if e.typ == tar.TypeSymlink {
			mode = fs.ModeSymlink | 0o777
		}
		h.SetMode(mode)
		w, err := zw.CreateHeader(h)
		if err != nil {
			t.Fatal(err)
		}
		body := e.body
		if e.typ == tar.TypeSymlink {
			body = e.link
		}
		if _, err := w.Write([]byte(body)); err != nil {
			t.Fatal(err)
		}
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
}

func writeTar(t *testing.T, path string, gz bool, entries []entry) {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range entries {
		typ := e.typ
		if typ == 0 {
			typ = tar.TypeReg
		}
		mode := e.mode
		if mode == 0 {
			mode = 0o644
		}
		h := &tar.Header{Name: e.name, Typeflag: typ, Mode: mode, Linkname: e.link, Format: tar.FormatPAX}
		if typ == tar.TypeReg {
			h.Size = int64(len(e.body))
		}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		if typ == tar.TypeReg {
			if _, err := tw.Write([]byte(e.body)); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	data := buf.Bytes()
	if gz {
		var zb bytes.Buffer
		zw := gzip.NewWriter(&zb)
		_, _ = zw.Write(data)
		_ = zw.Close()
		data = zb.Bytes()
	}
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
}

// sandbox lays out base/{pkg, dest} and checks afterwards that nothing but
// these two appeared in base, whatever the archive tried.
type sandbox struct {
	base, pkg, dest string
}

func newSandbox(t *testing.T) sandbox {
	base := t.TempDir()
	return sandbox{base: base, pkg: filepath.Join(base, "pkg"), dest: filepath.Join(base, "dest")}
}

func (s sandbox) assertContained(t *testing.T) {
	t.Helper()
	entries, err := os.ReadDir(s.base)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if e.Name() != "pkg" && e.Name() != "dest" {
			t.Fatalf("extraction wrote %s outside the destination", e.Name())
		}
	}
	if d, err := os.ReadDir(s.dest); err == nil && len(d) > 0 {
		t.Fatalf("a refused archive left %d entries in the destination", len(d))
	}
}

func listTree(t *testing.T, dir string) []string {
	t.Helper()
	var out []string
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if p == dir {
			return nil
		}
		rel, _ := filepath.Rel(dir, p)
		if d.Type()&fs.ModeSymlink != 0 {
			target, _ := os.Readlink(p)
			rel += " -> " + target
		} else if d.IsDir() {
			rel += "/"
		}
		out = append(out, rel)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(out)
	return out
}

func TestExtractZipStripsTopDir(t *testing.T) {
	s := newSandbox(t)
	writeZip(t, s.pkg, []entry{
		{name: "myapp/"},
		{name: "myapp/pom.xml", body: "<project/>"},
		{name: "myapp/mvnw", body: "#!/bin/sh\n", mode: 0o755},
		{name: "myapp/src/main/App.java", body: "class App {}"},
		{name: "__MACOSX/myapp/._pom.xml", body: "junk"},
		{name: "myapp/.DS_Store", body: "junk"},
	})
	if err := Extract(s.pkg, s.dest, Limits{}); err != nil {
		t.Fatal(err)
	}
	got := strings.Join(listTree(t, s.dest), " ")
	if want := "mvnw pom.xml src/ src/main/ src/main/App.java"; got != want {
		t.Fatalf("tree = %s, want %s", got, want)
	}
	st, _ := os.Stat(filepath.Join(s.dest, "mvnw"))
	if st.Mode().Perm()&0o100 == 0 {
		t.Fatal("the executable bit of mvnw was lost")
	}
}

func TestExtractTarGzWithInnerSymlinks(t *testing.T) {
	s := newSandbox(t)
	writeTar(t, s.pkg, true, []entry{
		{name: "app/package.json", body: "{}"},
		{name: "app/node_modules/.bin/tool", typ: tar.TypeSymlink, link: "../tool/cli.js"},
		{name: "app/node_modules/tool/cli.js", body: "console.log(1)"},
		{name: "app/copy.js", typ: tar.TypeLink, link: "app/node_modules/tool/cli.js"},
	})
	if err := Extract(s.pkg, s.dest, Limits{}); err != nil {
		t.Fatal(err)
	}
	got := strings.Join(listTree(t, s.dest), " ")
	want := "copy.js node_modules/ node_modules/.bin/ node_modules/.bin/tool -> ../tool/cli.js node_modules/tool/ node_modules/tool/cli.js package.json"
	if got != want {
		t.Fatalf("tree = %s\nwant   %s", got, want)
	}
	if b, _ := os.ReadFile(filepath.Join(s.dest, "copy.js")); string(b) != "console.log(1)" {
		t.Fatalf("hard link content %q", b)
	}
}

func TestExtractAcceptsLinkChainsInside(t *testing.T) {
	s := newSandbox(t)
	writeTar(t, s.pkg, false, []entry{
		{name: "node_modules/tool/cli.js", body: "console.log(1)"},
		{name: "node_modules/tool/lib", typ: tar.TypeSymlink, link: "."},
		{name: "node_modules/.bin/tool", typ: tar.TypeSymlink, link: "../tool/lib/lib/cli.js"},
		{name: "tool", typ: tar.TypeSymlink, link: "node_modules/.bin/tool"},
	})
	if err := Extract(s.pkg, s.dest, Limits{}); err != nil {
		t.Fatal(err)
	}
	if b, err := os.ReadFile(filepath.Join(s.dest, "tool")); err != nil || string(b) != "console.log(1)" {
		t.Fatalf("tool = %q, %v", b, err)
	}
}

func TestExtractKeepsTopDirWhenLinkWouldEscape(t *testing.T) {
	s := newSandbox(t)
	writeTar(t, s.pkg, false, []entry{
		{name: "top/a", body: "a"},
		// Inside the tree as archived, outside once top/ is stripped.
		{name: "top/up", typ: tar.TypeSymlink, link: "../top/a"},
	})
	if err := Extract(s.pkg, s.dest, Limits{}); err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(listTree(t, s.dest), " "); got != "top/ top/a top/up -> ../top/a" {
		t.Fatalf("tree = %s", got)
	}
}

func TestExtractRefusesMaliciousArchives(t *testing.T) {
	zeros := strings.Repeat("\x00", 64<<20)
	for _, tc := range []struct {
		name    string
		zip     bool
		gz      bool
		entries []entry
		limits  Limits
		want    error
		entry   string // the entry the error must name
		reason  string
	}{
		{name: "zip traversal", zip: true, entries: []entry{{name: "ok.txt", body: "ok"}, {name: "../evil.txt", body: "x"}},
			want: ErrUnsafeEntry, entry: "../evil.txt", reason: "path traversal"},
		{name: "zip nested traversal", zip: true, entries: []entry{{name: "a/../../evil.txt", body: "x"}},
			want: ErrUnsafeEntry, entry: "a/../../evil.txt", reason: "path traversal"},
		{name: "zip backslash traversal", zip: true, entries: []entry{{name: `..\evil.txt`, body: "x"}},
			want: ErrUnsafeEntry, entry: `..\evil.txt`, reason: "path traversal"},
		{name: "zip absolute", zip: true, entries: []entry{{name: "/evil.txt", body: "x"}},
			want: ErrUnsafeEntry, entry: "/evil.txt", reason: "absolute path"},
		{name: "zip symlink", zip: true, entries: []entry{{name: "link", typ: tar.TypeSymlink, link: "../"}},
			want: ErrUnsafeEntry, entry: "link", reason: "symlinks are not accepted"},
		{name: "tar absolute", entries: []entry{{name: "PLACEHOLDER_ABS", body: "x"}},
			want: ErrUnsafeEntry, reason: "absolute path"},
		{name: "tar symlink escape", entries: []entry{
			{name: "link", typ: tar.TypeSymlink, link: "../"},
			{name: "link/evil.txt", body: "x"}},
			want: ErrUnsafeEntry, entry: "link", reason: "symlink pointing outside"},
		{name: "tar absolute symlink", gz: true, entries: []entry{{name: "etc", typ: tar.TypeSymlink, link: "/etc"}},
			want: ErrUnsafeEntry, entry: "etc", reason: "absolute path"},
		{name: "tar write through inner symlink", entries: []entry{
			{name: "sub/", typ: tar.TypeDir, mode: 0o755},
			{name: "dot", typ: tar.TypeSymlink, link: "sub"},
			{name: "dot/x", body: "x"}},
			want: ErrUnsafeEntry, entry: "dot/x", reason: "through the symlink"},
		{name: "tar symlink chain escape", entries: []entry{
			{name: "here", typ: tar.TypeSymlink, link: "."},
			{name: "here/up", typ: tar.TypeSymlink, link: "../x"}},
			want: ErrUnsafeEntry, entry: "here/up"},
		// Each link's text stays inside; followed through the others, it
		// does not.
		{name: "tar link climbing through an earlier link", entries: []entry{
			{name: "sub/", typ: tar.TypeDir, mode: 0o755},
			{name: "sub/up", typ: tar.TypeSymlink, link: ".."},
			{name: "out", typ: tar.TypeSymlink, link: "sub/up/.."}},
			want: ErrUnsafeEntry, entry: "out", reason: "outside the package through other links"},
		{name: "tar link made to escape by a later link", gz: true, entries: []entry{
			{name: "out", typ: tar.TypeSymlink, link: "sub/up/../etc"},
			{name: "sub/", typ: tar.TypeDir, mode: 0o755},
			{name: "sub/up", typ: tar.TypeSymlink, link: ".."}},
			want: ErrUnsafeEntry, entry: "out", reason: "outside the package through other links"},
		{name: "tar link chain a->b->outside", entries: []entry{
			{name: "a", typ: tar.TypeSymlink, link: "b"},
			{name: "sub/", typ: tar.TypeDir, mode: 0o755},
			{name: "sub/up", typ: tar.TypeSymlink, link: ".."},
			{name: "b", typ: tar.TypeSymlink, link: "sub/up/../outside"},
			{name: "a/x", body: "x"}},
			want: ErrUnsafeEntry, entry: "b", reason: "outside the package through other links"},
		{name: "tar link chain a->b, b->../../outside, c/x through a", entries: []entry{
			{name: "a", typ: tar.TypeSymlink, link: "b"},
			{name: "b", typ: tar.TypeSymlink, link: "../../outside"},
			{name: "c", typ: tar.TypeSymlink, link: "a"},
			{name: "c/x", body: "x"}},
			want: ErrUnsafeEntry, entry: "b", reason: "symlink pointing outside"},
		{name: "tar symlink loop", entries: []entry{
			{name: "a", typ: tar.TypeSymlink, link: "b"},
			{name: "b", typ: tar.TypeSymlink, link: "a"}},
			want: ErrUnsafeEntry, entry: "b", reason: "symlink loop"},
		{name: "zip link chain a->b->outside", zip: true, entries: []entry{
			{name: "a", typ: tar.TypeSymlink, link: "b"},
			{name: "b", typ: tar.TypeSymlink, link: "../../outside"},
			{name: "a/x", body: "x"}},
			want: ErrUnsafeEntry, entry: "a", reason: "symlinks are not accepted"},
		{name: "tar hardlink outside", entries: []entry{{name: "passwd", typ: tar.TypeLink, link: "../../../../etc/passwd"}},
			want: ErrUnsafeEntry, entry: "passwd", reason: "hard link"},
		{name: "tar hardlink absolute", entries: []entry{{name: "passwd", typ: tar.TypeLink, link: "/etc/passwd"}},
			want: ErrUnsafeEntry, entry: "passwd", reason: "hard link"},
		{name: "tar device", entries: []entry{{name: "null", typ: tar.TypeChar}},
			want: ErrUnsafeEntry, entry: "null", reason: "device"},
		{name: "tar fifo", entries: []entry{{name: "pipe", typ: tar.TypeFifo}},
			want: ErrUnsafeEntry, entry: "pipe", reason: "pipe"},
		{name: "zip bomb", zip: true, entries: []entry{{name: "zeros.bin", body: zeros}},
			want: ErrArchiveLimit, entry: "zeros.bin", reason: "zip bomb"},
		{name: "tar.gz bomb", gz: true, entries: []entry{{name: "zeros.bin", body: zeros}},
			want: ErrArchiveLimit, entry: "zeros.bin", reason: "times its compressed size"},
		{name: "too many files", zip: true, limits: Limits{MaxFiles: 10}, entries: manyFiles(11),
			want: ErrArchiveLimit, entry: "f10", reason: "more than 10 files"},
		{name: "too many bytes", gz: true, limits: Limits{MaxBytes: 1000, MaxRatio: 1e9},
			entries: []entry{{name: "a", body: strings.Repeat("a", 600)}, {name: "b", body: strings.Repeat("b", 600)}},
			want:    ErrArchiveLimit, entry: "b", reason: "more than 1000 bytes"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := newSandbox(t)
			if len(tc.entries) == 1 && tc.entries[0].name == "PLACEHOLDER_ABS" {
				tc.entries[0].name = filepath.Join(s.base, "evil.txt")
				tc.entry = tc.entries[0].name
			}
			if tc.zip {
				writeZip(t, s.pkg, tc.entries)
			} else {
				writeTar(t, s.pkg, tc.gz, tc.entries)
			}
			err := Extract(s.pkg, s.dest, tc.limits)
			if !errors.Is(err, tc.want) {
				t.Fatalf("Extract = %v, want %v", err, tc.want)
			}
			if tc.entry != "" && !strings.Contains(err.Error(), `"`+strings.ReplaceAll(tc.entry, `\`, `\\`)+`"`) {
				t.Errorf("error %q does not name the entry %q", err, tc.entry)
			}
			if !strings.Contains(err.Error(), tc.reason) {
				t.Errorf("error %q does not say %q", err, tc.reason)
			}
			s.assertContained(t)
		})
	}
}

func manyFiles(n int) []entry {
	var out []entry
	for i := range n {
		out = append(out, entry{name: "f" + string(rune('0'+i/10)) + string(rune('0'+i%10)), body: "x"})
	}
	// Names f00..f10: the 11th is "f10".
	return out
}

func TestExtractBombStopsEarly(t *testing.T) {
	s := newSandbox(t)
	writeZip(t, s.pkg, []entry{{name: "zeros.bin", body: strings.Repeat("\x00", 64<<20)}})
	st, _ := os.Stat(s.pkg)
	x := &extractor{limits: Limits{MaxFiles: 10, MaxBytes: 1 << 40, MaxRatio: 100}.withDefaults(), archiveSize: st.Size()}
	// Count what the copy would write before refusing.
	var sink countingWriter
	f, _ := zip.OpenReader(s.pkg)
	defer f.Close()
	rc, _ := f.File[0].Open()
	defer rc.Close()
	err := x.copy("zeros.bin", &sink, rc)
	if !errors.Is(err, ErrArchiveLimit) {
		t.Fatalf("copy = %v", err)
	}
	if limit := int64(float64(st.Size())*100) + ratioFloor; sink.n > limit {
		t.Fatalf("wrote %d bytes before refusing, want at most %d", sink.n, limit)
	}
}

type countingWriter struct{ n int64 }

func (c *countingWriter) Write(p []byte) (int, error) { c.n += int64(len(p)); return len(p), nil }

func TestDetectFormatByContent(t *testing.T) {
	dir := t.TempDir()
	p := func(n string) string { return filepath.Join(dir, n) }
	writeTar(t, p("sources.zip"), true, []entry{{name: "a", body: "a"}})
	writeTar(t, p("plain.bin"), false, []entry{{name: "a", body: "a"}})
	writeZip(t, p("app.zip"), []entry{{name: "META-INF/MANIFEST.MF", body: "Main-Class: x"}, {name: "x/Main.class", body: "\xca\xfe"}})
	writeZip(t, p("site.jar"), []entry{{name: "WEB-INF/web.xml", body: "<web-app/>"}, {name: "index.jsp", body: "x"}})
	writeZip(t, p("project.jar"), []entry{{name: "project/pom.xml", body: "<project/>"}, {name: "project/lib/dep.jar", body: "x"}})
	_ = os.WriteFile(p("x.bz2"), []byte("BZh91AY&SY..."), 0o644)
	_ = os.WriteFile(p("readme.txt"), []byte("hello"), 0o644)
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	_, _ = zw.Write([]byte("just text"))
	_ = zw.Close()
	_ = os.WriteFile(p("text.gz"), gz.Bytes(), 0o644)

	for name, want := range map[string]Format{
		"sources.zip": FormatTarGz, "plain.bin": FormatTar, "app.zip": FormatJar,
		"site.jar": FormatWar, "project.jar": FormatZip,
	} {
		if got, err := DetectFormat(p(name)); err != nil || got != want {
			t.Errorf("DetectFormat(%s) = %s, %v; want %s", name, got, err, want)
		}
	}
	for _, name := range []string{"x.bz2", "readme.txt", "text.gz"} {
		if _, err := DetectFormat(p(name)); !errors.Is(err, ErrUnsupportedArchive) || !strings.Contains(err.Error(), "tar.gz (tgz)") {
			t.Errorf("DetectFormat(%s) = %v, want ErrUnsupportedArchive with the accepted formats", name, err)
		}
	}
}

func TestPreparePackage(t *testing.T) {
	dir := t.TempDir()
	jar := filepath.Join(dir, "upload-123")
	writeZip(t, jar, []entry{{name: "META-INF/MANIFEST.MF", body: "Main-Class: x"}, {name: "BOOT-INF/classes/x.class", body: "x"}})
	dest := filepath.Join(dir, "build")
	format, err := PreparePackage(jar, dest, Limits{})
	if err != nil || format != FormatJar {
		t.Fatalf("PreparePackage = %s, %v", format, err)
	}
	if got := strings.Join(listTree(t, dest), " "); got != "app.jar" {
		t.Fatalf("tree = %s, want the jar as is", got)
	}

	war := filepath.Join(dir, "shop.war")
	writeZip(t, war, []entry{{name: "WEB-INF/web.xml", body: "<web-app/>"}})
	dest2 := filepath.Join(dir, "build2")
	if format, err := PreparePackage(war, dest2, Limits{}); err != nil || format != FormatWar {
		t.Fatalf("PreparePackage(war) = %s, %v", format, err)
	}
	if got := strings.Join(listTree(t, dest2), " "); got != "shop.war" {
		t.Fatalf("tree = %s", got)
	}

	src := filepath.Join(dir, "src.tgz")
	writeTar(t, src, true, []entry{{name: "proj/go.mod", body: "module x\n"}})
	dest3 := filepath.Join(dir, "build3")
	if format, err := PreparePackage(src, dest3, Limits{}); err != nil || format != FormatTarGz {
		t.Fatalf("PreparePackage(tgz) = %s, %v", format, err)
	}
	if got := strings.Join(listTree(t, dest3), " "); got != "go.mod" {
		t.Fatalf("tree = %s", got)
	}
}

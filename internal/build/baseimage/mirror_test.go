package baseimage

import (
	"os"
	"path/filepath"
	"testing"
)

func TestMirrors(t *testing.T) {
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "sources.list.d"), 0o755); err != nil {
		t.Fatal(err)
	}
	write := func(name, content string) {
		t.Helper()
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}

	// Nothing configured: deb.debian.org.
	if m, s := mirrors(dir, "bookworm"); m != DefaultMirror || s != "http://deb.debian.org/debian-security" {
		t.Errorf("empty config: %s %s", m, s)
	}

	// Debian 12's deb822 file, plus an unrelated disabled source.
	write("sources.list.d/debian.sources", `Types: deb
# http://snapshot.debian.org/archive/debian/20250520T000000Z
URIs: http://mirror.local/debian
Suites: bookworm bookworm-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: http://mirror.local/debian-security
Suites: bookworm-security
Components: main
`)
	write("sources.list.d/other.sources", "Types: deb\nURIs: https://elsewhere/\nSuites: bookworm\nEnabled: no\n")
	if m, s := mirrors(dir, "bookworm"); m != "http://mirror.local/debian" || s != "http://mirror.local/debian-security" {
		t.Errorf("deb822: %s %s", m, s)
	}

	// One-line format with options wins when it comes first.
	write("sources.list", "# comment\ndeb-src http://src/debian bookworm main\ndeb [arch=amd64 signed-by=/k.gpg] http://old.local/debian bookworm main contrib\n")
	if m, _ := mirrors(dir, "bookworm"); m != "http://old.local/debian" {
		t.Errorf("one-line: %s", m)
	}
}

func TestRepository(t *testing.T) {
	if got := Repository("127.0.0.1:5000/", "go", RoleBuilder); got != "127.0.0.1:5000/berth/base-go-builder" {
		t.Errorf("Repository = %s", got)
	}
	if _, err := recipeFor("dotnet"); err == nil {
		t.Error("dotnet accepted")
	}
	if _, err := recipeFor("cobol"); err == nil {
		t.Error("cobol accepted")
	}
}

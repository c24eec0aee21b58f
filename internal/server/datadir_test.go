package server

import (
	"os"
	"path/filepath"
	"testing"
)

// TestOpenDataDirTightensAnOldInstall starts on a data directory laid out
// as older berths left it (0755, 0644 database and logs) and checks that
// nothing in it stays readable by other users, without following a link
// out of the logs.
func TestOpenDataDirTightensAnOldInstall(t *testing.T) {
	root := t.TempDir()
	data := filepath.Join(root, "data")
	outside := filepath.Join(root, "outside.txt")
	mustWrite(t, outside, 0o644)
	if err := os.MkdirAll(filepath.Join(data, "logs", "instances", "c1"), 0o755); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"berth.db", "berth.db-wal", "admin-token", "logs/berth.log", "logs/instances/c1/i1.log"} {
		mustWrite(t, filepath.Join(data, f), 0o644)
	}
	if err := os.Symlink(outside, filepath.Join(data, "logs", "link.log")); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(data, 0o755); err != nil {
		t.Fatal(err)
	}

	d, err := openDataDir(data)
	if err != nil {
		t.Fatal(err)
	}
	defer d.close()

	want := map[string]os.FileMode{
		"": 0o700, "logs": 0o700, "logs/instances": 0o700, "logs/instances/c1": 0o700,
		"berth.db": 0o600, "berth.db-wal": 0o600, "admin-token": 0o600, "berth.lock": 0o600,
		"logs/berth.log": 0o600, "logs/instances/c1/i1.log": 0o600,
	}
	for name, mode := range want {
		fi, err := os.Stat(filepath.Join(data, name))
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != mode {
			t.Errorf("%s: mode %o, want %o", name, fi.Mode().Perm(), mode)
		}
	}
	if fi, _ := os.Stat(outside); fi.Mode().Perm() != 0o644 {
		t.Errorf("a link in the logs changed the mode of its target outside the data directory to %o", fi.Mode().Perm())
	}
}

func mustWrite(t *testing.T, path string, mode os.FileMode) {
	t.Helper()
	if err := os.WriteFile(path, []byte("x"), mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, mode); err != nil {
		t.Fatal(err)
	}
}

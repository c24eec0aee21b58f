package server

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"syscall"
)

// dataDir is berth's data directory, locked for the life of the server so
// that two servers never share one SQLite file or one set of containers.
type dataDir struct {
	path string
	lock *os.File
}

func openDataDir(path string) (*dataDir, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, fmt.Errorf("resolve %s: %w", path, err)
	}
	if err := os.MkdirAll(filepath.Join(abs, "logs"), 0o700); err != nil {
		return nil, fmt.Errorf("create %s: %w", abs, err)
	}
	if err := tightenDataDir(abs); err != nil {
		return nil, err
	}
	f, err := os.OpenFile(filepath.Join(abs, "berth.lock"), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("open lock file: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		pid, _ := os.ReadFile(f.Name())
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, fmt.Errorf("another berth server (pid %s) uses %s; stop it or pick another --data", bytes.TrimSpace(pid), abs)
		}
		return nil, fmt.Errorf("lock %s: %w", abs, err)
	}
	_ = f.Truncate(0)
	_, _ = f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
	return &dataDir{path: abs, lock: f}, nil
}

func (d *dataDir) file(parts ...string) string {
	return filepath.Join(append([]string{d.path}, parts...)...)
}

func (d *dataDir) close() {
	if d.lock != nil {
		_ = syscall.Flock(int(d.lock.Fd()), syscall.LOCK_UN)
		d.lock.Close()
	}
}

// tightenDataDir makes the data directory private to berth's user: the
// directory 0700, the files at its top (database, keys, tokens) and the
// whole logs tree (instance output may carry secrets) owner-only. Installs
// made before berth kept them so get the same modes at their next start.
// The other subdirectories (images, containers' root file systems) keep
// their modes: the 0700 above them already keeps other users out.
func tightenDataDir(dir string) error {
	if err := os.Chmod(dir, 0o700); err != nil {
		return fmt.Errorf("make %s private (0700): %w", dir, err)
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return fmt.Errorf("read %s: %w", dir, err)
	}
	for _, e := range entries {
		if e.Type().IsRegular() {
			if err := ownerOnly(filepath.Join(dir, e.Name()), false); err != nil {
				return err
			}
		}
	}
	return filepath.WalkDir(filepath.Join(dir, "logs"), func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return fmt.Errorf("make logs private: %w", err)
		}
		if d.Type()&fs.ModeSymlink != 0 {
			return nil // never chmod through a link
		}
		return ownerOnly(path, d.IsDir())
	})
}

// ownerOnly drops the group and other permission bits of path (a directory
// becomes 0700).
func ownerOnly(path string, dir bool) error {
	fi, err := os.Lstat(path)
	if err != nil {
		return fmt.Errorf("make %s private: %w", path, err)
	}
	mode := fi.Mode().Perm() &^ 0o077
	if dir {
		mode = 0o700
	}
	if mode == fi.Mode().Perm() {
		return nil
	}
	if err := os.Chmod(path, mode); err != nil {
		return fmt.Errorf("make %s private (%o): %w", path, mode, err)
	}
	return nil
}

// Package testdaemon helps tests that start daemons (containerd,
// buildkitd) and their processes: t.TempDir() paths are too long for the
// daemons' unix sockets, and a failed test leaves processes and mounts
// behind that os.RemoveAll cannot get past.
package testdaemon

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/berth-platform/berth/internal/mounts"
)

// Dir is a fresh directory under /tmp whose name starts with prefix, short
// enough for unix sockets. Cleanup kills the processes that carry it in
// their command line, unmounts what is left below it and removes it.
func Dir(t testing.TB, prefix string) string {
	t.Helper()
	dir, err := os.MkdirTemp("/tmp", prefix)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		KillProcessesMentioning(t, dir)
		if _, err := mounts.UnmountUnder(dir); err != nil {
			t.Errorf("unmount under %s: %v", dir, err)
		}
		if err := os.RemoveAll(dir); err != nil {
			t.Errorf("remove %s: %v", dir, err)
		}
	})
	return dir
}

// KillProcessesMentioning kills the processes that carry a path below dir
// in their command line: daemons a failed test started there and their
// children (runc, shims), which would otherwise outlive the test.
func KillProcessesMentioning(t testing.TB, dir string) {
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == os.Getpid() {
			continue
		}
		cmdline, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err != nil || !bytes.Contains(cmdline, []byte(dir+"/")) {
			continue
		}
		t.Logf("killing leftover process %d: %s", pid, bytes.ReplaceAll(cmdline, []byte{0}, []byte{' '}))
		_ = syscall.Kill(pid, syscall.SIGKILL)
	}
}

// Alive says whether process pid runs. A zombie counts as dead: a process
// the test killed stays one until its parent (perhaps not the test)
// reaps it.
func Alive(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	// "pid (comm) state ...", where comm may hold spaces and parentheses.
	stat := string(b)
	i := strings.LastIndex(stat, ") ")
	return i >= 0 && !strings.HasPrefix(stat[i+2:], "Z")
}

package containerd

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// Root in a user-namespaced container is the team's mapped id on the
// host: what it writes in its volume belongs to that id, and a file the
// host's root owns (0644) stays read-only to it even through the volume.
func TestUserNamespaceRootIsNobodyOnHost(t *testing.T) {
	if why := userNSSupport(); why != "" {
		skipOutsideCI(t, why)
	}
	env := newEnv(t)
	ref := env.pullBusybox(t)
	exits, err := env.engine.Exits(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	m := teamIDMap(3)
	// The bundle must be reachable by the mapped root (see Daemon);
	// the volume's parent stays private: runc opens bind sources as host
	// root.
	if err := os.Chmod(env.dir, 0o711); err != nil {
		t.Fatal(err)
	}
	priv := filepath.Join(env.dir, "private")
	vol := filepath.Join(priv, "vol")
	if err := os.MkdirAll(vol, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(priv, 0o700); err != nil {
		t.Fatal(err)
	}
	// The volume is handed to the container's root when mounted; a host
	// file put in it afterwards keeps the host's root as owner.
	if err := chownVolume(vol, &m); err != nil {
		t.Fatal(err)
	}
	hostFile := filepath.Join(vol, "host-owned")
	if err := os.WriteFile(hostFile, []byte("host\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	const id = "userns"
	script := `cat /proc/self/uid_map; id -u; echo mine > /data/mine; ` +
		`if echo evil >> /data/host-owned; then echo WROTE-HOST-FILE; else echo denied; fi; echo END`
	_, err = env.engine.Run(context.Background(), InstanceSpec{ID: id, Image: ref, LogPath: env.logPath(id),
		UserNS: &m, Mounts: []Mount{{Source: vol, Target: "/data"}}, Cmd: []string{"sh", "-c", script}})
	if err != nil {
		t.Fatal(err)
	}
	ex := waitExit(t, exits, id, 60*time.Second)
	out := waitLog(t, env.logPath(id), "END", 10*time.Second)
	if ex.ExitCode != 0 {
		t.Fatalf("exited %d:\n%s", ex.ExitCode, out)
	}
	if !hasLine(string(out), "0 "+itoa(m.HostID)+" 65536") {
		t.Fatalf("uid_map is not 0 %d 65536:\n%s", m.HostID, out)
	}
	if !strings.Contains(string(out), "denied") || strings.Contains(string(out), "WROTE-HOST-FILE") {
		t.Fatalf("container root could write a host-owned file:\n%s", out)
	}
	if b, _ := os.ReadFile(hostFile); string(b) != "host\n" {
		t.Fatalf("host-owned file changed: %q", b)
	}
	fi, err := os.Stat(filepath.Join(vol, "mine"))
	if err != nil {
		t.Fatalf("container root could not write its own volume: %v\n%s", err, out)
	}
	if st := fi.Sys().(*syscall.Stat_t); st.Uid != m.HostID || st.Gid != m.HostID {
		t.Fatalf("file written by container root is owned by %d:%d on the host, want %d", st.Uid, st.Gid, m.HostID)
	}
}

// hasLine reports whether text has a line whose fields are want's.
func hasLine(text, want string) bool {
	for _, line := range strings.Split(text, "\n") {
		if strings.Join(strings.Fields(line), " ") == want {
			return true
		}
	}
	return false
}

func itoa(n uint32) string { return userNSLabel(&IDMap{HostID: n}) }

// exec into a user-namespaced container on a network works (the network
// namespace must belong to the container's user namespace for runc to
// join both) and runs in the same mapping.
func TestUserNamespaceExec(t *testing.T) {
	if why := userNSSupport(); why != "" {
		skipOutsideCI(t, why)
	}
	env := newEnv(t)
	ref := env.pullBusybox(t)
	if err := os.Chmod(env.dir, 0o711); err != nil {
		t.Fatal(err)
	}
	m := teamIDMap(5)
	const id = "userns-exec"
	r, err := env.engine.Run(context.Background(), InstanceSpec{ID: id, Image: ref, LogPath: env.logPath(id),
		UserNS: &m, Cmd: []string{"sleep", "300"}})
	if err != nil {
		t.Fatal(err)
	}
	if r.IP == nil {
		t.Fatal("no address")
	}
	out := &syncBuffer{}
	code, err := env.engine.Exec(context.Background(), id, execOpts(nil, out, "cat", "/proc/self/uid_map"))
	if err != nil || code != 0 {
		t.Fatalf("exec: %d %v\n%s", code, err, out.String())
	}
	if !hasLine(out.String(), "0 "+itoa(m.HostID)+" 65536") {
		t.Fatalf("exec'd process has uid_map\n%s", out.String())
	}
}

// skipOutsideCI skips a test of a wall this machine cannot put up; in CI
// (CI=true) that is a failure: a skipped wall is an unguarded one.
func skipOutsideCI(t *testing.T, why string) {
	t.Helper()
	if os.Getenv("CI") == "true" {
		t.Fatal(why)
	}
	t.Skip(why)
}

package buildkit

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

func TestDaemonStartFailureShowsLog(t *testing.T) {
	dir := shortDir(t)
	fake := filepath.Join(dir, "fake-buildkitd")
	script := "#!/bin/sh\necho 'buildkitd: boom-marker: cannot start' \"$*\" >&2\nexit 3\n"
	if err := os.WriteFile(fake, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	d := NewDaemon(DaemonConfig{Dir: filepath.Join(dir, "bk"), LogPath: filepath.Join(dir, "logs", "buildkitd.log"), Binary: fake, StartTimeout: 10 * time.Second, NetworkMode: NetworkHost})
	err := d.Start(context.Background())
	if err == nil {
		_ = d.Stop(time.Second)
		t.Fatal("start of a failing buildkitd succeeded")
	}
	t.Logf("error: %v", err)
	for _, want := range []string{"exited", "exit status 3", "boom-marker", "buildkitd.log", "--config"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q", want)
		}
	}

	long := NewDaemon(DaemonConfig{Dir: "/tmp/" + strings.Repeat("x", 100), LogPath: filepath.Join(dir, "l.log")})
	if err := long.Start(context.Background()); err == nil || !strings.Contains(err.Error(), "too long") {
		t.Fatalf("long socket path: %v", err)
	}
}

// TestDaemonRestartAndLeftover kills buildkitd (the supervisor starts a
// new one that builds), then leaves a buildkitd behind as a killed berth
// would and checks that the next Start replaces it.
func TestDaemonRestartAndLeftover(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()

	pid0 := e.daemon.Pid()
	if err := syscall.Kill(pid0, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	killed := time.Now()
	deadline := time.Now().Add(45 * time.Second)
	for e.daemon.Restarts() < 1 || e.daemon.Pid() == pid0 || e.daemon.Pid() == 0 || Ping(ctx, e.daemon.Address()) != nil {
		if time.Now().After(deadline) {
			t.Fatalf("buildkitd not restarted (restarts %d, pid %d)", e.daemon.Restarts(), e.daemon.Pid())
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Logf("buildkitd restarted %s after SIGKILL", time.Since(killed).Round(time.Millisecond))
	df := "FROM " + e.base + "\nRUN echo after-restart > /x\n"
	auth := map[string]Auth{e.reg.Host: {Username: testUser, Password: testPass}}
	if _, err := e.builder.Build(ctx, Request{ContextDir: t.TempDir(), DockerfileInline: df, Auth: auth}, nil); err != nil {
		t.Fatalf("build after restart: %v", err)
	}

	// A berth that was killed leaves its buildkitd running: simulate it
	// with a buildkitd started by hand on the same configuration.
	if err := e.daemon.Stop(10 * time.Second); err != nil {
		t.Fatal(err)
	}
	bin, _ := e.daemon.binary()
	orphan := exec.Command(bin, "--config", e.daemon.configPath())
	orphan.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := orphan.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { _ = orphan.Wait() }()
	if err := os.WriteFile(e.daemon.pidPath(), []byte(strconv.Itoa(orphan.Process.Pid)), 0o644); err != nil {
		t.Fatal(err)
	}
	for i := 0; Ping(ctx, e.daemon.Address()) != nil; i++ {
		if i > 300 {
			t.Fatal("hand-started buildkitd does not answer")
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err := e.daemon.Start(ctx); err != nil {
		t.Fatalf("start over a leftover buildkitd: %v", err)
	}
	if e.daemon.Pid() == orphan.Process.Pid {
		t.Fatal("the leftover was kept")
	}
	if err := syscall.Kill(orphan.Process.Pid, 0); err == nil {
		// Reaped by the goroutine above once it died; give it a moment.
		time.Sleep(500 * time.Millisecond)
		if b, err := os.ReadFile("/proc/" + strconv.Itoa(orphan.Process.Pid) + "/cmdline"); err == nil && strings.Contains(string(b), "buildkitd") {
			t.Error("the leftover buildkitd still runs")
		}
	}
}

package containerd

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

	"github.com/berth-platform/berth/internal/testdaemon"
)

func TestDaemonStartFailureShowsLog(t *testing.T) {
	dir := shortDir(t)
	fake := filepath.Join(dir, "fake-containerd")
	script := "#!/bin/sh\necho 'level=fatal msg=\"boom-marker: cannot start\" args='\"$*\" >&2\nexit 3\n"
	if err := os.WriteFile(fake, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	d := NewDaemon(DaemonConfig{Dir: filepath.Join(dir, "c"), LogFile: filepath.Join(dir, "logs", "containerd.log"), Binary: fake, StartTimeout: 10 * time.Second})
	err := d.Start(context.Background())
	if err == nil {
		d.Stop(time.Second)
		t.Fatal("start of a failing containerd succeeded")
	}
	t.Logf("error: %v", err)
	for _, want := range []string{"exited", "exit status 3", "boom-marker", "containerd.log"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q", want)
		}
	}
	if d.Pid() != 0 && testdaemon.Alive(d.Pid()) {
		t.Error("failed daemon left a process")
	}

	// Socket paths are checked before anything starts.
	long := NewDaemon(DaemonConfig{Dir: "/tmp/" + strings.Repeat("x", 100), LogFile: filepath.Join(dir, "l.log")})
	if err := long.Start(context.Background()); err == nil || !strings.Contains(err.Error(), "too long") {
		t.Fatalf("long socket path: %v", err)
	}
}

func TestConnectToNothing(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_, err := Connect(ctx, filepath.Join(t.TempDir(), "none.sock"))
	if err == nil || !strings.Contains(err.Error(), "does not answer") {
		t.Fatalf("Connect to a missing socket: %v", err)
	}
}

// TestDaemonRestartKeepsContainers kills containerd, stops it and starts a
// new daemon on the same directory (as a restarted berth would), and
// checks that instances keep running throughout, that their exits are
// still reported (also one that happened while containerd was down) and
// that a containerd left behind by a killed berth is replaced.
func TestDaemonRestartKeepsContainers(t *testing.T) {
	env := newEnv(t)
	ref := env.pullBusybox(t)
	ctx := context.Background()
	exits, err := env.engine.Exits(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	keeper := env.run(t, ref, "keeper", "sh", "-c", "echo up; exec sleep 300")
	waitLog(t, env.logPath("keeper"), "up", 10*time.Second)

	// 1. containerd crashes: the supervisor restarts it.
	pid0 := env.daemon.Pid()
	if err := syscall.Kill(pid0, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for env.daemon.Restarts() < 1 || env.daemon.Pid() == pid0 || env.daemon.Pid() == 0 || ping(ctx, env.daemon.Address()) != nil {
		if time.Now().After(deadline) {
			t.Fatalf("containerd not restarted (restarts %d, pid %d)", env.daemon.Restarts(), env.daemon.Pid())
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Logf("containerd %d killed, restarted as %d", pid0, env.daemon.Pid())
	if !testdaemon.Alive(int(keeper.PID)) {
		t.Fatal("container died with containerd")
	}
	info := waitRunning(t, env.engine, "keeper")
	if info.PID != keeper.PID {
		t.Fatalf("after restart: %+v", info)
	}

	// 2. containerd is stopped (berth shuts down); an instance exits while
	// it is down; a new daemon (the next berth) starts on the directory.
	env.run(t, ref, "quitter", "sh", "-c", "sleep 2; exit 5")
	if err := env.daemon.Stop(10 * time.Second); err != nil {
		t.Fatal(err)
	}
	if !testdaemon.Alive(int(keeper.PID)) {
		t.Fatal("container died when containerd stopped")
	}
	time.Sleep(3 * time.Second) // quitter exits now, unobserved
	d2 := startDaemon(t, env.dir)
	if !testdaemon.Alive(int(keeper.PID)) {
		t.Fatal("container died across the daemon restart")
	}
	ex := waitExit(t, exits, "quitter", 60*time.Second)
	if ex.ExitCode != 5 {
		t.Fatalf("quitter exit %+v", ex)
	}
	info = waitRunning(t, env.engine, "keeper")
	if info.PID != keeper.PID {
		t.Fatalf("keeper after second start: %+v", info)
	}

	// 3. berth was killed and left its containerd running: the next start
	// replaces it instead of running two on one root.
	if err := d2.Stop(10 * time.Second); err != nil {
		t.Fatal(err)
	}
	orphan := exec.Command("/usr/bin/containerd", "--config", filepath.Join(env.dir, "c", "config.toml"))
	orphan.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := orphan.Start(); err != nil {
		t.Fatal(err)
	}
	orphanDone := make(chan error, 1)
	go func() { orphanDone <- orphan.Wait() }()
	_ = os.WriteFile(filepath.Join(env.dir, "c", "containerd.pid"), []byte(strconv.Itoa(orphan.Process.Pid)), 0o644)
	for i := 0; ping(ctx, filepath.Join(env.dir, "c", "containerd.sock")) != nil; i++ {
		if i > 100 {
			t.Fatal("orphan containerd did not come up")
		}
		time.Sleep(100 * time.Millisecond)
	}
	d3 := startDaemon(t, env.dir)
	select {
	case <-orphanDone:
	case <-time.After(20 * time.Second):
		t.Fatal("the leftover containerd was not stopped")
	}
	if d3.Pid() == orphan.Process.Pid {
		t.Fatal("daemon adopted the wrong process")
	}
	info = waitRunning(t, env.engine, "keeper")
	if info.PID != keeper.PID {
		t.Fatalf("keeper after leftover replacement: %+v", info)
	}
	// Stop the instances while d3 runs; cleanup stops d3.
	if err := env.engine.Stop(ctx, "keeper", 0); err != nil {
		t.Fatal(err)
	}
	if testdaemon.Alive(int(keeper.PID)) {
		t.Fatal("keeper survived Stop")
	}
	env.stopAll(t)

	// A stopped Daemon can be started again.
	if err := d3.Stop(10 * time.Second); err != nil {
		t.Fatal(err)
	}
	if err := d3.Start(ctx); err != nil {
		t.Fatalf("restart of a stopped daemon: %v", err)
	}
}

// waitRunning polls until containerd (perhaps just restarted) reports id
// running.
func waitRunning(t *testing.T, e *Engine, id string) Info {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		info, err := e.Inspect(ctx, id)
		cancel()
		if err == nil && info.Status == StatusRunning {
			return info
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s not running: %+v %v", id, info, err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

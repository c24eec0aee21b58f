package supervisor

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/berth-platform/berth/internal/testdaemon"
)

func TestStartFailureShowsLog(t *testing.T) {
	dir := scratch(t)
	cfg := fakeConfig(dir, "fail")
	// What an earlier start wrote is not this start's reason.
	if err := os.WriteFile(cfg.LogPath, []byte("old-run-marker\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	var p Process
	err := p.Start(context.Background(), cfg)
	if err == nil {
		_ = p.Stop(time.Second)
		t.Fatal("start of a failing daemon succeeded")
	}
	t.Logf("error: %v", err)
	for _, want := range []string{"fake daemon: ", "fake exited before it answered on " + cfg.Address, "fake exited: exit status 3", "boom-marker", "last lines of " + cfg.LogPath, "--config"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q", want)
		}
	}
	if strings.Contains(err.Error(), "old-run-marker") {
		t.Error("error shows the log of an earlier start")
	}
	if p.Pid() != 0 && testdaemon.Alive(p.Pid()) {
		t.Error("failed start left a process")
	}
	if _, err := os.Stat(cfg.PidPath); err == nil {
		// Harmless (the next start finds no such process), but note it.
		t.Log("pid file kept after a failed start")
	}

	cfg.OwnArg = ""
	if err := p.Start(context.Background(), cfg); err == nil || !strings.Contains(err.Error(), "required") {
		t.Fatalf("start without OwnArg: %v", err)
	}
}

func TestStartTimeoutKillsChild(t *testing.T) {
	dir := scratch(t)
	cfg := fakeConfig(dir, "serve")
	cfg.StartTimeout = 500 * time.Millisecond
	cfg.Ready = func(context.Context) error { return errors.New("not-yet-marker") }
	var p Process
	err := p.Start(context.Background(), cfg)
	if err == nil {
		_ = p.Stop(time.Second)
		t.Fatal("start of a daemon that never gets ready succeeded")
	}
	if want := "fake did not answer on " + cfg.Address + " within 500ms: not-yet-marker"; !strings.Contains(err.Error(), want) {
		t.Fatalf("error %q lacks %q", err, want)
	}
	if testdaemon.Alive(p.Pid()) {
		t.Fatal("a daemon that did not get ready still runs")
	}
	// A failed Start leaves the Process ready for another.
	cfg.Ready = func(context.Context) error { return nil }
	if err := p.Start(context.Background(), cfg); err != nil {
		t.Fatal(err)
	}
	if err := p.Stop(time.Second); err != nil {
		t.Fatal(err)
	}
}

// TestRestart kills the child and checks that a new one runs, that what
// the dead one started is ended only with KillGroup, and that Cleanup ran.
func TestRestart(t *testing.T) {
	for _, killGroup := range []bool{true, false} {
		t.Run("KillGroup="+strconv.FormatBool(killGroup), func(t *testing.T) {
			dir := scratch(t)
			cfg := fakeConfig(dir, "group")
			cfg.KillGroup = killGroup
			var cleanups, readies atomic.Int32
			cfg.Cleanup = func() { cleanups.Add(1) }
			cfg.Ready = func(context.Context) error { readies.Add(1); return nil }
			var p Process
			if err := p.Start(context.Background(), cfg); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = p.Stop(time.Second) })
			if n := cleanups.Load(); n != 1 {
				t.Errorf("Cleanup ran %d times before the first start, want 1", n)
			}
			descendant := readPid(t, dir+"/descendant.pid")
			pid0 := p.Pid()
			if b, _ := os.ReadFile(cfg.PidPath); strings.TrimSpace(string(b)) != strconv.Itoa(pid0) {
				t.Fatalf("pid file has %q, want %d", b, pid0)
			}

			if err := syscall.Kill(pid0, syscall.SIGKILL); err != nil {
				t.Fatal(err)
			}
			waitFor(t, "restart", 10*time.Second, func() bool { return p.Restarts() == 1 && readies.Load() == 2 })
			if p.Pid() == pid0 {
				t.Fatal("restart kept the dead pid")
			}
			if !testdaemon.Alive(p.Pid()) {
				t.Fatal("restarted daemon does not run")
			}
			if killGroup {
				waitFor(t, "descendant of the dead daemon ended", 5*time.Second, func() bool { return !testdaemon.Alive(descendant) })
			} else if !testdaemon.Alive(descendant) {
				t.Fatal("descendant of the dead daemon was ended without KillGroup")
			}
			if n := cleanups.Load(); n != 2 {
				t.Errorf("Cleanup ran %d times after a restart, want 2", n)
			}

			pid1 := p.Pid()
			if err := p.Stop(5 * time.Second); err != nil {
				t.Fatal(err)
			}
			if testdaemon.Alive(pid1) {
				t.Fatal("daemon runs after Stop")
			}
			if _, err := os.Stat(cfg.PidPath); !os.IsNotExist(err) {
				t.Fatalf("pid file after Stop: %v", err)
			}
			if n := cleanups.Load(); n != 3 {
				t.Errorf("Cleanup ran %d times after Stop, want 3", n)
			}
			if p.Restarts() != 1 || p.Pid() != 0 {
				t.Fatalf("after Stop: restarts %d, pid %d", p.Restarts(), p.Pid())
			}
		})
	}
}

// TestLeftover leaves a daemon behind as a killed berth would, and a pid
// file naming another process, and checks that Start ends only the first.
func TestLeftover(t *testing.T) {
	dir := scratch(t)
	cfg := fakeConfig(dir, "group")
	cfg.KillGroup = true

	orphan := exec.Command(cfg.Binary, cfg.Args...)
	orphan.Env = cfg.Env
	orphan.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := orphan.Start(); err != nil {
		t.Fatal(err)
	}
	orphanDone := make(chan struct{})
	go func() { _ = orphan.Wait(); close(orphanDone) }()
	descendant := readPid(t, dir+"/descendant.pid")
	if err := os.WriteFile(cfg.PidPath, []byte(strconv.Itoa(orphan.Process.Pid)), 0o644); err != nil {
		t.Fatal(err)
	}
	var p Process
	if err := p.Start(context.Background(), cfg); err != nil {
		t.Fatal(err)
	}
	select {
	case <-orphanDone:
	case <-time.After(20 * time.Second):
		t.Fatal("the leftover was not stopped")
	}
	waitFor(t, "leftover's descendant ended", 5*time.Second, func() bool { return !testdaemon.Alive(descendant) })
	if p.Pid() == orphan.Process.Pid || !testdaemon.Alive(p.Pid()) {
		t.Fatalf("daemon %d after the leftover %d", p.Pid(), orphan.Process.Pid)
	}
	if err := p.Stop(5 * time.Second); err != nil {
		t.Fatal(err)
	}

	// A pid file naming a process that is not ours: the id was reused.
	other := exec.Command("sleep", "30")
	if err := other.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = other.Process.Kill(); _ = other.Wait() }()
	if err := os.WriteFile(cfg.PidPath, []byte(strconv.Itoa(other.Process.Pid)), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := p.Start(context.Background(), cfg); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = p.Stop(time.Second) }()
	if !testdaemon.Alive(other.Process.Pid) {
		t.Fatal("a process named by a stale pid file was ended")
	}
	if err := p.Start(context.Background(), cfg); err == nil || !strings.Contains(err.Error(), "already started") {
		t.Fatalf("second Start: %v", err)
	}
}

func TestStopKillsAfterGrace(t *testing.T) {
	dir := scratch(t)
	cfg := fakeConfig(dir, "stubborn")
	var p Process
	if err := p.Start(context.Background(), cfg); err != nil {
		t.Fatal(err)
	}
	pid := p.Pid()
	start := time.Now()
	if err := p.Stop(300 * time.Millisecond); err != nil {
		t.Fatal(err)
	}
	if took := time.Since(start); took < 300*time.Millisecond {
		t.Fatalf("Stop took %s: the daemon ignores SIGTERM, so it must have waited out the grace", took)
	}
	if testdaemon.Alive(pid) {
		t.Fatal("a daemon that ignores SIGTERM survived Stop")
	}
	if err := p.Stop(time.Second); err != nil {
		t.Fatalf("second Stop: %v", err)
	}
}

func TestWithSystemPath(t *testing.T) {
	got := withSystemPath([]string{"A=1", "PATH=/opt/bin"})
	if got[1] != "PATH=/opt/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin" {
		t.Fatalf("PATH extended to %q", got[1])
	}
	if got := withSystemPath([]string{"A=1"}); got[len(got)-1] != "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin" {
		t.Fatalf("no PATH: %q", got)
	}
}

// readPid waits for the fake daemon to write a pid file and reads it.
func readPid(t *testing.T, path string) int {
	t.Helper()
	var pid int
	waitFor(t, "pid file "+path, 10*time.Second, func() bool {
		b, err := os.ReadFile(path)
		pid, _ = strconv.Atoi(strings.TrimSpace(string(b)))
		return err == nil && pid > 0
	})
	return pid
}

package supervisor

import (
	"bytes"
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// endLeftover ends a child that a previous berth started with this
// configuration and did not stop (berth was killed): a second daemon on
// the same root fails on its lock or fights over its database. What the
// leftover left goes with it, and Cleanup runs even when there was none.
func (p *Process) endLeftover() {
	c := p.cfg
	pid := p.leftoverPid()
	defer p.endRemains(pid)
	if pid == 0 {
		return
	}
	c.Logger.Warn("stopping "+c.Name+" left over from a previous run", "pid", pid)
	_ = syscall.Kill(pid, syscall.SIGTERM)
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		if syscall.Kill(pid, 0) != nil {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if syscall.Kill(pid, 0) == nil {
		_ = syscall.Kill(pid, syscall.SIGKILL)
		time.Sleep(200 * time.Millisecond)
	}
	_ = os.Remove(c.PidPath)
}

// leftoverPid is the process named by the pid file if it still runs with
// this configuration (its command line has OwnArg), else 0. A pid file
// naming another process is stale and removed.
func (p *Process) leftoverPid() int {
	c := p.cfg
	b, err := os.ReadFile(c.PidPath)
	if err != nil {
		return 0
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || pid <= 0 {
		return 0
	}
	cmdline, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	if err != nil || !bytes.Contains(cmdline, []byte(c.OwnArg)) {
		_ = os.Remove(c.PidPath)
		return 0
	}
	return pid
}

// endRemains ends what a dead child (pgid; 0 for none) left behind: with
// KillGroup what is left of its process group, whose id is still the
// child's (Setpgid), then whatever Cleanup removes.
func (p *Process) endRemains(pgid int) {
	if p.cfg.KillGroup && pgid > 0 {
		_ = syscall.Kill(-pgid, syscall.SIGKILL)
	}
	if p.cfg.Cleanup != nil {
		p.cfg.Cleanup()
	}
}

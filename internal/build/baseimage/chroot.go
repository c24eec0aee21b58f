package baseimage

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
)

// chrootEnv is the environment of commands run in a root file system:
// nothing of the caller's leaks in (proxies, locales, a TERM that makes
// debconf ask questions).
var chrootEnv = []string{
	"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
	"DEBIAN_FRONTEND=noninteractive",
	"LANG=C.UTF-8",
	"HOME=/root",
}

// runIn runs args inside the root file system rootfs with /proc and /dev
// mounted, writing the output to log and returning its last lines on
// failure.
//
// The command runs in a mount namespace and a PID namespace of its own
// (the way debootstrap's own chroot helpers ought to): /proc and /dev are
// mounted in that namespace only, so they disappear when the command
// ends, also when berth is killed halfway, and never show up in (or
// propagate to) the host's mount table; a daemon that a package's
// maintainer script starts dies with the namespace instead of outliving
// the install.
func runIn(ctx context.Context, rootfs string, log io.Writer, args ...string) error {
	script := `set -e
mount -t proc proc "$0/proc"
mount --bind /dev "$0/dev"
chroot "$0" "$@"`
	cmd := exec.CommandContext(ctx, "/bin/sh", append([]string{"-c", script, rootfs}, args...)...)
	return runLogged(cmd, log, strings.Join(args, " "), true)
}

// runHost runs a host command (debootstrap) in a mount namespace of its
// own, so that the mounts it makes inside its target vanish with it.
func runHost(ctx context.Context, log io.Writer, name string, args ...string) error {
	cmd := exec.CommandContext(ctx, name, args...)
	return runLogged(cmd, log, name+" "+strings.Join(args, " "), false)
}

func runLogged(cmd *exec.Cmd, log io.Writer, what string, chrooted bool) error {
	var tail tailBuffer
	w := io.MultiWriter(log, &tail)
	cmd.Stdout, cmd.Stderr = w, w
	cmd.Stdin = nil
	if chrooted {
		cmd.Env = chrootEnv
	} else {
		cmd.Env = append(os.Environ(), "DEBIAN_FRONTEND=noninteractive")
	}
	cmd.SysProcAttr = &syscall.SysProcAttr{Unshareflags: syscall.CLONE_NEWNS}
	if chrooted {
		cmd.SysProcAttr.Cloneflags = syscall.CLONE_NEWPID
	}
	// Own process group, so that a cancellation kills the whole command.
	cmd.SysProcAttr.Setpgid = true
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	fmt.Fprintf(log, "+ %s\n", what)
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("%s: %w; last output:\n%s", what, err, tail.String())
	}
	return nil
}

// output runs args in rootfs and returns what it printed.
func output(ctx context.Context, rootfs string, args ...string) (string, error) {
	var b bytes.Buffer
	err := runIn(ctx, rootfs, &b, args...)
	out := b.String()
	// Drop the "+ command" line runLogged writes first.
	if _, rest, ok := strings.Cut(out, "\n"); ok {
		out = rest
	}
	return strings.TrimSpace(out), err
}

// tailBuffer keeps the last 20 lines written to it.
type tailBuffer struct {
	lines   []string
	partial string
}

func (t *tailBuffer) Write(p []byte) (int, error) {
	parts := strings.Split(t.partial+string(p), "\n")
	t.partial = parts[len(parts)-1]
	t.lines = append(t.lines, parts[:len(parts)-1]...)
	if len(t.lines) > 20 {
		t.lines = t.lines[len(t.lines)-20:]
	}
	return len(p), nil
}

func (t *tailBuffer) String() string {
	s := strings.Join(t.lines, "\n")
	if t.partial != "" {
		s += "\n" + t.partial
	}
	return s
}

// writeFile writes a file inside rootfs.
func writeFile(rootfs, path, content string, mode os.FileMode) error {
	p := filepath.Join(rootfs, path)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		return err
	}
	return os.WriteFile(p, []byte(content), mode)
}

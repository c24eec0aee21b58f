// Package buildkit runs builds on BuildKit: a supervised buildkitd that
// berth starts under its data directory, and a Builder that drives any
// buildkitd (that one or one given by address) with the Dockerfile
// frontend and turns its progress into build log lines.
package buildkit

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/moby/buildkit/client"
)

// Berth runs its own buildkitd for the same reasons it runs its own
// containerd: the build cache lives in berth's data directory (backups,
// removal and disk accounting see it), the socket is private, and the
// configuration (which registries are plain HTTP, how much cache to keep)
// follows berth's, not whatever /etc/buildkit says. It is a supervised
// child, restarted with back-off, because a crash of buildkitd must fail
// the builds that were running, not berth.
//
// Unlike containerd, buildkitd has no shims: the RUN steps it executes are
// its own descendants and the overlay mounts of their root file systems
// are its own. A buildkitd that died leaves both behind, so before every
// start and after every stop berth ends what is left of the process group
// and unmounts what is left under Dir.

// DaemonConfig says where a supervised buildkitd keeps its files and how
// it is configured.
type DaemonConfig struct {
	// Dir holds root/ (cache, snapshots, executor state), buildkitd.sock,
	// buildkitd.toml and buildkitd.pid (e.g. DATA/buildkit). Keep it
	// short: the socket path must stay under 108 bytes.
	Dir string
	// LogPath receives buildkitd's output (e.g. DATA/logs/buildkitd.log);
	// opened with O_APPEND so it can be rotated by truncation.
	LogPath string
	// Binary is the buildkitd executable; default: "buildkitd" on PATH,
	// else /usr/local/bin/buildkitd.
	Binary string
	// ExtraArgs are appended to buildkitd's command line.
	ExtraArgs []string
	// Registries configures how buildkitd reaches registries: berth's hub
	// is plain HTTP on loopback and must be listed with PlainHTTP.
	Registries []RegistryConfig
	// GCKeepStorage caps the build cache ("20GB", "10%", or bytes);
	// default 20GB. Past it buildkitd's garbage collector removes the
	// least recently used cache.
	GCKeepStorage string
	// NetworkMode is the network of RUN steps: "host" (default: builds
	// reach the Go module proxy, npm and apt the way the host does) or
	// "bridge" (own namespace on buildkitd's CNI bridge, needs the CNI
	// plugins and NAT).
	NetworkMode string
	// Debug turns on buildkitd's debug log.
	Debug bool
	// StartTimeout bounds each start until the socket answers; default 30s.
	StartTimeout time.Duration
	// Logger receives restart notices; default slog.Default().
	Logger *slog.Logger
}

// RegistryConfig is buildkitd's view of one registry host.
type RegistryConfig struct {
	Host      string   // e.g. 127.0.0.1:5000 or docker.io
	Mirrors   []string // hosts tried before Host, e.g. mirror.example.com
	PlainHTTP bool     // speak HTTP, not HTTPS
	Insecure  bool     // accept a certificate that does not verify
}

// Daemon is a buildkitd child process under supervision.
type Daemon struct {
	cfg DaemonConfig
	log *slog.Logger

	mu       sync.Mutex
	proc     *os.Process
	exited   chan struct{} // closed when proc has been reaped
	stopping bool
	stopc    chan struct{} // closed by Stop to end the supervisor
	done     chan struct{} // closed when the supervisor has ended
	restarts int
}

// NewDaemon prepares a daemon; Start runs it.
func NewDaemon(cfg DaemonConfig) *Daemon {
	if cfg.StartTimeout == 0 {
		cfg.StartTimeout = 30 * time.Second
	}
	if cfg.GCKeepStorage == "" {
		cfg.GCKeepStorage = "20GB"
	}
	if cfg.NetworkMode == "" {
		cfg.NetworkMode = "host"
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	return &Daemon{cfg: cfg, log: cfg.Logger.With("component", "buildkitd")}
}

// Address is the daemon's gRPC socket as the BuildKit client wants it.
func (d *Daemon) Address() string { return "unix://" + d.socketPath() }

func (d *Daemon) socketPath() string { return filepath.Join(d.cfg.Dir, "buildkitd.sock") }
func (d *Daemon) configPath() string { return filepath.Join(d.cfg.Dir, "buildkitd.toml") }
func (d *Daemon) pidPath() string    { return filepath.Join(d.cfg.Dir, "buildkitd.pid") }
func (d *Daemon) rootDir() string    { return filepath.Join(d.cfg.Dir, "root") }

// Pid is the current buildkitd process id, 0 when none runs.
func (d *Daemon) Pid() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.proc == nil {
		return 0
	}
	return d.proc.Pid
}

// Restarts counts how often the supervisor restarted a dead buildkitd.
func (d *Daemon) Restarts() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.restarts
}

// Start writes buildkitd.toml, ends a buildkitd left over from a previous
// berth on the same directory, starts buildkitd and waits until it lists
// its workers. From then on a supervisor restarts it whenever it dies,
// until Stop.
func (d *Daemon) Start(ctx context.Context) error {
	if d.cfg.Dir == "" || d.cfg.LogPath == "" {
		return errors.New("buildkitd daemon: Dir and LogPath are required")
	}
	if len(d.socketPath()) >= 108 {
		return fmt.Errorf("buildkitd daemon: socket path %s is too long for a unix socket (max 107 bytes); use a shorter data directory", d.socketPath())
	}
	bin, err := d.binary()
	if err != nil {
		return err
	}
	d.cfg.Binary = bin
	for _, dir := range []string{d.cfg.Dir, d.rootDir(), filepath.Dir(d.cfg.LogPath)} {
		if err := os.MkdirAll(dir, 0o711); err != nil {
			return fmt.Errorf("buildkitd daemon: %w", err)
		}
	}
	conf, err := renderConfig(d.cfg, d.rootDir(), d.Address())
	if err != nil {
		return fmt.Errorf("buildkitd daemon: %w", err)
	}
	if err := os.WriteFile(d.configPath(), []byte(conf), 0o600); err != nil {
		return fmt.Errorf("buildkitd daemon: write config: %w", err)
	}
	d.endLeftover()

	d.mu.Lock()
	if d.stopc != nil {
		d.mu.Unlock()
		return errors.New("buildkitd daemon: already started")
	}
	d.stopc = make(chan struct{})
	d.done = make(chan struct{})
	d.mu.Unlock()

	if err := d.spawnAndWait(ctx); err != nil {
		close(d.done)
		d.mu.Lock()
		d.stopc = nil
		d.mu.Unlock()
		return err
	}
	go d.supervise()
	return nil
}

func (d *Daemon) binary() (string, error) {
	if d.cfg.Binary != "" {
		return d.cfg.Binary, nil
	}
	if p, err := exec.LookPath("buildkitd"); err == nil {
		return p, nil
	}
	if _, err := os.Stat("/usr/local/bin/buildkitd"); err == nil {
		return "/usr/local/bin/buildkitd", nil
	}
	return "", errors.New("buildkitd daemon: buildkitd not found on PATH nor at /usr/local/bin/buildkitd (go install github.com/moby/buildkit/cmd/buildkitd@v0.18.2 && cp ~/go/bin/buildkitd /usr/local/bin/; it also needs runc)")
}

// endLeftover stops a buildkitd that a previous berth process started on
// this directory and did not stop (berth was killed): a second buildkitd
// on the same root fails on its lock file. What that daemon left (RUN
// processes, overlay mounts) goes with it.
func (d *Daemon) endLeftover() {
	defer d.cleanRemains(0)
	b, err := os.ReadFile(d.pidPath())
	if err != nil {
		return
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || pid <= 0 {
		return
	}
	cmdline, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	if err != nil || !bytes.Contains(cmdline, []byte(d.configPath())) {
		_ = os.Remove(d.pidPath())
		return
	}
	d.log.Warn("stopping buildkitd left over from a previous run", "pid", pid)
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
	// The process group is still the old daemon's id (Setpgid).
	_ = syscall.Kill(-pid, syscall.SIGKILL)
	_ = os.Remove(d.pidPath())
}

// cleanRemains kills what is left of a dead buildkitd's process group
// (RUN steps it had started) and unmounts what it left under Dir, so that
// the next buildkitd starts on a clean root.
func (d *Daemon) cleanRemains(pgid int) {
	if pgid > 0 {
		_ = syscall.Kill(-pgid, syscall.SIGKILL)
	}
	if n, err := UnmountUnder(d.cfg.Dir); err != nil {
		d.log.Warn("could not unmount what buildkitd left", "dir", d.cfg.Dir, "err", err)
	} else if n > 0 {
		d.log.Info("unmounted what buildkitd left", "dir", d.cfg.Dir, "mounts", n)
	}
}

// spawnAndWait starts one buildkitd process and waits until it answers.
func (d *Daemon) spawnAndWait(ctx context.Context) error {
	logf, err := os.OpenFile(d.cfg.LogPath, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o640)
	if err != nil {
		return fmt.Errorf("buildkitd daemon: open log: %w", err)
	}
	defer logf.Close() // the child has its own descriptor
	logStart, _ := logf.Seek(0, io.SeekEnd)

	args := append([]string{"--config", d.configPath()}, d.cfg.ExtraArgs...)
	cmd := exec.Command(d.cfg.Binary, args...)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.Env = withPath(os.Environ())
	// Its own process group: a Ctrl-C on berth's terminal must not reach
	// buildkitd (berth stops it in order), and the group lets berth end
	// the RUN steps of a buildkitd that died.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("buildkitd daemon: start %s: %w", d.cfg.Binary, err)
	}
	exited := make(chan struct{})
	var waitErr error
	go func() {
		waitErr = cmd.Wait()
		close(exited)
	}()
	d.mu.Lock()
	d.proc, d.exited = cmd.Process, exited
	d.mu.Unlock()
	_ = os.WriteFile(d.pidPath(), []byte(strconv.Itoa(cmd.Process.Pid)+"\n"), 0o644)

	if err := d.waitReady(ctx, exited); err != nil {
		select {
		case <-exited:
			err = fmt.Errorf("%w (buildkitd exited: %v)", err, waitErr)
		default:
			_ = cmd.Process.Kill()
			<-exited
		}
		d.cleanRemains(cmd.Process.Pid)
		return fmt.Errorf("buildkitd daemon: %w; last lines of %s:\n%s", err, d.cfg.LogPath, lastLines(d.cfg.LogPath, logStart, 20))
	}
	d.log.Info("buildkitd running", "pid", cmd.Process.Pid, "address", d.Address())
	return nil
}

// waitReady polls ListWorkers until buildkitd answers with a worker, the
// process dies or StartTimeout passes. The socket answers before the
// workers are ready, and a build sent then fails.
func (d *Daemon) waitReady(ctx context.Context, exited <-chan struct{}) error {
	ctx, cancel := context.WithTimeout(ctx, d.cfg.StartTimeout)
	defer cancel()
	var last error = errors.New("no answer yet")
	for {
		select {
		case <-exited:
			return fmt.Errorf("buildkitd exited before it answered on %s", d.Address())
		case <-ctx.Done():
			return fmt.Errorf("buildkitd did not answer on %s within %s: %w", d.Address(), d.cfg.StartTimeout, last)
		case <-time.After(100 * time.Millisecond):
		}
		if _, err := os.Stat(d.socketPath()); err != nil {
			last = err
			continue
		}
		if err := Ping(ctx, d.Address()); err != nil {
			last = err
			continue
		}
		return nil
	}
}

// Ping checks that the buildkitd at address answers and has a worker.
func Ping(ctx context.Context, address string) error {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	c, err := client.New(ctx, address)
	if err != nil {
		return err
	}
	defer c.Close()
	ws, err := c.ListWorkers(ctx)
	if err != nil {
		return err
	}
	if len(ws) == 0 {
		return errors.New("buildkitd has no worker")
	}
	return nil
}

// supervise restarts buildkitd whenever it dies, with exponential
// back-off (1s doubling to 30s, back to 1s after a minute of good health),
// until Stop.
func (d *Daemon) supervise() {
	defer close(d.done)
	backoff := time.Second
	for {
		d.mu.Lock()
		exited, proc := d.exited, d.proc
		d.mu.Unlock()
		started := time.Now()
		select {
		case <-d.stopc:
			return
		case <-exited:
		}
		if time.Since(started) > time.Minute {
			backoff = time.Second
		}
		d.cleanRemains(proc.Pid)
		for {
			d.mu.Lock()
			d.restarts++
			n := d.restarts
			d.mu.Unlock()
			d.log.Warn("buildkitd exited unexpectedly; restarting", "pid", proc.Pid, "restart", n, "backoff", backoff, "log", d.cfg.LogPath)
			select {
			case <-d.stopc:
				return
			case <-time.After(backoff):
			}
			backoff = min(backoff*2, 30*time.Second)
			ctx, cancel := context.WithCancel(context.Background())
			go func() {
				select {
				case <-d.stopc:
					cancel()
				case <-ctx.Done():
				}
			}()
			err := d.spawnAndWait(ctx)
			cancel()
			if err == nil {
				d.log.Info("buildkitd restarted", "restart", n)
				break
			}
			d.log.Error("buildkitd restart failed", "restart", n, "err", err)
			select {
			case <-d.stopc:
				return
			default:
			}
		}
	}
}

// Stop ends buildkitd: SIGTERM (it cancels running builds and unmounts),
// up to grace (default 10s) for it to exit, then SIGKILL; then whatever it
// left behind is killed and unmounted. Builds in flight fail.
func (d *Daemon) Stop(grace time.Duration) error {
	if grace <= 0 {
		grace = 10 * time.Second
	}
	d.mu.Lock()
	if d.stopc == nil || d.stopping {
		d.mu.Unlock()
		return nil
	}
	d.stopping = true
	close(d.stopc)
	d.mu.Unlock()
	<-d.done

	d.mu.Lock()
	proc, exited := d.proc, d.exited
	if proc == nil {
		d.stopc, d.stopping = nil, false
		d.mu.Unlock()
		return nil
	}
	d.mu.Unlock()
	select {
	case <-exited:
	default:
		_ = proc.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(grace):
			d.log.Warn("buildkitd did not stop in time; killing it", "pid", proc.Pid, "grace", grace)
			_ = proc.Kill()
			<-exited
		}
	}
	d.cleanRemains(proc.Pid)
	_ = os.Remove(d.pidPath())
	d.mu.Lock()
	// Ready for another Start.
	d.proc, d.stopc, d.stopping = nil, nil, false
	d.mu.Unlock()
	d.log.Info("buildkitd stopped", "pid", proc.Pid)
	return nil
}

// withPath makes sure runc is found even when berth was started with a
// minimal PATH.
func withPath(env []string) []string {
	const sys = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
	for i, kv := range env {
		if strings.HasPrefix(kv, "PATH=") {
			env[i] = kv + ":" + sys
			return env
		}
	}
	return append(env, "PATH="+sys)
}

// lastLines returns up to n last lines written to path after offset.
func lastLines(path string, offset int64, n int) string {
	f, err := os.Open(path)
	if err != nil {
		return "(no log: " + err.Error() + ")"
	}
	defer f.Close()
	const max = 64 << 10
	st, err := f.Stat()
	if err != nil {
		return ""
	}
	if st.Size()-offset > max {
		offset = st.Size() - max
	}
	b, _ := io.ReadAll(io.NewSectionReader(f, offset, st.Size()-offset))
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

package containerd

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

	"github.com/containerd/containerd/v2/client"
)

// Berth runs its own containerd rather than the system one so that it owns
// everything it depends on: the content store and snapshots live in berth's
// data directory (backups, removal and disk accounting see them), the
// socket is private (no clash with Docker's or a Kubernetes node's
// containerd), and no CRI plugin is loaded (berth is the kubelet). The
// daemon is a child process, supervised and restarted with back-off,
// because a crash of containerd must not take berth down with it.
//
// containerd can die or be stopped without harming instances: each task is
// held by its own shim process, which keeps running and is re-attached by
// the next containerd on the same root and state directories. Stop
// therefore only ends containerd itself, never its process group.

// DaemonConfig says where a supervised containerd keeps its files.
type DaemonConfig struct {
	// Dir holds root/, state/, containerd.sock, config.toml and
	// containerd.pid (e.g. DATA/containerd). Keep it short: the socket
	// path must stay under 108 bytes.
	Dir string
	// LogFile receives containerd's output (e.g. DATA/logs/containerd.log);
	// opened with O_APPEND, so RotateLog can rotate it.
	LogFile string
	// Binary is the containerd executable; default: "containerd" on PATH,
	// else /usr/bin/containerd.
	Binary string
	// LogLevel is containerd's log level; default "info".
	LogLevel string
	// StartTimeout bounds each start until the socket answers; default 30s.
	StartTimeout time.Duration
	// Logger receives restart notices; default slog.Default().
	Logger *slog.Logger
}

// Daemon is a containerd child process under supervision.
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
	if cfg.LogLevel == "" {
		cfg.LogLevel = "info"
	}
	if cfg.StartTimeout == 0 {
		cfg.StartTimeout = 30 * time.Second
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	return &Daemon{cfg: cfg, log: cfg.Logger.With("component", "containerd")}
}

// Address is the daemon's gRPC socket.
func (d *Daemon) Address() string { return filepath.Join(d.cfg.Dir, "containerd.sock") }

func (d *Daemon) configPath() string { return filepath.Join(d.cfg.Dir, "config.toml") }
func (d *Daemon) pidPath() string    { return filepath.Join(d.cfg.Dir, "containerd.pid") }

// Pid is the current containerd process id, 0 when none runs.
func (d *Daemon) Pid() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.proc == nil {
		return 0
	}
	return d.proc.Pid
}

// Restarts counts how often the supervisor restarted a dead containerd.
func (d *Daemon) Restarts() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.restarts
}

// Start writes the configuration, ends a containerd left over from a
// previous berth on the same directory, starts containerd and waits until
// it answers. From then on a supervisor restarts it whenever it dies,
// until Stop.
func (d *Daemon) Start(ctx context.Context) error {
	if d.cfg.Dir == "" || d.cfg.LogFile == "" {
		return errors.New("containerd daemon: Dir and LogFile are required")
	}
	if len(d.Address())+len(".ttrpc") >= 108 {
		return fmt.Errorf("containerd daemon: socket path %s is too long for a unix socket (max 107 bytes); use a shorter data directory", d.Address())
	}
	bin, err := d.binary()
	if err != nil {
		return err
	}
	d.cfg.Binary = bin
	for _, dir := range []string{d.cfg.Dir, filepath.Join(d.cfg.Dir, "root"), filepath.Join(d.cfg.Dir, "state"), filepath.Dir(d.cfg.LogFile)} {
		if err := os.MkdirAll(dir, 0o711); err != nil {
			return fmt.Errorf("containerd daemon: %w", err)
		}
	}
	if err := os.WriteFile(d.configPath(), []byte(d.config()), 0o600); err != nil {
		return fmt.Errorf("containerd daemon: write config: %w", err)
	}
	d.endLeftover()

	d.mu.Lock()
	if d.stopc != nil {
		d.mu.Unlock()
		return errors.New("containerd daemon: already started")
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
	if p, err := exec.LookPath("containerd"); err == nil {
		return p, nil
	}
	if _, err := os.Stat("/usr/bin/containerd"); err == nil {
		return "/usr/bin/containerd", nil
	}
	return "", errors.New("containerd daemon: containerd not found on PATH nor at /usr/bin/containerd (apt-get install containerd runc)")
}

// config is containerd's configuration (version 2, understood by 1.6 and
// later). Every address is berth's own so a system containerd, Docker or
// another berth can run beside it; the debug and metrics listeners are off
// for the same reason. The CRI plugin and the snapshotters berth does not
// use are disabled: less to start, nothing that grabs ports or scans
// /etc/cni. bolt.open gets a timeout so that a second containerd on the
// same root fails instead of hanging on the database lock.
func (d *Daemon) config() string {
	root := filepath.Join(d.cfg.Dir, "root")
	var b strings.Builder
	fmt.Fprintf(&b, "version = 2\n")
	fmt.Fprintf(&b, "root = %s\n", strconv.Quote(root))
	fmt.Fprintf(&b, "state = %s\n", strconv.Quote(filepath.Join(d.cfg.Dir, "state")))
	b.WriteString(`disabled_plugins = [
  "io.containerd.grpc.v1.cri",
  "io.containerd.snapshotter.v1.aufs",
  "io.containerd.snapshotter.v1.btrfs",
  "io.containerd.snapshotter.v1.devmapper",
  "io.containerd.snapshotter.v1.zfs",
  "io.containerd.tracing.processor.v1.otlp",
  "io.containerd.internal.v1.tracing",
]
`)
	fmt.Fprintf(&b, "\n[grpc]\n  address = %s\n", strconv.Quote(d.Address()))
	fmt.Fprintf(&b, "\n[ttrpc]\n  address = %s\n", strconv.Quote(d.Address()+".ttrpc"))
	fmt.Fprintf(&b, "\n[debug]\n  address = \"\"\n  level = %s\n", strconv.Quote(d.cfg.LogLevel))
	b.WriteString("\n[metrics]\n  address = \"\"\n")
	fmt.Fprintf(&b, "\n[plugins]\n  [plugins.\"io.containerd.internal.v1.opt\"]\n    path = %s\n", strconv.Quote(filepath.Join(root, "opt")))
	b.WriteString("\n[timeouts]\n  \"io.containerd.timeout.bolt.open\" = \"10s\"\n")
	return b.String()
}

// endLeftover stops a containerd that a previous berth process started on
// this directory and did not stop (berth was killed). Two daemons on one
// root would fight over the metadata database; the shims are unaffected.
func (d *Daemon) endLeftover() {
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
	d.log.Warn("stopping containerd left over from a previous run", "pid", pid)
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
	_ = os.Remove(d.pidPath())
}

// spawnAndWait starts one containerd process and waits until it answers.
func (d *Daemon) spawnAndWait(ctx context.Context) error {
	logf, err := os.OpenFile(d.cfg.LogFile, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o640)
	if err != nil {
		return fmt.Errorf("containerd daemon: open log: %w", err)
	}
	defer logf.Close() // the child has its own descriptor
	logStart, _ := logf.Seek(0, io.SeekEnd)

	cmd := exec.Command(d.cfg.Binary, "--config", d.configPath())
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.Env = withPath(os.Environ())
	// Its own process group: a Ctrl-C on berth's terminal must not reach
	// containerd (berth stops it in order), let alone the shims.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("containerd daemon: start %s: %w", d.cfg.Binary, err)
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
			err = fmt.Errorf("%w (containerd exited: %v)", err, waitErr)
		default:
			_ = cmd.Process.Kill()
			<-exited
		}
		return fmt.Errorf("containerd daemon: %w; last lines of %s:\n%s", err, d.cfg.LogFile, lastLines(d.cfg.LogFile, logStart, 20))
	}
	d.log.Info("containerd running", "pid", cmd.Process.Pid, "address", d.Address())
	return nil
}

// waitReady polls the version service until containerd answers, the
// process dies or StartTimeout passes.
func (d *Daemon) waitReady(ctx context.Context, exited <-chan struct{}) error {
	ctx, cancel := context.WithTimeout(ctx, d.cfg.StartTimeout)
	defer cancel()
	var last error = errors.New("no answer yet")
	for {
		select {
		case <-exited:
			return fmt.Errorf("containerd exited before it answered on %s", d.Address())
		case <-ctx.Done():
			return fmt.Errorf("containerd did not answer on %s within %s: %w", d.Address(), d.cfg.StartTimeout, last)
		case <-time.After(100 * time.Millisecond):
		}
		if _, err := os.Stat(d.Address()); err != nil {
			last = err
			continue
		}
		if err := ping(ctx, d.Address()); err != nil {
			last = err
			continue
		}
		return nil
	}
}

func ping(ctx context.Context, address string) error {
	c, err := client.New(address, client.WithTimeout(time.Second))
	if err != nil {
		return err
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	_, err = c.Version(ctx)
	return err
}

// supervise restarts containerd whenever it dies, with exponential
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
		for {
			d.mu.Lock()
			d.restarts++
			n := d.restarts
			d.mu.Unlock()
			d.log.Warn("containerd exited unexpectedly; restarting", "pid", proc.Pid, "restart", n, "backoff", backoff, "log", d.cfg.LogFile)
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
				d.log.Info("containerd restarted", "restart", n)
				break
			}
			d.log.Error("containerd restart failed", "restart", n, "err", err)
			select {
			case <-d.stopc:
				return
			default:
			}
		}
	}
}

// Stop ends containerd: SIGTERM, up to grace (default 10s) for it to exit,
// then SIGKILL. Only containerd itself is signalled; instances keep
// running in their shims and are adopted by the next Start.
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
			d.log.Warn("containerd did not stop in time; killing it", "pid", proc.Pid, "grace", grace)
			_ = proc.Kill()
			<-exited
		}
	}
	_ = os.Remove(d.pidPath())
	d.mu.Lock()
	// Ready for another Start.
	d.proc, d.stopc, d.stopping = nil, nil, false
	d.mu.Unlock()
	d.log.Info("containerd stopped", "pid", proc.Pid)
	return nil
}

// Connect returns a client for the containerd at address (a berth-started
// daemon or one given with --containerd-address) once it answers.
func Connect(ctx context.Context, address string) (*client.Client, error) {
	if address == "" {
		return nil, errors.New("containerd: empty address")
	}
	if path, ok := strings.CutPrefix(address, "unix://"); ok || !strings.Contains(address, "://") {
		if !ok {
			path = address
		}
		if _, err := os.Stat(path); err != nil {
			return nil, fmt.Errorf("containerd at %s does not answer (is it running?): %w", address, err)
		}
	}
	c, err := client.New(address, client.WithTimeout(5*time.Second))
	if err != nil {
		return nil, fmt.Errorf("containerd: connect %s: %w", address, err)
	}
	vctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if _, err := c.Version(vctx); err != nil {
		c.Close()
		return nil, fmt.Errorf("containerd at %s does not answer (is it running, and are you allowed to use its socket?): %w", address, err)
	}
	return c, nil
}

// Connect returns a client for this daemon.
func (d *Daemon) Connect(ctx context.Context) (*client.Client, error) {
	return Connect(ctx, d.Address())
}

// withPath makes sure runc and the shims are found even when berth was
// started with a minimal PATH.
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

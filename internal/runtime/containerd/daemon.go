package containerd

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/containerd/containerd/v2/client"

	"github.com/berth-platform/berth/internal/supervisor"
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
	// StateDir holds the containers' bundles; default Dir/state. Every
	// directory above it must be searchable by others (0711) when
	// containers run in user namespaces: runc, already the container's
	// mapped root, mounts the root file system at its bundle path.
	StateDir string
}

// Daemon is a containerd child process under supervision.
type Daemon struct {
	cfg  DaemonConfig
	log  *slog.Logger
	proc supervisor.Process
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
	if cfg.StateDir == "" && cfg.Dir != "" {
		cfg.StateDir = filepath.Join(cfg.Dir, "state")
	}
	return &Daemon{cfg: cfg, log: cfg.Logger.With("component", "containerd")}
}

// Address is the daemon's gRPC socket.
func (d *Daemon) Address() string { return filepath.Join(d.cfg.Dir, "containerd.sock") }

func (d *Daemon) configPath() string { return filepath.Join(d.cfg.Dir, "config.toml") }
func (d *Daemon) pidPath() string    { return filepath.Join(d.cfg.Dir, "containerd.pid") }

// Pid is the current containerd process id, 0 when none runs.
func (d *Daemon) Pid() int { return d.proc.Pid() }

// Restarts counts how often the supervisor restarted a dead containerd.
func (d *Daemon) Restarts() int { return d.proc.Restarts() }

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
	for _, dir := range []string{d.cfg.Dir, filepath.Join(d.cfg.Dir, "root"), d.cfg.StateDir, filepath.Dir(d.cfg.LogFile)} {
		if err := os.MkdirAll(dir, 0o711); err != nil {
			return fmt.Errorf("containerd daemon: %w", err)
		}
	}
	if err := os.WriteFile(d.configPath(), []byte(d.config()), 0o600); err != nil {
		return fmt.Errorf("containerd daemon: write config: %w", err)
	}
	return d.proc.Start(ctx, supervisor.Config{
		Name:         "containerd",
		Binary:       bin,
		Args:         []string{"--config", d.configPath()},
		LogPath:      d.cfg.LogFile,
		PidPath:      d.pidPath(),
		OwnArg:       d.configPath(),
		Address:      d.Address(),
		Ready:        d.ready,
		StartTimeout: d.cfg.StartTimeout,
		// KillGroup stays off: the shims, which hold the instances, are
		// containerd's descendants and must outlive it.
		Logger: d.log,
	})
}

func (d *Daemon) binary() (string, error) {
	if d.cfg.Binary != "" {
		return d.cfg.Binary, nil
	}
	bin, err := supervisor.LookBinary("containerd", "/usr/bin/containerd")
	if err != nil {
		return "", fmt.Errorf("containerd daemon: %w (apt-get install containerd runc)", err)
	}
	return bin, nil
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
	fmt.Fprintf(&b, "state = %s\n", strconv.Quote(d.cfg.StateDir))
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

// ready checks once that containerd answers on its socket.
func (d *Daemon) ready(ctx context.Context) error {
	if _, err := os.Stat(d.Address()); err != nil {
		return err
	}
	return ping(ctx, d.Address())
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

// Stop ends containerd: SIGTERM, up to grace (default 10s) for it to exit,
// then SIGKILL. Only containerd itself is signalled; instances keep
// running in their shims and are adopted by the next Start.
func (d *Daemon) Stop(grace time.Duration) error { return d.proc.Stop(grace) }

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

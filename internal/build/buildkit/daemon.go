// Package buildkit runs builds on BuildKit: a supervised buildkitd that
// berth starts under its data directory, and a Builder that drives any
// buildkitd (that one or one given by address) with the Dockerfile
// frontend and turns its progress into build log lines.
package buildkit

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/moby/buildkit/client"

	"github.com/berth-platform/berth/internal/mounts"
	"github.com/berth-platform/berth/internal/supervisor"
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
	// NetworkMode is the network of RUN steps: "isolated" (default: a
	// namespace per step on berth's build bridge, NAT to the outside, no
	// way to the host or to berth's instances; needs the CNI plugins and
	// iptables) or "host" (steps see and reach all the host does: only
	// for a machine that runs nobody else's code).
	NetworkMode string
	// Network configures the isolated network.
	Network NetworkConfig
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
	cfg  DaemonConfig
	log  *slog.Logger
	proc supervisor.Process
	net  *buildNetwork // nil on the host network
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
		cfg.NetworkMode = NetworkIsolated
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
func (d *Daemon) Pid() int { return d.proc.Pid() }

// Restarts counts how often the supervisor restarted a dead buildkitd.
func (d *Daemon) Restarts() int { return d.proc.Restarts() }

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
	for _, dir := range []string{d.cfg.Dir, d.rootDir(), filepath.Dir(d.cfg.LogPath)} {
		if err := os.MkdirAll(dir, 0o711); err != nil {
			return fmt.Errorf("buildkitd daemon: %w", err)
		}
	}
	if err := d.prepareNetwork(ctx); err != nil {
		return fmt.Errorf("buildkitd daemon: %w", err)
	}
	conf, err := renderConfig(d.cfg, d.rootDir(), d.Address(), d.net)
	if err != nil {
		d.teardownNetwork()
		return fmt.Errorf("buildkitd daemon: %w", err)
	}
	if err := os.WriteFile(d.configPath(), []byte(conf), 0o600); err != nil {
		d.teardownNetwork()
		return fmt.Errorf("buildkitd daemon: write config: %w", err)
	}
	err = d.proc.Start(ctx, supervisor.Config{
		Name:         "buildkitd",
		Binary:       bin,
		Args:         append([]string{"--config", d.configPath()}, d.cfg.ExtraArgs...),
		LogPath:      d.cfg.LogPath,
		PidPath:      d.pidPath(),
		OwnArg:       d.configPath(),
		Address:      d.Address(),
		Ready:        d.ready,
		StartTimeout: d.cfg.StartTimeout,
		// The RUN steps are buildkitd's own descendants; a buildkitd
		// that died leaves them running.
		KillGroup: true,
		Cleanup:   d.unmountRemains,
		Logger:    d.log,
	})
	if err != nil {
		d.teardownNetwork()
	}
	return err
}

// prepareNetwork writes the CNI configuration and puts the firewall in
// place before buildkitd runs a single step.
func (d *Daemon) prepareNetwork(ctx context.Context) error {
	if d.cfg.NetworkMode != NetworkIsolated {
		return nil
	}
	bn, err := newBuildNetwork(d.cfg.Network, d.cfg.Dir)
	if err != nil {
		return err
	}
	// A bridge left by a killed berth may carry an address of another
	// subnet; the plugin makes a fresh one.
	if err := bn.removeBridge(); err != nil {
		return err
	}
	if err := bn.writeConf(); err != nil {
		return err
	}
	if err := bn.installFirewall(ctx); err != nil {
		_ = bn.removeFirewall(context.Background())
		return err
	}
	d.net = bn
	d.log.Info("build network ready", "bridge", bn.bridge, "subnet", bn.subnet.String(), "deny", d.cfg.Network.Deny)
	if !bridgeNetfilter() {
		d.log.Warn("br_netfilter is off: RUN steps of concurrent builds can reach each other on the build bridge (modprobe br_netfilter)", "bridge", bn.bridge)
	}
	return nil
}

// teardownNetwork removes the firewall, the bridge and the leases; only
// once buildkitd is gone, so that no RUN step is ever without the rules.
func (d *Daemon) teardownNetwork() {
	if d.net == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := d.net.removeFirewall(ctx); err != nil {
		d.log.Warn("could not remove the build network's firewall rules", "bridge", d.net.bridge, "err", err)
	}
	if err := d.net.removeBridge(); err != nil {
		d.log.Warn("could not remove the build bridge", "bridge", d.net.bridge, "err", err)
	}
	if err := removeCNICache(filepath.Join(d.rootDir(), "net", "cni")); err != nil {
		d.log.Warn("could not remove buildkitd's cached CNI results", "err", err)
	}
	d.net = nil
}

// NetworkSummary says where RUN steps run, for the start-up phase line.
func (d *Daemon) NetworkSummary() string {
	if d.net == nil {
		return "RUN steps on the host network"
	}
	s := fmt.Sprintf("RUN steps isolated on bridge %s (%s)", d.net.bridge, d.net.subnet)
	if !bridgeNetfilter() {
		s += " but not from each other (br_netfilter off)"
	}
	return s
}

func (d *Daemon) binary() (string, error) {
	if d.cfg.Binary != "" {
		return d.cfg.Binary, nil
	}
	bin, err := supervisor.LookBinary("buildkitd", "/usr/local/bin/buildkitd")
	if err != nil {
		return "", fmt.Errorf("buildkitd daemon: %w (go install github.com/moby/buildkit/cmd/buildkitd@v0.18.2 && cp ~/go/bin/buildkitd /usr/local/bin/; it also needs runc)", err)
	}
	return bin, nil
}

// unmountRemains unmounts what a dead buildkitd left under Dir (the
// overlay roots of its RUN steps), so that the next buildkitd starts on a
// clean root.
func (d *Daemon) unmountRemains() {
	if n, err := mounts.UnmountUnder(d.cfg.Dir); err != nil {
		d.log.Warn("could not unmount what buildkitd left", "dir", d.cfg.Dir, "err", err)
	} else if n > 0 {
		d.log.Info("unmounted what buildkitd left", "dir", d.cfg.Dir, "mounts", n)
	}
}

// ready checks once that buildkitd answers with a worker: the socket
// answers before the workers are ready, and a build sent then fails.
func (d *Daemon) ready(ctx context.Context) error {
	if _, err := os.Stat(d.socketPath()); err != nil {
		return err
	}
	return Ping(ctx, d.Address())
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

// Stop ends buildkitd: SIGTERM (it cancels running builds and unmounts),
// up to grace (default 10s) for it to exit, then SIGKILL; then whatever it
// left behind is killed and unmounted. Builds in flight fail.
// The build network goes last.
func (d *Daemon) Stop(grace time.Duration) error {
	err := d.proc.Stop(grace)
	d.teardownNetwork()
	return err
}

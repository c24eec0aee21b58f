// Package containerd is berth's embedded engine: it runs instances as
// containerd tasks on this machine. This file set is the low layer (the
// "container runtime" half of a kubelet): a supervised containerd daemon,
// image pulls, creating and stopping one container, exit events, log files
// and exec. The controller above it (Deployment-like rollouts, restarts,
// probes, service addresses) implements runtime.Driver on top of Engine.
//
// Engine keeps no state of its own in memory: everything it needs to find
// an instance again (address, network namespace, log file) is stored in the
// container's labels in containerd, so a new berth process adopts running
// instances simply by creating a new Engine on the same namespace.
package containerd

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sync"

	"github.com/containerd/containerd/v2/client"
	"github.com/containerd/containerd/v2/pkg/identifiers"
	"github.com/containerd/containerd/v2/pkg/namespaces"
	clog "github.com/containerd/log"
	"github.com/sirupsen/logrus"
	lslog "github.com/sirupsen/logrus/hooks/slog"

	"github.com/berth-platform/berth/internal/runtime/cninetwork"
)

// Defaults for Config.
const (
	DefaultNamespace   = "berth"
	DefaultSnapshotter = "overlayfs"
	DefaultRuntime     = "io.containerd.runc.v2"
)

// Config configures an Engine.
type Config struct {
	// Client talks to containerd (see Daemon.Connect and Connect). The
	// engine does not close it.
	Client *client.Client
	// Namespace is the containerd namespace for berth's images and
	// containers; default "berth". Other users of the same containerd
	// never see them and vice versa.
	Namespace string
	// Network attaches instances to a bridge. Nil gives instances a
	// network namespace with nothing but an unconfigured loopback.
	Network *cninetwork.Network
	// StateDir holds pinned network namespaces (netns/), exec FIFOs
	// (fifo/) and runc's container state (runc/); required. Keep it short.
	StateDir string
	// Snapshotter for image layers and container roots; default overlayfs.
	Snapshotter string
	// Runtime is the containerd runtime; default io.containerd.runc.v2.
	Runtime string
	// Logger; default slog.Default().
	Logger *slog.Logger
}

// Engine runs instances in one containerd namespace. It is safe for
// concurrent use.
type Engine struct {
	client      *client.Client
	namespace   string
	network     *cninetwork.Network
	netnsDir    string
	fifoDir     string
	runcRoot    string
	snapshotter string
	runtime     string
	log         *slog.Logger

	locks sync.Map // container ID -> *sync.Mutex

	// networks are those instances were attached to, by name: Stop finds
	// a container's through its label.
	networks sync.Map // name -> *cninetwork.Network

	// clientLog receives the containerd client library's own logging
	// (logrus), warnings and up, forwarded to log instead of stderr.
	clientLog *clog.Entry
}

// NewEngine checks cfg and prepares the state directories.
func NewEngine(cfg Config) (*Engine, error) {
	if cfg.Client == nil {
		return nil, errors.New("containerd engine: client is required")
	}
	if cfg.StateDir == "" {
		return nil, errors.New("containerd engine: state directory is required")
	}
	e := &Engine{
		client:      cfg.Client,
		namespace:   cfg.Namespace,
		network:     cfg.Network,
		netnsDir:    filepath.Join(cfg.StateDir, "netns"),
		fifoDir:     filepath.Join(cfg.StateDir, "fifo"),
		runcRoot:    filepath.Join(cfg.StateDir, "runc"),
		snapshotter: cfg.Snapshotter,
		runtime:     cfg.Runtime,
		log:         cfg.Logger,
	}
	if e.namespace == "" {
		e.namespace = DefaultNamespace
	}
	if err := identifiers.Validate(e.namespace); err != nil {
		return nil, fmt.Errorf("containerd engine: namespace %q: %w", e.namespace, err)
	}
	if e.snapshotter == "" {
		e.snapshotter = DefaultSnapshotter
	}
	if e.runtime == "" {
		e.runtime = DefaultRuntime
	}
	if e.log == nil {
		e.log = slog.Default()
	}
	if e.network != nil {
		e.AddNetwork(e.network)
	}
	e.log = e.log.With("component", "containerd-engine", "namespace", e.namespace)
	lr := logrus.New()
	lr.SetOutput(io.Discard)
	lr.SetLevel(logrus.WarnLevel)
	lr.AddHook(lslog.NewHook(e.log, nil))
	e.clientLog = logrus.NewEntry(lr)
	for _, d := range []string{e.netnsDir, e.fifoDir, e.runcRoot} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return nil, fmt.Errorf("containerd engine: %w", err)
		}
	}
	return e, nil
}

// Namespace is the containerd namespace the engine works in.
func (e *Engine) Namespace() string { return e.namespace }

// Client is the underlying containerd client.
func (e *Engine) Client() *client.Client { return e.client }

// Network is the bridge network, nil when instances are not networked.
func (e *Engine) Network() *cninetwork.Network { return e.network }

// AddNetwork makes a network known to Stop before any Run used it (the
// networks of containers a previous berth started).
func (e *Engine) AddNetwork(n *cninetwork.Network) { e.networks.Store(n.Name(), n) }

// networked says whether instances get network namespaces at all.
func (e *Engine) networked() bool {
	found := false
	e.networks.Range(func(_, _ any) bool { found = true; return false })
	return found
}

// networksNamed is the network called name, or every known network when
// the name is empty or unknown (a container from before names were kept).
func (e *Engine) networksNamed(name string) []*cninetwork.Network {
	if n, ok := e.networks.Load(name); ok {
		return []*cninetwork.Network{n.(*cninetwork.Network)}
	}
	var all []*cninetwork.Network
	e.networks.Range(func(_, v any) bool {
		all = append(all, v.(*cninetwork.Network))
		return true
	})
	return all
}

// ctx puts the engine's namespace on ctx (every containerd call needs it)
// and routes the client library's log lines to the engine's logger (it
// reports every failed registry request at info level on stderr otherwise,
// while Pull returns the error anyway).
func (e *Engine) ctx(ctx context.Context) context.Context {
	return clog.WithLogger(namespaces.WithNamespace(ctx, e.namespace), e.clientLog)
}

// lock serialises Run and Stop of one container ID: a Stop racing a Run
// of the same instance would tear down the network under it.
func (e *Engine) lock(id string) func() {
	m, _ := e.locks.LoadOrStore(id, &sync.Mutex{})
	mu := m.(*sync.Mutex)
	mu.Lock()
	return mu.Unlock
}

func (e *Engine) netnsPath(id string) string { return filepath.Join(e.netnsDir, id) }

package containerd

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/containerd/containerd/v2/client"
)

// Defaults of the embedded engine's networks. The service subnet holds one
// stable IP per component.
const (
	DefaultBridge        = "berth0"
	DefaultSubnet        = "10.213.0.0/16"
	DefaultServiceLink   = "berth-svc"
	DefaultServiceSubnet = "10.214.0.0/16"
)

// Open starts (or connects to) containerd, prepares the networks and adopts
// the containers a previous berth left running. Start-up errors name the
// log to read.
func Open(ctx context.Context, cfg DriverConfig) (*Driver, error) {
	if cfg.Bridge == "" {
		cfg.Bridge = DefaultBridge
	}
	if cfg.Subnet == "" {
		cfg.Subnet = DefaultSubnet
	}
	if cfg.ServiceLink == "" {
		cfg.ServiceLink = DefaultServiceLink
	}
	if cfg.ServiceSubnet == "" {
		cfg.ServiceSubnet = DefaultServiceSubnet
	}
	d := &Driver{
		cfg: cfg, controllers: map[string]*controller{}, adopted: map[string][]adoptee{},
		logDir: filepath.Join(cfg.DataDir, "logs", "instances"),
		volDir: filepath.Join(cfg.DataDir, "volumes"),
	}
	// Logs are owner-only (instance output may carry secrets); volumes
	// keep 0755 for containers mapped to other users.
	if err := os.MkdirAll(d.logDir, 0o700); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(d.volDir, 0o755); err != nil {
		return nil, err
	}
	stateDir := filepath.Join(cfg.DataDir, "runtime")
	var err error
	if d.iso, err = openIsolation(cfg, stateDir); err != nil {
		return nil, err
	}
	var cl *client.Client
	if cfg.Address == "" {
		bundles, err := bundleStateDir(cfg.DataDir)
		if err != nil {
			return nil, err
		}
		d.daemon = NewDaemon(DaemonConfig{
			Dir:      filepath.Join(cfg.DataDir, "containerd"),
			LogFile:  filepath.Join(cfg.DataDir, "logs", "containerd.log"),
			StateDir: bundles,
		})
		if err := d.daemon.Start(ctx); err != nil {
			return nil, err
		}
		cl, err = d.daemon.Connect(ctx)
	} else {
		cl, err = Connect(ctx, cfg.Address)
	}
	if err != nil {
		d.stopDaemon()
		return nil, fmt.Errorf("connect to containerd: %w", err)
	}
	fail := func(err error) (*Driver, error) {
		cl.Close()
		d.stopDaemon()
		return nil, err
	}
	d.engine, err = NewEngine(Config{Client: cl, Namespace: cfg.Namespace, StateDir: stateDir})
	if err != nil {
		return fail(err)
	}
	if err := d.retireSharedBridge(ctx, stateDir); err != nil {
		return fail(err)
	}
	if err := d.iso.openNetworks(ctx, cfg, stateDir); err != nil {
		return fail(err)
	}
	for _, n := range d.iso.networks.Networks() {
		d.engine.AddNetwork(n)
	}
	d.services, err = newServices(cfg.ServiceLink, cfg.ServiceSubnet, stateDir, d.mayConnect)
	if err != nil {
		return fail(err)
	}
	if err := d.adoptAll(ctx); err != nil {
		return fail(err)
	}
	d.ctx, d.cancel = context.WithCancel(context.WithoutCancel(ctx))
	exits, err := d.engine.Exits(d.ctx)
	if err != nil {
		d.cancel()
		return fail(fmt.Errorf("watch container exits: %w", err))
	}
	d.wg.Add(2)
	go func() {
		defer d.wg.Done()
		d.dispatchExits(exits)
	}()
	go func() {
		defer d.wg.Done()
		LogRotator{Dir: d.logDir}.Run(d.ctx)
	}()
	return d, nil
}

func (d *Driver) stopDaemon() {
	if d.daemon != nil {
		_ = d.daemon.Stop(10 * time.Second)
	}
}

// adoptAll groups berth's existing containers by component, to be taken
// over when the worker applies each component again.
func (d *Driver) adoptAll(ctx context.Context) error {
	infos, err := d.engine.List(ctx)
	if err != nil {
		return fmt.Errorf("list containers: %w", err)
	}
	for _, info := range infos {
		comp := info.Labels[labelComponent]
		if comp == "" {
			continue
		}
		ord, _ := strconv.Atoi(info.Labels[labelOrdinal])
		ver, _ := strconv.ParseInt(info.Labels[labelVersion], 10, 64)
		started, _ := time.Parse(time.RFC3339, info.Labels[labelStarted])
		a := adoptee{ID: info.ID, Ordinal: ord, Version: ver, Hash: info.Labels[labelHash],
			Running: info.Status == StatusRunning, ExitCode: info.ExitCode, ExitedAt: info.ExitedAt, StartedAt: started}
		if info.IP != nil {
			a.IP = info.IP.String()
		}
		d.adopted[comp] = append(d.adopted[comp], a)
		// Its service addresses admit the team's instances at once, not
		// only once the worker applies the component again.
		if team, ok := info.Labels[labelTeam]; ok {
			d.teamOf.Store(comp, team)
		}
	}
	slog.Info("containers found at start-up", "containers", len(infos), "components", len(d.adopted))
	return nil
}

// dispatchExits hands each exit to its component's controller.
func (d *Driver) dispatchExits(exits <-chan Exit) {
	for e := range exits {
		for _, c := range d.controllerList() {
			if c.owns(e.ID) {
				c.exited(e)
				break
			}
		}
	}
}

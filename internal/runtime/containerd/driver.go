package containerd

import (
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/berth-platform/berth/internal/model"
	"github.com/berth-platform/berth/internal/runtime"
)

// Labels berth puts on every container, so that a restarted berth can tell
// whose it is and what it runs.
const (
	labelComponent = "berth.component"
	labelOrdinal   = "berth.ordinal"
	labelVersion   = "berth.version"
	labelHash      = "berth.spec-hash"
	labelStarted   = "berth.started"
	labelTeam      = "berth.team"
)

// DriverConfig configures the embedded engine.
type DriverConfig struct {
	// DataDir is berth's data directory: containerd's root, logs and
	// volumes go under it.
	DataDir string
	// Address of a running containerd; empty starts berth's own.
	Address string
	// Namespace in containerd (default "berth").
	Namespace string
	// Bridge and Subnet of the instance network.
	Bridge, Subnet string
	// ServiceLink and ServiceSubnet hold the service IPs.
	ServiceLink, ServiceSubnet string
	// UserNS is "auto" (default: user namespaces when the kernel can),
	// "on" (required) or "off" (containers run as host root).
	UserNS string
}

// adoptee is a container found at start-up.
type adoptee struct {
	ID                  string
	Ordinal             int
	Version             int64
	Hash                string
	IP                  string
	Running             bool
	ExitCode            int
	StartedAt, ExitedAt time.Time
}

// Driver is the containerd engine behind runtime.Driver.
type Driver struct {
	cfg      DriverConfig
	daemon   *Daemon
	engine   *Engine
	iso      *isolation
	services *services
	// teamOf is each applied component's team (component id -> team),
	// for the service addresses' check of who connects.
	teamOf sync.Map
	logDir string
	volDir string

	mu          sync.Mutex
	controllers map[string]*controller
	adopted     map[string][]adoptee
	ctx         context.Context
	cancel      context.CancelFunc
	wg          sync.WaitGroup
}

var _ runtime.Driver = (*Driver)(nil)

// Name implements runtime.Driver.
func (d *Driver) Name() string { return "containerd" }

func (d *Driver) controller(id string) *controller {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.controllers[id]
}

// Apply implements runtime.Driver.
func (d *Driver) Apply(ctx context.Context, spec runtime.ComponentSpec) error {
	d.mu.Lock()
	c, ok := d.controllers[spec.ComponentID]
	if !ok {
		c = newController(d, spec.ComponentID, d.adopted[spec.ComponentID])
		delete(d.adopted, spec.ComponentID)
		d.controllers[spec.ComponentID] = c
		d.wg.Add(1)
		go func() {
			defer d.wg.Done()
			c.run(d.ctx)
		}()
	}
	d.mu.Unlock()
	d.teamOf.Store(spec.ComponentID, spec.Team)
	for _, v := range spec.Volumes {
		if err := os.MkdirAll(d.volumePath(spec.ComponentID, v.Name), 0o755); err != nil {
			return fmt.Errorf("volume %s: %w", v.Name, err)
		}
	}
	c.apply(spec)
	return nil
}

// Remove implements runtime.Driver.
func (d *Driver) Remove(ctx context.Context, componentID string, purge bool) error {
	d.mu.Lock()
	c := d.controllers[componentID]
	adopted := d.adopted[componentID]
	delete(d.adopted, componentID)
	d.mu.Unlock()
	if c != nil {
		c.mu.Lock()
		c.spec.Instances = 0
		c.hash = "removed"
		for _, in := range c.instances {
			c.terminate(in)
		}
		c.mu.Unlock()
		// Wait for the stops, then forget the controller.
		deadline := time.Now().Add(stopGrace + 30*time.Second)
		for len(c.instanceIDs()) > 0 && time.Now().Before(deadline) {
			time.Sleep(100 * time.Millisecond)
		}
		c.mu.Lock()
		c.removed = true
		c.mu.Unlock()
		c.poke() // its loop sees it and ends
		d.mu.Lock()
		delete(d.controllers, componentID)
		d.mu.Unlock()
	}
	for _, a := range adopted {
		if err := d.engine.Stop(ctx, a.ID, stopGrace); err != nil {
			return fmt.Errorf("stop %s: %w", a.ID, err)
		}
	}
	d.services.remove(componentID)
	// The logs go with the instances (as pod logs do); volumes only when
	// purged.
	if err := os.RemoveAll(filepath.Join(d.logDir, componentID)); err != nil {
		return fmt.Errorf("remove logs: %w", err)
	}
	if purge {
		if err := os.RemoveAll(filepath.Join(d.volDir, componentID)); err != nil {
			return fmt.Errorf("remove volumes: %w", err)
		}
	}
	return nil
}

// Instances implements runtime.Driver.
func (d *Driver) Instances(ctx context.Context, componentID string) ([]model.Instance, error) {
	if c := d.controller(componentID); c != nil {
		return c.view(), nil
	}
	return []model.Instance{}, nil
}

// Rollout implements runtime.Driver.
func (d *Driver) Rollout(ctx context.Context, componentID string) (runtime.RolloutState, error) {
	if c := d.controller(componentID); c != nil {
		return c.rolloutState(), nil
	}
	return runtime.RolloutState{Phase: runtime.RolloutIdle}, nil
}

// Isolation says how teams are kept apart (user namespaces, networks), for
// the start-up phase line and the doctor.
func (d *Driver) Isolation() string { return d.iso.summary() }

// UserNamespaces reports whether containers run in user namespaces, and
// why not.
func (d *Driver) UserNamespaces() (bool, string) { return d.iso.userNS, d.iso.note }

// mayConnect is the service addresses' check: only the component's own
// team's instances (and the host) may connect.
func (d *Driver) mayConnect(componentID string, remote net.IP) bool {
	team, known := d.teamOf.Load(componentID)
	name, _ := team.(string)
	return d.iso.mayConnect(name, known, remote)
}

// ServiceAddress implements runtime.Driver.
func (d *Driver) ServiceAddress(ctx context.Context, componentID string, port int) (string, error) {
	return d.services.address(componentID, port)
}

func (d *Driver) Expose(ctx context.Context, team, componentID string, ports []model.Port, addrs []string) error {
	// A thirdparty component is never applied, so its team is learnt here.
	d.teamOf.Store(componentID, team)
	for _, p := range ports {
		if p.Protocol == model.ProtoUDP {
			continue
		}
		d.services.set(componentID, p.Port, addrs)
	}
	return nil
}

func (d *Driver) Endpoints(componentID string, port int) []string {
	return d.services.endpoints(componentID, port)
}

func (d *Driver) logPath(componentID, instanceID string) string {
	return filepath.Join(d.logDir, componentID, instanceID+".log")
}

func (d *Driver) volumePath(componentID, volume string) string {
	return filepath.Join(d.volDir, componentID, volume)
}

// lastLogLines reads the end of an instance's log for crash reports.
func (d *Driver) lastLogLines(componentID, instanceID string, n int) string {
	rc, err := OpenLog(d.logPath(componentID, instanceID), runtime.LogOptions{Tail: n})
	if err != nil {
		return ""
	}
	defer rc.Close()
	b, _ := io.ReadAll(io.LimitReader(rc, 64<<10))
	return tailLines(string(b), n)
}

// Logs implements runtime.Driver.
func (d *Driver) Logs(ctx context.Context, componentID, instanceID string, opts runtime.LogOptions) (io.ReadCloser, error) {
	p := d.logPath(componentID, instanceID)
	if opts.Previous {
		// OpenLog finds the previous log beside p itself.
		if _, err := os.Stat(PreviousLogPath(p)); err != nil {
			return nil, fmt.Errorf("instance %s has no previous container: it has not restarted", instanceID)
		}
		opts.Follow = false
	}
	return OpenLogContext(ctx, p, opts)
}

// Exec implements runtime.Driver.
func (d *Driver) Exec(ctx context.Context, componentID, instanceID string, opts runtime.ExecOptions) (int, error) {
	return d.engine.Exec(ctx, instanceID, opts)
}

// instanceSpec is the container an instance runs.
func (d *Driver) instanceSpec(componentID string, in *instance, spec runtime.ComponentSpec) InstanceSpec {
	is := InstanceSpec{
		ID: in.id, Image: spec.Image, Cmd: spec.Cmd, Args: spec.Args, Env: spec.Env,
		Memory: spec.Memory, CPU: spec.CPU, Hostname: fmt.Sprintf("%s-%d", spec.Alias, in.ordinal),
		LogPath: d.logPath(componentID, in.id),
		Labels: map[string]string{
			labelComponent: componentID, labelOrdinal: strconv.Itoa(in.ordinal),
			labelVersion: strconv.FormatInt(spec.Version, 10), labelHash: in.hash,
			labelStarted: time.Now().UTC().Format(time.RFC3339), labelTeam: spec.Team,
		},
	}
	for _, v := range spec.Volumes {
		is.Mounts = append(is.Mounts, Mount{Source: d.volumePath(componentID, v.Name), Target: v.Path})
	}
	return is
}

// Capacity implements runtime.Driver.
func (d *Driver) Capacity(ctx context.Context) (runtime.Capacity, error) {
	return d.capacity()
}

func (d *Driver) capacity() (runtime.Capacity, error) {
	var c runtime.Capacity
	mem, err := readMeminfo()
	if err != nil {
		return c, err
	}
	c.MemoryTotal, c.MemoryFree = mem.total, mem.available
	cores := int64(numCPU())
	c.CPUTotal = cores * 1000
	c.CPUFree = c.CPUTotal - d.cpuReserved()
	var st syscall.Statfs_t
	if err := syscall.Statfs(d.cfg.DataDir, &st); err == nil {
		c.DiskTotal = int64(st.Blocks) * st.Bsize
		c.DiskFree = int64(st.Bavail) * st.Bsize
	}
	return c, nil
}

// cpuReserved sums the CPU limits of running instances. It reads each
// controller's published figure, never its lock: a controller asks while
// holding its own.
func (d *Driver) cpuReserved() int64 {
	var sum int64
	for _, c := range d.controllerList() {
		sum += c.reservedCPU.Load()
	}
	return sum
}

// controllerList is a snapshot, so that no lock is held while using them.
func (d *Driver) controllerList() []*controller {
	d.mu.Lock()
	defer d.mu.Unlock()
	out := make([]*controller, 0, len(d.controllers))
	for _, c := range d.controllers {
		out = append(out, c)
	}
	return out
}

// minDiskFree is the free space below which the machine has disk pressure.
const minDiskFree = 512 << 20

// unschedulable says why this machine cannot take one more instance of
// spec now, in the words of a Kubernetes scheduler, or "" if it can.
func (d *Driver) unschedulable(spec runtime.ComponentSpec) string {
	c, err := d.capacity()
	if err != nil {
		return ""
	}
	switch {
	case c.DiskFree > 0 && c.DiskFree < minDiskFree:
		return fmt.Sprintf("0/1 nodes are available: 1 node(s) had disk pressure: %s free on %s, under %s", humanBytes(c.DiskFree), d.cfg.DataDir, model.FormatBytes(minDiskFree))
	case spec.Memory > 0 && spec.Memory > c.MemoryFree:
		return fmt.Sprintf("0/1 nodes are available: 1 Insufficient memory: the instance asks %s, %s is free", model.FormatBytes(spec.Memory), humanBytes(c.MemoryFree))
	case spec.CPU > 0 && spec.CPU > c.CPUFree:
		return fmt.Sprintf("0/1 nodes are available: 1 Insufficient cpu: the instance asks %s, %s is free", model.FormatCPU(spec.CPU), model.FormatCPU(max(c.CPUFree, 0)))
	}
	return ""
}

// Close implements runtime.Driver: controllers stop, containers keep
// running for the next berth to adopt.
func (d *Driver) Close() error {
	d.cancel()
	d.wg.Wait()
	d.services.close()
	if d.daemon != nil {
		return d.daemon.Stop(10 * time.Second)
	}
	return nil
}

// humanBytes writes a measured amount for people: 23.1Gi, 512.0Mi.
func humanBytes(n int64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.1fGi", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.1fMi", float64(n)/(1<<20))
	}
	return fmt.Sprintf("%dKi", n>>10)
}

// Package runtime is the contract between berth's worker and the engines
// that run workloads. The worker hands a driver the desired state of a
// component and reads back its instances; it never knows which engine runs
// them.
//
// The contract is shaped after Kubernetes so that the cluster driver maps
// onto it one to one:
//
//	Driver.Apply(ComponentSpec)   Deployment (or StatefulSet with volumes) + Service, applied
//	ComponentSpec.Instances       .spec.replicas
//	ComponentSpec.Version         pod template label berth.io/version; a change rolls out
//	ComponentSpec.Readiness/...   readinessProbe / livenessProbe of the container
//	ComponentSpec.Memory/CPU      resources.limits (and requests)
//	ComponentSpec.Volumes         PersistentVolumeClaims mounted at their paths
//	ComponentSpec.RestartToken    pod template annotation berth.io/restarted-by
//	Driver.Remove                 delete Deployment, Service, Secrets (claims kept unless purged)
//	Driver.Instances              pods of the component -> Instance (status mapping in status.go)
//	Driver.ServiceAddress         the ClusterIP Service's host and port
//	Driver.Endpoints              the ready addresses of the EndpointSlices (an informer cache)
//	Driver.Expose                 a Service without selector and its EndpointSlice
//	Driver.Logs                   pod logs (follow, previous, tail)
//	Driver.Exec                   pods/exec over remotecommand with a TTY
//	Driver.Capacity               allocatable minus requested, per node
//
// The embedded engine (runtime/containerd) implements the same behaviour on
// one machine: it is its own kubelet, Deployment controller and kube-proxy.
package runtime

import (
	"context"
	"io"
	"time"

	"github.com/berth-platform/berth/internal/model"
)

// Driver runs components.
type Driver interface {
	// Name is the engine's name ("containerd", "kubernetes").
	Name() string
	// Apply makes the engine run spec: it creates, scales and rolls out
	// instances until Instances copies of Version run and are ready, then
	// keeps them so (restarting crashed ones with back-off). It returns once
	// the desired state is recorded; progress is reported through the
	// component's instances and the Progress callback of spec.
	Apply(ctx context.Context, spec ComponentSpec) error
	// Remove stops every instance of the component and forgets it, its
	// service addresses and logs included. Volumes stay unless purge is set.
	Remove(ctx context.Context, componentID string, purge bool) error
	// Instances reports the component's instances with status, reason,
	// message and advice.
	Instances(ctx context.Context, componentID string) ([]model.Instance, error)
	// Rollout reports how far the last Apply got (see RolloutState).
	Rollout(ctx context.Context, componentID string) (RolloutState, error)
	// ServiceAddress is the stable address that balances a port over the
	// component's ready instances.
	ServiceAddress(ctx context.Context, componentID string, port int) (string, error)
	// Endpoints are the host:port addresses of the ready instances of a
	// port, now. The gateway calls it on every request, so it must be cheap
	// and must not block (no I/O, no lock held across I/O).
	Endpoints(componentID string, port int) []string
	// Expose points a component's stable inner address at addresses berth
	// does not run (a thirdparty component's healthy endpoints); nil leaves
	// the address with nothing behind it. team owns the component: only its
	// instances may use the address.
	Expose(ctx context.Context, team, componentID string, ports []model.Port, addrs []string) error
	// Logs streams an instance's output (stdout and stderr interleaved).
	Logs(ctx context.Context, componentID, instanceID string, opts LogOptions) (io.ReadCloser, error)
	// Exec runs a command in an instance.
	Exec(ctx context.Context, componentID, instanceID string, opts ExecOptions) (int, error)
	// Capacity is what the machine (or cluster) can still hold.
	Capacity(ctx context.Context) (Capacity, error)
	// Close stops watching; running instances keep running, to be adopted
	// by the next driver.
	Close() error
}

// ComponentSpec is the desired state of one component.
type ComponentSpec struct {
	ComponentID string
	Team, App   string
	Alias       string
	Version     int64
	Image       string
	// Registry holds credentials and trust for the image's registry.
	Registry  *RegistryAuth
	Instances int
	Cmd, Args []string
	Env       []string // NAME=value, final (dependencies already merged)
	Memory    int64    // bytes, 0 = no limit
	CPU       int64    // millicores, 0 = no limit
	Ports     []model.Port
	Volumes   []model.Volume
	Readiness *model.Probe
	Liveness  *model.Probe
	// RestartToken changes to replace every instance (a restart).
	RestartToken string
	// ReadyTimeout bounds a rollout: a new version not ready by then is
	// rolled back (default 5 minutes).
	ReadyTimeout time.Duration
	// Progress receives human-readable progress lines (pull, start, ready,
	// rollback); may be nil.
	Progress func(line string)
}

// RegistryAuth is how to reach an image's registry.
type RegistryAuth struct {
	Username, Password string
	// PlainHTTP talks HTTP instead of HTTPS (loopback registries default to it).
	PlainHTTP bool
	// SkipVerify trusts a self-signed certificate.
	SkipVerify bool
}

// RolloutPhase says where a rollout is.
type RolloutPhase string

const (
	RolloutIdle       RolloutPhase = "idle"        // nothing to do
	RolloutProgress   RolloutPhase = "progressing" // new instances starting
	RolloutComplete   RolloutPhase = "complete"    // desired version ready
	RolloutRolledBack RolloutPhase = "rolled_back" // new version never got ready
	RolloutFailed     RolloutPhase = "failed"      // cannot run at all (e.g. image missing)
)

// RolloutState is the progress of the last Apply.
type RolloutState struct {
	Phase   RolloutPhase
	Version int64
	Reason  string
	Message string
}

// LogOptions select what Logs returns.
type LogOptions struct {
	Follow   bool
	Previous bool // the last terminated container of the instance
	Tail     int  // last N lines; 0 = all kept
}

// ExecOptions describe a command to run in an instance.
type ExecOptions struct {
	Cmd    []string
	TTY    bool
	Stdin  io.Reader
	Stdout io.Writer
	Stderr io.Writer
	// Resize delivers terminal size changes (TTY only).
	Resize <-chan TerminalSize
}

// TerminalSize is a PTY size.
type TerminalSize struct{ Cols, Rows uint16 }

// Capacity is free and total resources.
type Capacity struct {
	MemoryFree, MemoryTotal int64 // bytes
	CPUFree, CPUTotal       int64 // millicores
	DiskFree, DiskTotal     int64 // bytes of the data directory's file system
}

package containerd

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	runcoptions "github.com/containerd/containerd/api/types/runc/options"
	"github.com/containerd/containerd/v2/client"
	"github.com/containerd/containerd/v2/core/containers"
	"github.com/containerd/containerd/v2/pkg/cio"
	"github.com/containerd/containerd/v2/pkg/identifiers"
	"github.com/containerd/containerd/v2/pkg/oci"
	"github.com/containerd/errdefs"
	"github.com/opencontainers/runtime-spec/specs-go"

	"github.com/berth-platform/berth/internal/runtime/cninetwork"
)

// Labels the engine puts on every container next to the caller's. They
// hold what Stop, List and a later berth need to find again: the engine
// keeps no other record.
const (
	LabelIP      = "berth.engine/ip"
	LabelNetNS   = "berth.engine/netns"
	LabelLogPath = "berth.engine/log-path"
	LabelImage   = "berth.engine/image"
	LabelNetwork = "berth.engine/network"
	LabelUserNS  = "berth.engine/userns"
	labelPrefix  = "berth.engine/"
)

// InstanceSpec is one container to run.
type InstanceSpec struct {
	// ID names the container (and its snapshot, network attachment and
	// namespace): letters, digits, '.', '_', '-', at most 76 bytes.
	ID string
	// Labels are stored on the container (component id, version, instance
	// ordinal...) and returned by List.
	Labels map[string]string
	// Image must have been pulled (see Pull).
	Image string
	// Cmd replaces the image's ENTRYPOINT and Args its CMD, as command and
	// args do in Kubernetes: Cmd alone drops the image's CMD too.
	Cmd, Args []string
	// Env (NAME=value) is merged over the image's environment.
	Env []string
	// Memory limit in bytes (0 = none); swap is not allowed beyond it.
	Memory int64
	// CPU limit in millicores (0 = none), enforced by CFS quota.
	CPU int64
	// Mounts bind host directories (volumes) into the container.
	Mounts []Mount
	// Hostname; default the ID.
	Hostname string
	// LogPath receives stdout and stderr (absolute; one file per instance,
	// e.g. DATA/logs/instances/<instance>.log). A log already there is kept
	// as the instance's previous log (see PreviousLogPath).
	LogPath string
	// Network attaches the container; nil uses the engine's (Config.Network).
	Network *cninetwork.Network
	// UserNS runs the container in a user namespace with this mapping and
	// its root file system owned by the mapped ids; nil runs it in the
	// host's (container root is host root).
	UserNS *IDMap
}

// Mount is a bind mount of a host directory.
type Mount struct {
	Source, Target string
	ReadOnly       bool
}

// Running describes a started container.
type Running struct {
	ID  string
	IP  net.IP // nil without a network
	PID uint32
}

// TaskStatus is the state of a container's task.
type TaskStatus string

// Task states reported by List.
const (
	StatusRunning TaskStatus = "running"
	StatusStopped TaskStatus = "stopped" // exited; ExitCode and ExitedAt are set
	StatusCreated TaskStatus = "created" // created but not started
	StatusPaused  TaskStatus = "paused"
	StatusNone    TaskStatus = "none" // no task (deleted, or containerd lost it)
	StatusUnknown TaskStatus = "unknown"
)

// Info is a container as List reports it.
type Info struct {
	ID        string
	Image     string
	Labels    map[string]string // the caller's labels (engine labels removed)
	Status    TaskStatus
	PID       uint32
	IP        net.IP
	ExitCode  int
	ExitedAt  time.Time
	CreatedAt time.Time
	LogPath   string
	// Network is the name of the network the container is attached to
	// ("" for none, or a container of a berth before team networks).
	Network string
}

// Reasons of CreateContainerError, named as Kubernetes names them so the
// controller can pass them on as instance reasons.
const (
	ReasonImageNeverPulled  = "ErrImageNeverPulled"
	ReasonCreateConfigError = "CreateContainerConfigError"
	ReasonCreateError       = "CreateContainerError"
	ReasonRunError          = "RunContainerError"
)

var (
	// ErrImageNotPresent: Run was asked for an image that is not pulled.
	ErrImageNotPresent = errors.New("image is not present on this machine; pull it first")
	// ErrExecutableNotFound: the command does not exist in the image.
	ErrExecutableNotFound = errors.New("executable not found")
	// ErrNotRunning: Exec on a container whose task is not running.
	ErrNotRunning = errors.New("container is not running")
)

// CreateContainerError is a failure to create or start a container. Err
// keeps the runtime's message (e.g. runc's `exec: "x": executable file not
// found in $PATH`); Kind is a sentinel such as ErrExecutableNotFound when
// the cause is recognised.
type CreateContainerError struct {
	ID     string
	Reason string
	Kind   error
	Err    error
}

func (e *CreateContainerError) Error() string {
	return fmt.Sprintf("%s: container %s: %v", e.Reason, e.ID, e.Err)
}

// Unwrap exposes Kind and Err to errors.Is/As.
func (e *CreateContainerError) Unwrap() []error {
	if e.Kind == nil {
		return []error{e.Err}
	}
	return []error{e.Kind, e.Err}
}

func createError(id, reason string, err error) error {
	ce := &CreateContainerError{ID: id, Reason: reason, Err: err}
	msg := err.Error()
	switch {
	case errors.Is(err, ErrImageNotPresent):
		ce.Kind = ErrImageNotPresent
	case strings.Contains(msg, "executable file not found"),
		strings.Contains(msg, "exec: ") && strings.Contains(msg, "no such file or directory"):
		ce.Kind = ErrExecutableNotFound
	}
	return ce
}

// Run creates and starts a container: it pins a network namespace and
// attaches it to the bridge (so the address is known and stored before the
// task exists), creates the container from the image's snapshot with the
// spec's limits and mounts, creates the task with stdout and stderr going
// to LogPath, and starts it. Whatever was set up is undone on failure.
func (e *Engine) Run(ctx context.Context, spec InstanceSpec) (_ *Running, retErr error) {
	if err := identifiers.Validate(spec.ID); err != nil {
		return nil, fmt.Errorf("run: %w", err)
	}
	if spec.LogPath == "" || !filepath.IsAbs(spec.LogPath) {
		return nil, fmt.Errorf("run %s: LogPath must be an absolute path", spec.ID)
	}
	for k := range spec.Labels {
		if strings.HasPrefix(k, labelPrefix) {
			return nil, fmt.Errorf("run %s: label %q uses the engine's reserved prefix", spec.ID, k)
		}
	}
	unlock := e.lock(spec.ID)
	defer unlock()
	ctx = e.ctx(ctx)
	cleanupCtx := context.WithoutCancel(ctx)

	ref, err := NormalizeRef(spec.Image)
	if err != nil {
		return nil, createError(spec.ID, ReasonCreateConfigError, err)
	}
	image, err := e.client.GetImage(ctx, ref)
	if errdefs.IsNotFound(err) {
		return nil, createError(spec.ID, ReasonImageNeverPulled, fmt.Errorf("%s: %w", ref, ErrImageNotPresent))
	}
	if err != nil {
		return nil, fmt.Errorf("run %s: image %s: %w", spec.ID, ref, err)
	}
	if ok, err := image.IsUnpacked(ctx, e.snapshotter); err == nil && !ok {
		if err := image.Unpack(ctx, e.snapshotter); err != nil {
			return nil, fmt.Errorf("run %s: unpack %s: %w", spec.ID, ref, err)
		}
	}
	if _, err := e.client.LoadContainer(ctx, spec.ID); err == nil {
		return nil, fmt.Errorf("run %s: container exists; stop it first: %w", spec.ID, errdefs.ErrAlreadyExists)
	}

	if err := preserveLog(spec.LogPath); err != nil {
		return nil, fmt.Errorf("run %s: %w", spec.ID, err)
	}

	labels := map[string]string{LabelLogPath: spec.LogPath, LabelImage: ref}
	for k, v := range spec.Labels {
		labels[k] = v
	}

	var ip net.IP
	nsPath := ""
	network := spec.Network
	if network == nil {
		network = e.network
	}
	if network != nil {
		e.AddNetwork(network)
		nsPath = e.netnsPath(spec.ID)
		// A namespace left by a crash between Run's steps is stale.
		_ = network.Teardown(cleanupCtx, spec.ID, nsPath)
		if err := removeNamespaces(nsPath); err != nil {
			return nil, fmt.Errorf("run %s: %w", spec.ID, err)
		}
		if err := newNamespaces(nsPath, spec.UserNS); err != nil {
			return nil, fmt.Errorf("run %s: %w", spec.ID, err)
		}
		defer func() {
			if retErr != nil {
				e.releaseNetwork(cleanupCtx, spec.ID, nsPath, network.Name())
			}
		}()
		ip, err = network.Setup(ctx, spec.ID, nsPath)
		if err != nil {
			return nil, fmt.Errorf("run %s: %w", spec.ID, err)
		}
		labels[LabelIP] = ip.String()
		labels[LabelNetNS] = nsPath
		labels[LabelNetwork] = network.Name()
	}
	if spec.UserNS != nil {
		labels[LabelUserNS] = userNSLabel(spec.UserNS)
	}

	specOpts, err := e.specOpts(spec, image, nsPath)
	if err != nil {
		return nil, createError(spec.ID, ReasonCreateConfigError, err)
	}
	container, err := e.client.NewContainer(ctx, spec.ID,
		client.WithImage(image),
		client.WithSnapshotter(e.snapshotter),
		e.snapshot(spec, image),
		client.WithRuntime(e.runtime, e.runtimeOptions()),
		client.WithNewSpec(specOpts...),
		client.WithContainerLabels(labels),
	)
	if err != nil {
		return nil, createError(spec.ID, ReasonCreateConfigError, err)
	}
	defer func() {
		if retErr != nil {
			if err := container.Delete(cleanupCtx, client.WithSnapshotCleanup); err != nil {
				e.log.Warn("cleanup after failed run", "id", spec.ID, "err", err)
			}
		}
	}()

	// The shim opens LogPath itself (O_APPEND) and writes to it for the
	// container's whole life, so the log keeps flowing while berth is
	// restarted and needs no copying goroutine in berth.
	task, err := container.NewTask(ctx, cio.LogFile(spec.LogPath))
	if err != nil {
		return nil, createError(spec.ID, ReasonCreateError, err)
	}
	if err := task.Start(ctx); err != nil {
		if _, derr := task.Delete(cleanupCtx, client.WithProcessKill); derr != nil {
			e.log.Warn("cleanup after failed start", "id", spec.ID, "err", derr)
		}
		return nil, createError(spec.ID, ReasonRunError, err)
	}
	e.log.Debug("container started", "id", spec.ID, "pid", task.Pid(), "ip", ip)
	return &Running{ID: spec.ID, IP: ip, PID: task.Pid()}, nil
}

// snapshot is the container's root file system: the image's, or with a
// user namespace a copy of it owned by the mapped ids (made once per image
// and range, then shared by the range's containers like the image's is).
func (e *Engine) snapshot(spec InstanceSpec, image client.Image) client.NewContainerOpts {
	if spec.UserNS == nil {
		return client.WithNewSnapshot(spec.ID, image)
	}
	m := spec.UserNS.mappings()
	return client.WithUserNSRemappedSnapshot(spec.ID, image, m, m)
}

// specOpts turns an InstanceSpec into OCI spec options.
func (e *Engine) specOpts(spec InstanceSpec, image client.Image, nsPath string) ([]oci.SpecOpts, error) {
	opts := []oci.SpecOpts{oci.WithImageConfig(image)}
	switch {
	case len(spec.Cmd) > 0:
		opts = append(opts, oci.WithProcessArgs(append(append([]string{}, spec.Cmd...), spec.Args...)...))
	case len(spec.Args) > 0:
		opts = append(opts, oci.WithImageConfigArgs(image, spec.Args))
	}
	opts = append(opts, oci.WithEnv(spec.Env))
	hostname := spec.Hostname
	if hostname == "" {
		hostname = spec.ID
		if len(hostname) > 63 {
			hostname = hostname[:63]
		}
	}
	opts = append(opts, oci.WithHostname(hostname))
	// Known cgroup path: the OOM check in Exits reads its counters.
	opts = append(opts, oci.WithCgroup(e.cgroupPath(spec.ID)))

	if spec.Memory > 0 {
		opts = append(opts, oci.WithMemoryLimit(uint64(spec.Memory)))
		if swapAccounting() {
			// memory+swap = memory: the limit is a real limit, as in
			// Kubernetes, not a trigger to start swapping.
			opts = append(opts, oci.WithMemorySwap(spec.Memory))
		}
	}
	if spec.CPU > 0 {
		const period = 100000 // µs
		quota := max(spec.CPU*period/1000, 1000)
		opts = append(opts, oci.WithCPUCFS(quota, period), oci.WithCPUShares(uint64(max(spec.CPU*1024/1000, 2))))
	}

	var mounts []specs.Mount
	for _, m := range spec.Mounts {
		if !filepath.IsAbs(m.Source) || !filepath.IsAbs(m.Target) {
			return nil, fmt.Errorf("mount %s -> %s: both paths must be absolute", m.Source, m.Target)
		}
		if err := os.MkdirAll(m.Source, 0o755); err != nil {
			return nil, fmt.Errorf("mount source: %w", err)
		}
		if !m.ReadOnly {
			if err := chownVolume(m.Source, spec.UserNS); err != nil {
				return nil, err
			}
		}
		mode := "rw"
		if m.ReadOnly {
			mode = "ro"
		}
		mounts = append(mounts, specs.Mount{
			Destination: m.Target,
			Type:        "bind",
			Source:      m.Source,
			Options:     []string{"rbind", "rprivate", mode},
		})
	}
	if len(mounts) > 0 {
		opts = append(opts, oci.WithMounts(mounts))
	}
	if nsPath != "" {
		opts = append(opts, oci.WithLinuxNamespace(specs.LinuxNamespace{Type: specs.NetworkNamespace, Path: nsPath}))
	}
	if spec.UserNS != nil {
		m := spec.UserNS.mappings()
		opts = append(opts, oci.WithUserNamespace(m, m))
		if nsPath != "" {
			opts = append(opts, oci.WithLinuxNamespace(specs.LinuxNamespace{Type: specs.UserNamespace, Path: userNSPath(nsPath)}))
		}
	}
	return append(opts, confinement()...), nil
}

// runtimeOptions keep runc's state under the engine's state directory
// (instead of /run/containerd/runc) for the runc shim; other runtimes get
// their defaults.
func (e *Engine) runtimeOptions() any {
	if e.runtime != DefaultRuntime {
		return nil
	}
	return &runcoptions.Options{Root: e.runcRoot}
}

// cgroupPath is the container's cgroup, relative to each hierarchy.
func (e *Engine) cgroupPath(id string) string { return "/" + e.namespace + "/" + id }

// swapAccounting reports whether cgroup v1 memory+swap limits exist
// (kernels booted without swapaccount=1 lack them, and runc fails when
// asked to set them). On cgroup v2 swap is left alone: whether
// memory.swap.max exists depends on the kernel configuration.
func swapAccounting() bool {
	_, err := os.Stat("/sys/fs/cgroup/memory/memory.memsw.limit_in_bytes")
	return err == nil
}

// releaseNetwork detaches id from the network named (every network the
// engine knows when the name is unknown) and removes its namespace.
func (e *Engine) releaseNetwork(ctx context.Context, id, nsPath, network string) {
	for _, n := range e.networksNamed(network) {
		if err := n.Teardown(ctx, id, nsPath); err != nil {
			e.log.Warn("network teardown", "id", id, "network", n.Name(), "err", err)
		}
	}
	if nsPath != "" {
		if err := removeNamespaces(nsPath); err != nil {
			e.log.Warn("remove network namespace", "id", id, "err", err)
		}
	}
}

// Stop ends a container: SIGTERM, up to grace for it to exit, SIGKILL,
// then it deletes the task, detaches the network and deletes the
// container with its snapshot. Stopping a container that does not exist
// (any more) is not an error; leftovers of a half-removed one are cleaned.
func (e *Engine) Stop(ctx context.Context, id string, grace time.Duration) error {
	unlock := e.lock(id)
	defer unlock()
	ctx = e.ctx(ctx)
	cleanupCtx := context.WithoutCancel(ctx)

	nsPath, network := "", ""
	if e.networked() {
		nsPath = e.netnsPath(id)
	}
	container, err := e.client.LoadContainer(ctx, id)
	if errdefs.IsNotFound(err) {
		e.releaseNetwork(cleanupCtx, id, nsPath, "")
		return nil
	}
	if err != nil {
		return fmt.Errorf("stop %s: %w", id, err)
	}
	if labels, err := container.Labels(ctx); err == nil && labels[LabelNetNS] != "" {
		nsPath, network = labels[LabelNetNS], labels[LabelNetwork]
	}

	task, err := container.Task(ctx, nil)
	switch {
	case errdefs.IsNotFound(err):
	case err != nil:
		return fmt.Errorf("stop %s: load task: %w", id, err)
	default:
		if err := e.killTask(ctx, task, grace); err != nil {
			return fmt.Errorf("stop %s: %w", id, err)
		}
		if _, err := task.Delete(cleanupCtx, client.WithProcessKill); err != nil && !errdefs.IsNotFound(err) {
			return fmt.Errorf("stop %s: delete task: %w", id, err)
		}
	}
	e.releaseNetwork(cleanupCtx, id, nsPath, network)
	if err := container.Delete(cleanupCtx, client.WithSnapshotCleanup); err != nil && !errdefs.IsNotFound(err) {
		return fmt.Errorf("stop %s: delete container: %w", id, err)
	}
	return nil
}

// killTask sends SIGTERM and waits up to grace, then SIGKILLs every process
// of the container and waits for the exit.
func (e *Engine) killTask(ctx context.Context, task client.Task, grace time.Duration) error {
	st, err := task.Status(ctx)
	if err != nil {
		if errdefs.IsNotFound(err) {
			return nil
		}
		return fmt.Errorf("task status: %w", err)
	}
	if st.Status == client.Stopped {
		return nil
	}
	waitCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	exited, err := task.Wait(waitCtx)
	if err != nil {
		return fmt.Errorf("wait: %w", err)
	}
	if st.Status == client.Paused {
		_ = task.Resume(ctx)
	}
	if grace > 0 && st.Status != client.Created {
		if err := task.Kill(ctx, syscall.SIGTERM); err != nil && !errdefs.IsNotFound(err) {
			return fmt.Errorf("SIGTERM: %w", err)
		}
		select {
		case <-exited:
			return nil
		case <-time.After(grace):
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	if err := task.Kill(ctx, syscall.SIGKILL, client.WithKillAll); err != nil && !errdefs.IsNotFound(err) {
		return fmt.Errorf("SIGKILL: %w", err)
	}
	select {
	case <-exited:
		return nil
	case <-time.After(30 * time.Second):
		return errors.New("task did not exit 30s after SIGKILL")
	case <-ctx.Done():
		return ctx.Err()
	}
}

// List reports every container of the engine's namespace.
func (e *Engine) List(ctx context.Context) ([]Info, error) {
	ctx = e.ctx(ctx)
	list, err := e.client.Containers(ctx)
	if err != nil {
		return nil, fmt.Errorf("list containers: %w", err)
	}
	infos := make([]Info, 0, len(list))
	for _, c := range list {
		meta, err := c.Info(ctx, client.WithoutRefreshedMetadata)
		if err != nil {
			if errdefs.IsNotFound(err) {
				continue // removed meanwhile
			}
			return nil, fmt.Errorf("container %s: %w", c.ID(), err)
		}
		infos = append(infos, e.info(ctx, c, meta))
	}
	return infos, nil
}

// Inspect reports one container; errdefs.ErrNotFound if it does not exist.
func (e *Engine) Inspect(ctx context.Context, id string) (Info, error) {
	ctx = e.ctx(ctx)
	c, err := e.client.LoadContainer(ctx, id)
	if err != nil {
		return Info{}, fmt.Errorf("inspect %s: %w", id, err)
	}
	meta, err := c.Info(ctx, client.WithoutRefreshedMetadata)
	if err != nil {
		return Info{}, fmt.Errorf("inspect %s: %w", id, err)
	}
	return e.info(ctx, c, meta), nil
}

func (e *Engine) info(ctx context.Context, c client.Container, meta containers.Container) Info {
	info := Info{
		ID:        meta.ID,
		Image:     meta.Labels[LabelImage],
		Labels:    map[string]string{},
		Status:    StatusNone,
		CreatedAt: meta.CreatedAt,
		LogPath:   meta.Labels[LabelLogPath],
		IP:        net.ParseIP(meta.Labels[LabelIP]),
		Network:   meta.Labels[LabelNetwork],
	}
	if info.Image == "" {
		info.Image = meta.Image
	}
	for k, v := range meta.Labels {
		if !strings.HasPrefix(k, labelPrefix) {
			info.Labels[k] = v
		}
	}
	task, err := c.Task(ctx, nil)
	if err != nil {
		if !errdefs.IsNotFound(err) {
			info.Status = StatusUnknown
		}
		return info
	}
	info.PID = task.Pid()
	st, err := task.Status(ctx)
	if err != nil {
		info.Status = StatusUnknown
		return info
	}
	switch st.Status {
	case client.Running:
		info.Status = StatusRunning
	case client.Stopped:
		info.Status = StatusStopped
		info.ExitCode = int(st.ExitStatus)
		info.ExitedAt = st.ExitTime
	case client.Created:
		info.Status = StatusCreated
	case client.Paused, client.Pausing:
		info.Status = StatusPaused
	default:
		info.Status = StatusUnknown
	}
	return info
}

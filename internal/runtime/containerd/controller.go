package containerd

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/berth-platform/berth/internal/model"
	"github.com/berth-platform/berth/internal/runtime"
	"github.com/berth-platform/berth/internal/runtime/probe"
)

// stopGrace is how long an instance has between SIGTERM and SIGKILL.
const stopGrace = 10 * time.Second

// drainDelay is how long a terminating instance keeps serving after it
// left the balancing.
const drainDelay = time.Second

// controller runs one component: it is the embedded engine's Deployment
// controller and kubelet for that component. One goroutine owns the state;
// readers take mu.
type controller struct {
	d  *Driver
	id string

	mu        sync.Mutex
	spec      runtime.ComponentSpec
	hash      string
	prev      *runtime.ComponentSpec // what runs while a rollout is in progress
	prevHash  string
	instances map[string]*instance
	rollout   runtime.RolloutState
	started   time.Time // of the current rollout
	pulls     map[string]*pullState
	adopted   []adoptee
	// removed is set once Driver.Remove has stopped every instance: the
	// loop ends, or its next round would bring back the service addresses
	// Remove frees.
	removed bool

	wake chan struct{}
	done chan struct{}

	reservedCPU atomic.Int64 // millicores held by live instances
}

// pullState is the outcome of pulling one image reference.
type pullState struct {
	running bool
	done    bool
	err     error
	retryAt time.Time
	backoff time.Duration
	failed  int
}

func newController(d *Driver, id string, adopted []adoptee) *controller {
	c := &controller{
		d: d, id: id, instances: map[string]*instance{}, pulls: map[string]*pullState{},
		adopted: adopted, wake: make(chan struct{}, 1), done: make(chan struct{}),
	}
	return c
}

// specHash identifies what an instance runs; a change rolls instances over.
func specHash(s runtime.ComponentSpec) string {
	b, _ := json.Marshal(struct {
		Version      int64
		Image        string
		Cmd, Args    []string
		Env          []string
		Memory, CPU  int64
		Ports        []model.Port
		Volumes      []model.Volume
		Readiness    *model.Probe
		Liveness     *model.Probe
		RestartToken string
	}{s.Version, s.Image, s.Cmd, s.Args, s.Env, s.Memory, s.CPU, s.Ports, s.Volumes, s.Readiness, s.Liveness, s.RestartToken})
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])[:16]
}

func (c *controller) poke() {
	select {
	case c.wake <- struct{}{}:
	default:
	}
}

// apply records a new desired state.
func (c *controller) apply(spec runtime.ComponentSpec) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if spec.ReadyTimeout == 0 {
		spec.ReadyTimeout = 5 * time.Minute
	}
	h := specHash(spec)
	first := c.hash == ""
	if first {
		c.adopt(spec, h)
	}
	if h != c.hash && !first && len(c.instances) > 0 {
		old := c.spec
		c.prev, c.prevHash = &old, c.hash
	}
	// A new apply (a deploy, new credentials) retries a failed pull at once.
	if ps := c.pulls[spec.Image]; ps != nil && ps.err != nil && !ps.running {
		delete(c.pulls, spec.Image)
	}
	changed := h != c.hash || spec.Instances != c.spec.Instances
	c.spec, c.hash = spec, h
	if changed || c.rollout.Phase == "" || c.rollout.Phase == runtime.RolloutFailed {
		c.rollout = runtime.RolloutState{Phase: runtime.RolloutProgress, Version: spec.Version}
		c.started = time.Now()
	}
	c.progress("desired: %d instance(s) of version %d (%s)", spec.Instances, spec.Version, spec.Image)
	c.poke()
}

// adopt takes over the containers a previous berth left running.
func (c *controller) adopt(spec runtime.ComponentSpec, hash string) {
	for _, info := range c.adopted {
		in := &instance{id: info.ID, ordinal: info.Ordinal, version: info.Version, hash: info.Hash, ip: info.IP, started: info.StartedAt}
		if info.Running {
			in.phase = phaseRunning
			// It served before the restart: keep it in service while its
			// probes confirm.
			if spec.Readiness != nil && info.Hash == hash {
				in.readiness = probe.NewTracker(spec.Readiness, true)
			}
			if spec.Liveness != nil && info.Hash == hash {
				in.liveness = probe.NewTracker(spec.Liveness, true)
			}
		} else {
			in.phase = phaseBackOff
			in.lastExit = &exitRecord{code: info.ExitCode, at: info.ExitedAt}
			in.retryAt = time.Now()
		}
		c.instances[in.id] = in
		slog.Info("adopted instance", "component", c.id, "instance", in.id, "running", info.Running)
	}
	c.adopted = nil
}

func (c *controller) progress(format string, args ...any) {
	if c.spec.Progress != nil {
		c.spec.Progress(fmt.Sprintf(format, args...))
	}
}

// run is the controller's loop.
func (c *controller) run(ctx context.Context) {
	defer close(c.done)
	timer := time.NewTimer(loopPeriod)
	defer timer.Stop()
	for {
		c.reconcile(ctx)
		if c.isRemoved() {
			return
		}
		timer.Reset(c.nextDue())
		select {
		case <-ctx.Done():
			return
		case <-c.wake:
		case <-timer.C:
		}
	}
}

// loopPeriod is how often the controller looks at its instances at least.
const loopPeriod = 500 * time.Millisecond

// A starting instance's readiness is checked every startupProbeInterval
// for its first startupFastWindow, whatever the probe's period: an app
// listens a few milliseconds after its start, and with the default TCP
// check every deploy would otherwise wait a whole period (1 s) for it.
const (
	startupProbeInterval = 100 * time.Millisecond
	startupFastWindow    = 10 * time.Second
)

// nextDue is how long until the next probe of an instance that is not
// ready yet is due, at most loopPeriod.
func (c *controller) nextDue() time.Duration {
	c.mu.Lock()
	defer c.mu.Unlock()
	due := loopPeriod
	for _, in := range c.instances {
		if in.phase == phaseRunning && in.readiness != nil && !in.readiness.OK() {
			due = min(due, max(time.Until(in.nextProbe), 10*time.Millisecond))
		}
	}
	return due
}

// exited records the end of an instance's process.
func (c *controller) exited(e Exit) {
	c.mu.Lock()
	defer c.mu.Unlock()
	in, ok := c.instances[e.ID]
	if !ok || in.phase == phaseTerminating {
		return
	}
	now := time.Now()
	in.lastExit = &exitRecord{code: e.ExitCode, oom: e.OOMKilled, at: e.ExitedAt, logs: c.d.lastLogLines(c.id, in.id, 50)}
	in.restarts++
	in.retryAt = now.Add(in.nextBackoff(now))
	in.phase = phaseBackOff
	what := fmt.Sprintf("exited with code %d", e.ExitCode)
	if e.OOMKilled {
		what = fmt.Sprintf("was killed for using more than its memory limit (%s)", model.FormatBytes(c.spec.Memory))
	}
	c.progress("instance %s %s; restarting in %s", in.id, what, in.backoff)
	c.poke()
}

func (c *controller) isRemoved() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.removed
}

func (c *controller) reconcile(ctx context.Context) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.hash == "" || c.removed {
		return
	}
	now := time.Now()
	if c.spec.Instances > 0 && !c.imageReady(ctx, c.spec, now) {
		c.updateServices()
		return
	}
	cur, old := c.split()
	if len(old) == 0 {
		c.scaleTo(cur, c.spec.Instances)
	} else {
		c.roll(cur, old, now)
	}
	c.tend(ctx, now)
	c.updateServices()
	c.concludeRollout(now)
	c.publishCPU()
}

// imageReady pulls the image in the background and reports whether it is
// there. A definite failure fails the rollout at once, or rolls back to
// the version still serving.
func (c *controller) imageReady(ctx context.Context, spec runtime.ComponentSpec, now time.Time) bool {
	ps := c.pulls[spec.Image]
	if ps == nil {
		ps = &pullState{}
		c.pulls[spec.Image] = ps
		// Like Kubernetes' IfNotPresent: a pinned image already here is
		// not fetched again; "latest" (or no tag) is.
		if !floatingTag(spec.Image) {
			if ok, err := c.d.engine.HasImage(ctx, spec.Image); err == nil && ok {
				ps.done = true
			}
		}
	}
	if ps.done && ps.err == nil {
		return true
	}
	if !ps.running && now.After(ps.retryAt) {
		ps.running = true
		c.progress("pulling image %s", spec.Image)
		go func(image string, auth *runtime.RegistryAuth, progress func(string)) {
			err := c.d.engine.Pull(ctx, image, auth, progress)
			c.mu.Lock()
			ps.running, ps.done, ps.err = false, true, err
			if err != nil {
				ps.failed++
				if ps.backoff == 0 {
					ps.backoff = backoffStart
				} else {
					ps.backoff = min(ps.backoff*2, backoffMax)
				}
				ps.retryAt = time.Now().Add(ps.backoff)
			}
			c.mu.Unlock()
			c.poke()
		}(spec.Image, spec.Registry, c.spec.Progress)
	}
	if ps.err != nil {
		advice, msg := pullAdvice(ps.err), pullMessage(ps.err)
		cur, old := c.split()
		if len(old) > 0 && c.prev != nil {
			c.rollback(fmt.Sprintf("the image %s could not be pulled: %s", spec.Image, msg), "ErrImagePull")
			return false
		}
		if len(old) == 0 {
			c.scaleTo(cur, spec.Instances)
			cur, _ = c.split()
		}
		for _, in := range cur {
			if in.phase == phaseScheduling || in.phase == phasePulling || in.phase == phasePullBackOff {
				in.phase = phasePullBackOff
				in.reason = "ImagePullBackOff"
				if ps.failed == 1 {
					in.reason = "ErrImagePull"
				}
				in.message = fmt.Sprintf("%s (next try in %s)", msg, time.Until(ps.retryAt).Round(time.Second))
				in.advice = advice
			}
		}
		c.rollout = runtime.RolloutState{Phase: runtime.RolloutFailed, Version: spec.Version, Reason: "ErrImagePull", Message: msg + "; " + advice}
		if ps.done && !ps.running && now.After(ps.retryAt) {
			ps.done = false
		}
		return false
	}
	cur, old := c.split()
	if len(old) == 0 {
		c.scaleTo(cur, spec.Instances)
	} else if len(cur) == 0 {
		c.newInstance()
	}
	for _, in := range c.instances {
		if in.hash == c.hash && in.phase == phaseScheduling {
			in.phase, in.message = phasePulling, "pulling image "+spec.Image
		}
	}
	return false
}

// pullMessage and pullAdvice split a pull error into what happened and
// what to do about it.
func pullMessage(err error) string {
	var pe *PullError
	if errors.As(err, &pe) {
		kind := "pull failed"
		if pe.Kind != nil {
			kind = pe.Kind.Error()
		}
		return fmt.Sprintf("pull %s: %s: %v", pe.Ref, kind, pe.Err)
	}
	return err.Error()
}

func pullAdvice(err error) string {
	var pe *PullError
	if errors.As(err, &pe) && pe.Advice != "" {
		return pe.Advice
	}
	return "check the image reference and the registry"
}

// split sorts live instances into those of the desired spec and the rest.
func (c *controller) split() (cur, old []*instance) {
	for _, in := range c.sorted() {
		if in.phase == phaseTerminating {
			continue
		}
		if in.hash == c.hash {
			cur = append(cur, in)
		} else {
			old = append(old, in)
		}
	}
	return cur, old
}

func (c *controller) sorted() []*instance {
	out := make([]*instance, 0, len(c.instances))
	for _, in := range c.instances {
		out = append(out, in)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ordinal < out[j].ordinal })
	return out
}

// scaleTo adds or removes instances of the current spec to reach n.
func (c *controller) scaleTo(cur []*instance, n int) {
	for len(cur) < n {
		in := c.newInstance()
		cur = append(cur, in)
	}
	if len(cur) > n {
		// Remove the least useful first: not ready, then highest ordinal.
		sort.SliceStable(cur, func(i, j int) bool {
			if cur[i].ready() != cur[j].ready() {
				return !cur[i].ready()
			}
			return cur[i].ordinal > cur[j].ordinal
		})
		for _, in := range cur[:len(cur)-n] {
			c.terminate(in)
		}
	}
}

func (c *controller) newInstance() *instance {
	used := map[int]bool{}
	for _, in := range c.instances {
		used[in.ordinal] = true
	}
	ord := 0
	for used[ord] {
		ord++
	}
	in := &instance{
		id: fmt.Sprintf("%s-%d-%s", c.spec.Alias, ord, model.NewID("i")[2:8]), ordinal: ord,
		version: c.spec.Version, hash: c.hash, phase: phaseScheduling,
	}
	c.instances[in.id] = in
	return in
}

// roll replaces old instances by new ones, one at a time: a new one starts,
// and only once it is ready does an old one stop.
func (c *controller) roll(cur, old []*instance, now time.Time) {
	ready := 0
	starting := false
	for _, in := range cur {
		if in.ready() {
			ready++
		} else {
			starting = true
		}
	}
	if len(cur) < c.spec.Instances && !starting {
		c.newInstance()
		c.progress("starting a new instance of version %d (%d of %d)", c.spec.Version, len(cur)+1, c.spec.Instances)
	}
	// Keep old instances serving until enough new ones are ready.
	excess := len(old) + ready - c.spec.Instances
	for i := 0; i < len(old) && excess > 0; i++ {
		c.progress("instance %s of version %d stops: a new one is ready", old[i].id, old[i].version)
		c.terminate(old[i])
		excess--
	}
	if ready >= c.spec.Instances {
		for _, in := range old {
			c.terminate(in)
		}
	}
	if now.Sub(c.started) > c.spec.ReadyTimeout && ready < c.spec.Instances {
		why := "no new instance became ready"
		for _, in := range cur {
			if !in.ready() {
				v := in.view(c.spec.Memory, c.spec.Alias)
				why = fmt.Sprintf("instance %s is %s: %s %s", in.id, v.Status, v.Reason, v.Message)
				break
			}
		}
		c.rollback(fmt.Sprintf("version %d was not ready within %s: %s", c.spec.Version, c.spec.ReadyTimeout, why), "ProgressDeadlineExceeded")
	}
}

// rollback returns to the version that still serves.
func (c *controller) rollback(message, reason string) {
	failed := c.spec
	for _, in := range c.instances {
		if in.hash == c.hash {
			c.terminate(in)
		}
	}
	c.spec, c.hash = *c.prev, c.prevHash
	c.spec.Progress = failed.Progress
	c.prev, c.prevHash = nil, ""
	c.rollout = runtime.RolloutState{Phase: runtime.RolloutRolledBack, Version: failed.Version, Reason: reason, Message: message}
	c.progress("rolled back to version %d: %s", c.spec.Version, message)
}

func (c *controller) concludeRollout(now time.Time) {
	if c.rollout.Phase != runtime.RolloutProgress {
		return
	}
	cur, old := c.split()
	ready := 0
	for _, in := range cur {
		if in.ready() {
			ready++
		}
	}
	if len(old) == 0 && ready >= c.spec.Instances && len(cur) == c.spec.Instances {
		c.rollout = runtime.RolloutState{Phase: runtime.RolloutComplete, Version: c.spec.Version}
		c.prev, c.prevHash = nil, ""
		return
	}
	c.rollout.Message = fmt.Sprintf("%d of %d instance(s) of version %d ready", ready, c.spec.Instances, c.spec.Version)
	// A rollout with nothing to fall back to fails on its deadline too.
	if c.prev == nil && now.Sub(c.started) > c.spec.ReadyTimeout && c.spec.Instances > 0 {
		why := ""
		for _, in := range cur {
			if !in.ready() {
				v := in.view(c.spec.Memory, c.spec.Alias)
				why = fmt.Sprintf(": instance %s is %s (%s) %s", in.id, v.Status, v.Reason, v.Message)
				break
			}
		}
		c.rollout = runtime.RolloutState{Phase: runtime.RolloutFailed, Version: c.spec.Version, Reason: "ProgressDeadlineExceeded",
			Message: fmt.Sprintf("version %d was not ready within %s%s", c.spec.Version, c.spec.ReadyTimeout, why)}
	}
}

// terminate takes an instance out of service and stops it in the background.
func (c *controller) terminate(in *instance) {
	if in.phase == phaseTerminating {
		return
	}
	hadContainer := in.phase == phaseRunning || in.phase == phaseStarting || in.phase == phaseBackOff || in.phase == phaseCreateError
	in.phase = phaseTerminating
	if !hadContainer {
		delete(c.instances, in.id)
		return
	}
	// Out of the balancing first, then a short drain so that requests
	// already on their way (the gateway's, the service proxy's) finish
	// before the instance gets its SIGTERM.
	c.updateServices()
	go func() {
		time.Sleep(drainDelay)
		ctx, cancel := context.WithTimeout(context.Background(), stopGrace+30*time.Second)
		defer cancel()
		if err := c.d.engine.Stop(ctx, in.id, stopGrace); err != nil {
			slog.Warn("stop instance", "instance", in.id, "err", err)
		}
		c.mu.Lock()
		delete(c.instances, in.id)
		c.mu.Unlock()
		c.poke()
	}()
}

// tend starts, restarts and probes instances.
func (c *controller) tend(ctx context.Context, now time.Time) {
	for _, in := range c.sorted() {
		spec := c.spec
		if in.hash != c.hash && c.prev != nil && in.hash == c.prevHash {
			spec = *c.prev
		}
		switch in.phase {
		case phaseScheduling, phasePulling, phasePullBackOff:
			if in.hash != c.hash {
				continue
			}
			if msg := c.d.unschedulable(spec); msg != "" {
				in.phase, in.message = phaseScheduling, msg
				continue
			}
			c.start(ctx, in, spec)
		case phaseCreateError, phaseBackOff:
			if now.After(in.retryAt) {
				c.start(ctx, in, spec)
			}
		case phaseRunning:
			c.probe(ctx, in, spec, now)
		}
	}
}

// unlocked runs fn without the controller's lock, so that readers (the
// API's status calls) never wait for a container to start or a probe to
// time out. Callers re-check the instance afterwards: it may have been
// terminated meanwhile.
func (c *controller) unlocked(fn func()) {
	c.mu.Unlock()
	defer c.mu.Lock()
	fn()
}

// current reports whether in is still the live record of its instance.
func (c *controller) current(in *instance, phase instancePhase) bool {
	return c.instances[in.id] == in && in.phase == phase
}

// start (re)creates the instance's container.
func (c *controller) start(ctx context.Context, in *instance, spec runtime.ComponentSpec) {
	restart := in.phase == phaseBackOff || in.phase == phaseCreateError
	in.phase = phaseStarting
	is := c.d.instanceSpec(c.id, in, spec)
	var running *Running
	var err error
	c.unlocked(func() {
		if restart {
			// The old container must go before its id is used again; Run
			// keeps its log as the previous one.
			if err := c.d.engine.Stop(ctx, in.id, 0); err != nil {
				slog.Warn("remove exited container", "instance", in.id, "err", err)
			}
		}
		if err = c.d.iso.place(&is, spec.Team); err == nil {
			running, err = c.d.engine.Run(ctx, is)
		}
	})
	if !c.current(in, phaseStarting) {
		// Terminated while starting: terminate's Stop removes what Run made.
		return
	}
	if err != nil {
		now := time.Now()
		in.phase, in.message = phaseCreateError, err.Error()
		in.retryAt = now.Add(in.nextBackoff(now))
		c.progress("instance %s could not be created: %v", in.id, err)
		return
	}
	in.ip, in.started = running.IP.String(), time.Now()
	in.phase = phaseRunning
	in.readiness, in.liveness = nil, nil
	if spec.Readiness != nil {
		in.readiness = probe.NewTracker(spec.Readiness, false)
	}
	if spec.Liveness != nil {
		in.liveness = probe.NewTracker(spec.Liveness, true)
	}
	in.nextProbe = in.started
	if spec.Readiness != nil {
		in.nextProbe = in.started.Add(probe.InitialDelay(spec.Readiness))
	}
	c.progress("instance %s started at %s", in.id, in.ip)
}

// probe runs the instance's due probes; a failed liveness restarts it.
func (c *controller) probe(ctx context.Context, in *instance, spec runtime.ComponentSpec, now time.Time) {
	if now.Before(in.nextProbe) || (in.readiness == nil && in.liveness == nil) {
		return
	}
	id, ip := in.id, in.ip
	exec := func(ctx context.Context, cmd []string) (int, error) {
		return c.d.engine.Exec(ctx, id, runtime.ExecOptions{Cmd: cmd})
	}
	checkLiveness := in.liveness != nil && now.Sub(in.started) >= probe.InitialDelay(spec.Liveness)
	var readyErr, liveErr error
	c.unlocked(func() {
		// A refused port is explained by what the instance listens on.
		if spec.Readiness != nil {
			readyErr = c.d.explainRefused(ctx, id, spec.Readiness.Port, probe.Check(ctx, spec.Readiness, ip, exec))
		}
		if checkLiveness {
			liveErr = c.d.explainRefused(ctx, id, spec.Liveness.Port, probe.Check(ctx, spec.Liveness, ip, exec))
		}
	})
	if !c.current(in, phaseRunning) {
		return
	}
	period := time.Hour
	if in.readiness != nil {
		was := in.readiness.OK()
		if ok := in.readiness.Observe(readyErr); ok && !was {
			c.progress("instance %s is ready", in.id)
		}
		period = min(period, probe.Period(spec.Readiness))
		if !in.readiness.OK() && now.Sub(in.started) < startupFastWindow {
			period = min(period, startupProbeInterval)
		}
	}
	if in.liveness != nil && checkLiveness {
		if !in.liveness.Observe(liveErr) {
			c.progress("instance %s failed its liveness probe %d times (%v); restarting it", in.id, in.liveness.Failures(), in.liveness.LastError())
			in.restarts++
			in.lastExit = &exitRecord{code: 137, at: now, logs: c.d.lastLogLines(c.id, in.id, 50), liveness: fmt.Sprint(in.liveness.LastError())}
			in.phase = phaseBackOff
			in.retryAt = now.Add(in.nextBackoff(now))
			go func(id string) { _ = c.d.engine.Stop(context.Background(), id, stopGrace) }(in.id)
			return
		}
	}
	if in.liveness != nil {
		period = min(period, probe.Period(spec.Liveness))
	}
	in.nextProbe = now.Add(period)
}

// view reports the instances, oldest ordinal first.
func (c *controller) view() []model.Instance {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := []model.Instance{}
	for _, in := range c.sorted() {
		out = append(out, in.view(c.spec.Memory, c.spec.Alias))
	}
	return out
}

func (c *controller) rolloutState() runtime.RolloutState {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.rollout
}

// readyBackends lists ready instances' addresses for a port.
func (c *controller) readyBackends(port int) []string {
	var out []string
	for _, in := range c.sorted() {
		if in.ready() && in.ip != "" {
			out = append(out, fmt.Sprintf("%s:%d", in.ip, port))
		}
	}
	return out
}

func (c *controller) updateServices() {
	for _, p := range c.spec.Ports {
		if p.Protocol == model.ProtoUDP {
			continue
		}
		c.d.services.set(c.id, p.Port, c.readyBackends(p.Port))
	}
}

func (c *controller) instanceIDs() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	var ids []string
	for id := range c.instances {
		ids = append(ids, id)
	}
	return ids
}

// owns reports whether id is one of the component's instances.
func (c *controller) owns(id string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	_, ok := c.instances[id]
	return ok
}

// publishCPU records the CPU the component's live instances hold, for
// other controllers' scheduling decisions.
func (c *controller) publishCPU() {
	var n int64
	for _, in := range c.instances {
		if in.phase == phaseRunning || in.phase == phaseStarting {
			if in.hash == c.hash {
				n += c.spec.CPU
			} else if c.prev != nil {
				n += c.prev.CPU
			}
		}
	}
	c.reservedCPU.Store(n)
}

// floatingTag reports whether ref names a tag that may move: latest, or
// none (which means latest). Digests never move.
func floatingTag(ref string) bool {
	if strings.Contains(ref, "@") {
		return false
	}
	last := ref[strings.LastIndex(ref, "/")+1:]
	i := strings.LastIndex(last, ":")
	return i < 0 || last[i+1:] == "latest"
}

package worker

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/berth-platform/berth/internal/events"
	"github.com/berth-platform/berth/internal/model"
	"github.com/berth-platform/berth/internal/runtime"
	"github.com/berth-platform/berth/internal/store"
)

// scripted is a runtime whose instances and rollout follow a script of
// the time since the last Apply and the version it applied.
type scripted struct {
	runtime.Driver
	mu      sync.Mutex
	applied []runtime.ComponentSpec
	at      time.Time
	script  func(version int64, since time.Duration) ([]model.Instance, runtime.RolloutState)
}

func (s *scripted) Apply(_ context.Context, spec runtime.ComponentSpec) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.applied = append(s.applied, spec)
	s.at = time.Now()
	return nil
}

func (s *scripted) state() ([]model.Instance, runtime.RolloutState) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var v int64
	if n := len(s.applied); n > 0 {
		v = s.applied[n-1].Version
	}
	return s.script(v, time.Since(s.at))
}

func (s *scripted) Instances(context.Context, string) ([]model.Instance, error) {
	in, _ := s.state()
	return in, nil
}

func (s *scripted) Rollout(context.Context, string) (runtime.RolloutState, error) {
	_, st := s.state()
	return st, nil
}

func (s *scripted) ServiceAddress(context.Context, string, int) (string, error) { return "", nil }

func running(id string, v int64) model.Instance {
	return model.Instance{ID: id, Version: v, Status: model.InstanceRunning, Reason: "Running"}
}

var crashLoop = model.Instance{ID: "web-0", Version: 1, Status: model.InstanceAbnormal, Reason: "CrashLoopBackOff", Restarts: 1,
	Message: "the process exited with code 3; restarted 1 time(s), back-off 10s, next try in 9s\nlast log lines:\nbye"}

func complete(v int64) runtime.RolloutState {
	return runtime.RolloutState{Phase: runtime.RolloutComplete, Version: v}
}

func waitOn(t *testing.T, d *scripted, c *model.Component) (error, []string) {
	t.Helper()
	r := NewReconciler(nil, d)
	var mu sync.Mutex
	var lines []string
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	must(t, d.Apply(ctx, Spec(c)))
	err := r.Wait(ctx, c, func(l string) { mu.Lock(); lines = append(lines, l); mu.Unlock() })
	return err, lines
}

func webComponent(settle int) *model.Component {
	return &model.Component{ID: "cmp-web", Alias: "web", Kind: model.KindImage, Image: "busybox", Desired: model.DesiredRunning,
		Instances: 1, DeployVersion: 1, SettleSeconds: settle, Memory: 16 << 20}
}

// A deploy whose instance is ready at once but exits 1 s later fails with
// the crash, instead of "ready" the moment the process started.
func TestDeployFailsWhenAnInstanceRestartsWithinTheSettleTime(t *testing.T) {
	d := &scripted{script: func(v int64, since time.Duration) ([]model.Instance, runtime.RolloutState) {
		if since < time.Second {
			return []model.Instance{running("web-0", v)}, complete(v)
		}
		return []model.Instance{crashLoop}, complete(v)
	}}
	err, _ := waitOn(t, d, webComponent(3))
	var f *Failure
	if !errors.As(err, &f) || f.Reason != "CrashLoopBackOff" || !strings.Contains(err.Error(), "exited with code 3") || !strings.Contains(err.Error(), "bye") {
		t.Fatalf("deploy of a crashing instance: %v, want CrashLoopBackOff with the exit code and last lines", err)
	}
}

// A restart between two polls is a restart all the same.
func TestRestartSeenAsARestartEvenWhenRunningAgain(t *testing.T) {
	d := &scripted{script: func(v int64, since time.Duration) ([]model.Instance, runtime.RolloutState) {
		in := running("web-0", v)
		if since > 700*time.Millisecond {
			in.Restarts = 1
		}
		return []model.Instance{in}, complete(v)
	}}
	err, _ := waitOn(t, d, webComponent(2))
	var f *Failure
	if !errors.As(err, &f) || f.Reason != "Restarted" {
		t.Fatalf("deploy of an instance that restarted: %v, want Restarted", err)
	}
}

// An instance that stays ready for the settle time makes a success, and
// not before the settle time is over.
func TestDeploySucceedsAfterTheSettleTime(t *testing.T) {
	d := &scripted{script: func(v int64, _ time.Duration) ([]model.Instance, runtime.RolloutState) {
		return []model.Instance{running("web-0", v)}, complete(v)
	}}
	start := time.Now()
	err, lines := waitOn(t, d, webComponent(1))
	if err != nil {
		t.Fatal(err)
	}
	if took := time.Since(start); took < time.Second {
		t.Errorf("success after %s, before the settle time of 1s", took)
	}
	if last := lines[len(lines)-1]; !strings.Contains(last, "stayed ready for 1s") {
		t.Errorf("last line %q", last)
	}
}

// An instance OOM-killed before it was ever ready fails the deploy at once
// with the limit, not after the rollout's 5-minute deadline.
func TestDeployFailsAtOnceWhenAnInstanceIsOOMKilled(t *testing.T) {
	d := &scripted{script: func(v int64, _ time.Duration) ([]model.Instance, runtime.RolloutState) {
		oom := model.Instance{ID: "web-0", Version: v, Status: model.InstanceAbnormal, Reason: "OOMKilled", Restarts: 1,
			Message: "the instance used more than its memory limit of 16Mi and was killed"}
		return []model.Instance{oom}, runtime.RolloutState{Phase: runtime.RolloutProgress, Version: v}
	}}
	start := time.Now()
	err, _ := waitOn(t, d, webComponent(1))
	var f *Failure
	if !errors.As(err, &f) || f.Reason != "OOMKilled" || !strings.Contains(err.Error(), "16Mi") {
		t.Fatalf("deploy of an OOM-killed instance: %v, want OOMKilled with the limit", err)
	}
	if took := time.Since(start); took > 5*time.Second {
		t.Errorf("failed after %s", took)
	}
}

// An instance that cannot be scheduled is said in the log at once, with
// the runtime's figures; the component's status says scheduling too.
func TestSchedulingIsSaidAtOnce(t *testing.T) {
	const why = "0/1 nodes are available: 1 Insufficient memory: the instance asks 64Gi, 3.1Gi is free"
	waiting := model.Instance{ID: "web-0", Version: 1, Status: model.InstanceScheduling, Reason: "Unschedulable", Message: why}
	d := &scripted{script: func(v int64, since time.Duration) ([]model.Instance, runtime.RolloutState) {
		if since < 1500*time.Millisecond {
			return []model.Instance{waiting}, runtime.RolloutState{Phase: runtime.RolloutProgress, Version: v}
		}
		return nil, runtime.RolloutState{Phase: runtime.RolloutFailed, Version: v, Reason: "ProgressDeadlineExceeded", Message: "not ready"}
	}}
	_, lines := waitOn(t, d, webComponent(1))
	if !strings.Contains(strings.Join(lines, "\n"), "instance web-0 cannot be scheduled: "+why) {
		t.Errorf("log before the deadline:\n%s", strings.Join(lines, "\n"))
	}
	status, msg := DeriveStatus(webComponent(1), []model.Instance{waiting}, runtime.RolloutState{Phase: runtime.RolloutProgress, Version: 1})
	if status != model.StatusScheduling || !strings.Contains(msg, "asks 64Gi, 3.1Gi is free") {
		t.Errorf("component status %s (%s), want scheduling with the figures", status, msg)
	}
}

// Every component with a port and no probe is ready when the port accepts
// connections, image components included; UDP cannot be probed.
func TestDefaultReadinessAppliesAtDeployTime(t *testing.T) {
	c := webComponent(0)
	c.Ports = []model.Port{{Port: 53, Protocol: model.ProtoUDP}, {Port: 8080, Protocol: model.ProtoHTTP}}
	if p := Spec(c).Readiness; p == nil || p.Type != model.ProbeTCP || p.Port != 8080 {
		t.Errorf("image component with port 8080: readiness %+v, want tcp 8080", p)
	}
	if c.Readiness != nil {
		t.Error("the default probe was written into the component")
	}
	c.Ports = c.Ports[:1]
	if p := Spec(c).Readiness; p != nil {
		t.Errorf("UDP only: readiness %+v, want none", p)
	}
	own := &model.Probe{Type: model.ProbeHTTP, Port: 9090, Path: "/health"}
	c.Readiness = own
	if p := Spec(c).Readiness; p != own {
		t.Errorf("own probe replaced by %+v", p)
	}
}

// A new version whose instances crash within the settle time is rolled
// back to the version that was serving, and the task fails with the crash.
func TestCrashingVersionIsRolledBackToTheServingOne(t *testing.T) {
	ctx := context.Background()
	st, err := store.Open(ctx, "", t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	must(t, st.CreateTeam(ctx, &model.Team{Name: "shop"}))
	must(t, st.CreateApp(ctx, &model.App{Team: "shop", Name: "web"}))
	c := &model.Component{Team: "shop", App: "web", Alias: "web", Kind: model.KindImage, Image: "busybox:1", Desired: model.DesiredRunning,
		Instances: 1, DeployVersion: 1, SettleSeconds: 2}
	must(t, st.CreateComponent(ctx, c))
	for _, img := range []string{"busybox:1", "busybox:2"} {
		must(t, st.CreateVersion(ctx, &model.Version{ComponentID: c.ID, Image: img, Status: model.VersionSuccess, CreatedAt: time.Now()}))
	}
	d := &scripted{script: func(v int64, since time.Duration) ([]model.Instance, runtime.RolloutState) {
		if v == 2 && since > 500*time.Millisecond {
			in := crashLoop
			in.Version = 2
			return []model.Instance{in}, complete(v)
		}
		return []model.Instance{running("web-0", v)}, complete(v)
	}}
	d.applied = []runtime.ComponentSpec{{Version: 1}}
	ct := NewComponentTasks(st)
	ct.Runtime = NewReconciler(st, d)
	c, err = ct.mutate(ctx, c.ID, func(c *model.Component) error { c.DeployVersion, c.Image = 2, "busybox:2"; return nil })
	must(t, err)
	ev := &model.Event{Team: "shop", Target: ComponentTarget(c), Type: TaskDeploy}
	must(t, st.CreateEvent(ctx, ev, nil))
	err = ct.realize(ctx, c, &TaskLog{log: events.NewLog(st), eventID: ev.ID}, "deploy")
	var f *Failure
	if !errors.As(err, &f) || f.Reason != "CrashLoopBackOff" || !strings.Contains(err.Error(), "rolled back to version 1") {
		t.Fatalf("deploy of a crashing version 2: %v, want CrashLoopBackOff and a rollback", err)
	}
	if last := d.applied[len(d.applied)-1]; last.Version != 1 || last.Image != "busybox:1" {
		t.Errorf("runtime left on %d (%s), want version 1", last.Version, last.Image)
	}
	got, err := st.GetComponentByID(ctx, c.ID)
	must(t, err)
	if got.DeployVersion != 1 || got.Image != "busybox:1" {
		t.Errorf("component left on version %d (%s), want 1", got.DeployVersion, got.Image)
	}
}

// The gateway is handed the dependencies a waiting component waits for,
// and only those not ready yet.
func TestGatewayStateNamesWhatAWaitingComponentWaitsFor(t *testing.T) {
	ctx := context.Background()
	st, err := store.Open(ctx, "", t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	must(t, st.CreateTeam(ctx, &model.Team{Name: "shop"}))
	must(t, st.CreateApp(ctx, &model.App{Team: "shop", Name: "web"}))
	comp := func(alias string, status model.ComponentStatus, outer bool) {
		c := &model.Component{Team: "shop", App: "web", Alias: alias, Kind: model.KindImage, Image: "busybox", Desired: model.DesiredRunning,
			Instances: 1, DeployVersion: 1, Status: status, Ports: []model.Port{{Port: 80, Protocol: model.ProtoHTTP, Alias: "P", Outer: outer}}}
		must(t, st.CreateComponent(ctx, c))
	}
	comp("front", model.StatusWaiting, true)
	comp("db", model.StatusStarting, false)
	comp("cache", model.StatusRunning, false)
	comp("other", model.StatusRunning, true)
	for _, to := range []string{"db", "cache"} {
		must(t, st.AddDependency(ctx, model.Dependency{Team: "shop", From: "front", To: to}))
	}
	state, err := NewGatewaySync(st, nil, nil, "apps.test").build(ctx)
	must(t, err)
	got := map[string][]string{}
	for _, r := range state.HTTP {
		got[r.Component] = r.WaitingFor
	}
	if w := got["shop/front"]; len(w) != 1 || w[0] != "db" {
		t.Errorf("front waits for %v, want [db]", w)
	}
	if w, ok := got["shop/other"]; !ok || w != nil {
		t.Errorf("other (not waiting): %v %v", w, ok)
	}
}

// A restart of a crash-looping component is judged by the instances it
// starts, not by the crashes of those it replaces.
func TestRestartIsJudgedByItsNewInstances(t *testing.T) {
	d := &scripted{script: func(v int64, since time.Duration) ([]model.Instance, runtime.RolloutState) {
		fresh := model.Instance{ID: "web-1", Version: v, Status: model.InstanceNotReady, Reason: "ContainerCreating"}
		if since < 700*time.Millisecond {
			return []model.Instance{crashLoop, fresh}, runtime.RolloutState{Phase: runtime.RolloutProgress, Version: v}
		}
		return []model.Instance{running("web-1", v)}, complete(v)
	}}
	c := webComponent(1)
	must(t, d.Apply(context.Background(), Spec(c)))
	err := NewReconciler(nil, d).wait(context.Background(), c, func(string) {}, map[string]bool{"web-0": true})
	if err != nil {
		t.Fatalf("restart replacing a crashed instance: %v", err)
	}
}

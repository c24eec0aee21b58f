package containerd

import (
	"context"
	"errors"
	"fmt"
	"io"
	mrand "math/rand/v2"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/berth-platform/berth/internal/model"
	"github.com/berth-platform/berth/internal/runtime"
	"github.com/berth-platform/berth/internal/runtime/cninetwork"
	"github.com/berth-platform/berth/internal/testdaemon"
)

// openTestDriver opens a driver on its own data directory, namespace,
// bridge and service interface, and removes all of it at cleanup.
func openTestDriver(t *testing.T, dir string, cfg *DriverConfig) *Driver {
	t.Helper()
	if cfg.DataDir == "" {
		*cfg = DriverConfig{DataDir: dir, Namespace: "bt-" + randHex(6), Bridge: "bt" + randHex(6), ServiceLink: "bs" + randHex(6), UserNS: cfg.UserNS}
		t.Cleanup(func() {
			testdaemon.KillProcessesMentioning(t, dir)
			removeCgroups(t, cfg.Namespace)
		})
	}
	var last error
	for range 20 {
		if cfg.Subnet == "" || errors.As(last, new(*cninetwork.OverlapError)) {
			cfg.Subnet = fmt.Sprintf("10.%d.%d.0/24", 200+randInt(8), randInt(256))
			cfg.ServiceSubnet = fmt.Sprintf("10.%d.%d.0/24", 200+randInt(8), randInt(256))
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		d, err := Open(ctx, *cfg)
		cancel()
		if err == nil {
			return d
		}
		last = err
		if !errors.As(err, new(*cninetwork.OverlapError)) {
			t.Fatal(err)
		}
	}
	t.Fatalf("no free subnet: %v", last)
	return nil
}

func randInt(n int) int { return mrand.IntN(n) }

// destroyDriver stops the driver and, at the end, removes its networks and
// containers.
func destroyDriver(t *testing.T, d *Driver) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	list, _ := d.engine.List(ctx)
	for _, info := range list {
		_ = d.engine.Stop(ctx, info.ID, 0)
	}
	d.services.destroy()
	_ = d.iso.networks.Destroy(ctx)
	_ = d.Close()
	_ = RemoveBundleStateDir(d.cfg.DataDir)
}

func waitFor(t *testing.T, what string, timeout time.Duration, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	last := ""
	for time.Now().Before(deadline) {
		ok, state := cond()
		if ok {
			return
		}
		last = state
		time.Sleep(200 * time.Millisecond)
	}
	t.Fatalf("%s: not within %s; last state: %s", what, timeout, last)
}

func waitRollout(t *testing.T, d *Driver, id string, want runtime.RolloutPhase, timeout time.Duration) runtime.RolloutState {
	t.Helper()
	var st runtime.RolloutState
	waitFor(t, fmt.Sprintf("rollout of %s to be %s", id, want), timeout, func() (bool, string) {
		st, _ = d.Rollout(context.Background(), id)
		ins, _ := d.Instances(context.Background(), id)
		return st.Phase == want, fmt.Sprintf("%+v instances %+v", st, ins)
	})
	return st
}

func httpGet(url string) (int, string, error) {
	c := &http.Client{Timeout: 2 * time.Second}
	resp, err := c.Get(url)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), nil
}

// web is a component serving its version on port 8080.
func web(id, image string, version int64, n int) runtime.ComponentSpec {
	return runtime.ComponentSpec{
		ComponentID: id, Alias: "web", Version: version, Image: image, Instances: n,
		Cmd:       []string{"sh", "-c", "mkdir -p /www && echo v$VERSION > /www/index.html && exec httpd -f -p 8080 -h /www"},
		Env:       []string{fmt.Sprintf("VERSION=%d", version)},
		Ports:     []model.Port{{Port: 8080, Protocol: model.ProtoHTTP, Alias: "WEB", Inner: true}},
		Readiness: &model.Probe{Type: model.ProbeHTTP, Port: 8080, Path: "/", PeriodSeconds: 1},
		Volumes:   []model.Volume{{Name: "data", Path: "/data", Type: "local"}},
	}
}

func TestDriverRunsScalesRollsAndAdopts(t *testing.T) {
	requirePrereqs(t)
	dir := shortDir(t)
	reg := startRegistry(t, registryOpts{})
	image := reg.push(t, "test/busybox:v1", busyboxImage(t), "", "")
	var cfg DriverConfig
	d := openTestDriver(t, dir, &cfg)
	defer func() { destroyDriver(t, d) }()
	ctx := context.Background()
	const id = "cmp-web"

	// Two instances, reachable through the stable service address.
	if err := d.Apply(ctx, web(id, image, 1, 2)); err != nil {
		t.Fatal(err)
	}
	waitRollout(t, d, id, runtime.RolloutComplete, time.Minute)
	svc, err := d.ServiceAddress(ctx, id, 8080)
	if err != nil {
		t.Fatal(err)
	}
	if code, body, err := httpGet("http://" + svc + "/"); err != nil || code != 200 || strings.TrimSpace(body) != "v1" {
		t.Fatalf("service %s: %d %q %v", svc, code, body, err)
	}

	// Scale 2 -> 3 -> 0 -> 1.
	for _, n := range []int{3, 0, 1} {
		if err := d.Apply(ctx, web(id, image, 1, n)); err != nil {
			t.Fatal(err)
		}
		waitRollout(t, d, id, runtime.RolloutComplete, time.Minute)
		waitFor(t, fmt.Sprintf("%d instances", n), 30*time.Second, func() (bool, string) {
			ins, _ := d.Instances(ctx, id)
			return len(ins) == n, fmt.Sprint(ins)
		})
	}

	// A volume keeps its data when the instance is replaced.
	ins, _ := d.Instances(ctx, id)
	if code, err := d.Exec(ctx, id, ins[0].ID, runtime.ExecOptions{Cmd: []string{"sh", "-c", "echo kept > /data/f"}}); err != nil || code != 0 {
		t.Fatalf("exec: %d %v", code, err)
	}

	// Rolling update to version 2: the service answers all along.
	stop := make(chan struct{})
	failures := make(chan int, 1)
	go func() {
		failed := 0
		for i := 0; i < 2000; i++ {
			select {
			case <-stop:
				failures <- failed
				return
			default:
			}
			if code, _, err := httpGet("http://" + svc + "/"); err != nil || code != 200 {
				failed++
			}
			time.Sleep(20 * time.Millisecond)
		}
		failures <- failed
	}()
	if err := d.Apply(ctx, web(id, image, 2, 1)); err != nil {
		t.Fatal(err)
	}
	waitRollout(t, d, id, runtime.RolloutComplete, time.Minute)
	waitFor(t, "old instance gone", 30*time.Second, func() (bool, string) {
		ins, _ := d.Instances(ctx, id)
		return len(ins) == 1 && ins[0].Version == 2, fmt.Sprint(ins)
	})
	close(stop)
	if n := <-failures; n > 0 {
		t.Errorf("%d requests failed during the rolling update", n)
	}
	if _, body, _ := httpGet("http://" + svc + "/"); strings.TrimSpace(body) != "v2" {
		t.Fatalf("after rollout the service answers %q", body)
	}
	ins, _ = d.Instances(ctx, id)
	var out strings.Builder
	if code, err := d.Exec(ctx, id, ins[0].ID, runtime.ExecOptions{Cmd: []string{"cat", "/data/f"}, Stdout: &out}); err != nil || code != 0 || strings.TrimSpace(out.String()) != "kept" {
		t.Fatalf("volume content after the rollout: %q %d %v", out.String(), code, err)
	}

	// A version that never gets ready is rolled back; version 2 keeps serving.
	bad := web(id, image, 3, 1)
	bad.Readiness = &model.Probe{Type: model.ProbeTCP, Port: 9999, PeriodSeconds: 1}
	bad.ReadyTimeout = 5 * time.Second
	if err := d.Apply(ctx, bad); err != nil {
		t.Fatal(err)
	}
	st := waitRollout(t, d, id, runtime.RolloutRolledBack, time.Minute)
	if !strings.Contains(st.Message, "not ready within 5s") || !strings.Contains(st.Message, "ReadinessProbeFailed") {
		t.Errorf("rollback message: %s", st.Message)
	}
	waitFor(t, "only version 2 left", 30*time.Second, func() (bool, string) {
		ins, _ := d.Instances(ctx, id)
		return len(ins) == 1 && ins[0].Version == 2 && ins[0].Status == model.InstanceRunning, fmt.Sprint(ins)
	})
	if _, body, _ := httpGet("http://" + svc + "/"); strings.TrimSpace(body) != "v2" {
		t.Fatalf("after rollback the service answers %q", body)
	}

	// berth restarts: the running instance is adopted, not restarted.
	before, _ := d.Instances(ctx, id)
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	d = openTestDriver(t, dir, &cfg)
	if err := d.Apply(ctx, web(id, image, 2, 1)); err != nil {
		t.Fatal(err)
	}
	waitRollout(t, d, id, runtime.RolloutComplete, 30*time.Second)
	after, _ := d.Instances(ctx, id)
	if len(after) != 1 || after[0].ID != before[0].ID || after[0].Restarts != 0 {
		t.Fatalf("instances before %v, after %v: not adopted", before, after)
	}
	if _, body, _ := httpGet("http://" + svc + "/"); strings.TrimSpace(body) != "v2" {
		t.Fatalf("after adoption the service answers %q", body)
	}
	if err := d.Remove(ctx, id, true); err != nil {
		t.Fatal(err)
	}
}

func TestDriverExplainsFailures(t *testing.T) {
	requirePrereqs(t)
	dir := shortDir(t)
	reg := startRegistry(t, registryOpts{})
	image := reg.push(t, "test/busybox:v1", busyboxImage(t), "", "")
	var cfg DriverConfig
	d := openTestDriver(t, dir, &cfg)
	defer destroyDriver(t, d)
	ctx := context.Background()

	instanceWith := func(id string, cond func(model.Instance) bool) model.Instance {
		t.Helper()
		var got model.Instance
		waitFor(t, "instance of "+id, time.Minute, func() (bool, string) {
			ins, _ := d.Instances(ctx, id)
			for _, in := range ins {
				if cond(in) {
					got = in
					return true, ""
				}
			}
			return false, fmt.Sprintf("%+v", ins)
		})
		return got
	}

	crash := runtime.ComponentSpec{ComponentID: "cmp-crash", Alias: "crash", Version: 1, Image: image, Instances: 1,
		Cmd: []string{"sh", "-c", "echo boom; exit 3"}}
	must(t, d.Apply(ctx, crash))
	in := instanceWith("cmp-crash", func(in model.Instance) bool { return in.Reason == "CrashLoopBackOff" })
	if in.Status != model.InstanceAbnormal || !strings.Contains(in.Message, "exited with code 3") || !strings.Contains(in.Message, "boom") || in.Advice == "" {
		t.Errorf("crash: %+v", in)
	}

	oom := runtime.ComponentSpec{ComponentID: "cmp-oom", Alias: "oom", Version: 1, Image: image, Instances: 1, Memory: 16 << 20,
		Cmd: []string{"sh", "-c", "x=$(head -c 100000000 /dev/zero | tr '\\0' a); sleep 100"}}
	must(t, d.Apply(ctx, oom))
	in = instanceWith("cmp-oom", func(in model.Instance) bool { return in.Reason == "OOMKilled" })
	if !strings.Contains(in.Message, "16Mi") || !strings.Contains(in.Advice, "memory") {
		t.Errorf("oom: %+v", in)
	}

	huge := runtime.ComponentSpec{ComponentID: "cmp-huge", Alias: "huge", Version: 1, Image: image, Instances: 1, Memory: 1 << 50,
		Cmd: []string{"sleep", "100"}}
	must(t, d.Apply(ctx, huge))
	in = instanceWith("cmp-huge", func(in model.Instance) bool { return in.Status == model.InstanceScheduling })
	if !strings.Contains(in.Message, "Insufficient memory") || !strings.Contains(in.Message, "asks 1024Ti") {
		t.Errorf("scheduling: %+v", in)
	}

	// Lowering the ask lets it run.
	huge.Memory = 32 << 20
	must(t, d.Apply(ctx, huge))
	instanceWith("cmp-huge", func(in model.Instance) bool { return in.Status == model.InstanceRunning })

	missing := runtime.ComponentSpec{ComponentID: "cmp-missing", Alias: "missing", Version: 1, Image: reg.host + "/test/nope:v1", Instances: 1}
	must(t, d.Apply(ctx, missing))
	st := waitRollout(t, d, "cmp-missing", runtime.RolloutFailed, time.Minute)
	in = instanceWith("cmp-missing", func(in model.Instance) bool { return in.Reason == "ErrImagePull" || in.Reason == "ImagePullBackOff" })
	if !strings.Contains(in.Message, "not found") || !strings.Contains(st.Message, "not found") {
		t.Errorf("missing image: %+v / %+v", in, st)
	}

	badcmd := runtime.ComponentSpec{ComponentID: "cmp-badcmd", Alias: "badcmd", Version: 1, Image: image, Instances: 1, Cmd: []string{"/no/such/binary"}}
	must(t, d.Apply(ctx, badcmd))
	in = instanceWith("cmp-badcmd", func(in model.Instance) bool { return in.Reason == "CreateContainerError" })
	if !strings.Contains(in.Message, "no/such/binary") {
		t.Errorf("bad command: %+v", in)
	}

	// A failing liveness probe restarts the instance; an exec readiness
	// probe decides when it gets traffic.
	live := runtime.ComponentSpec{ComponentID: "cmp-live", Alias: "live", Version: 1, Image: image, Instances: 1,
		Cmd:       []string{"sh", "-c", "sleep 2; touch /tmp/ready; sleep 300"},
		Readiness: &model.Probe{Type: model.ProbeExec, Command: []string{"test", "-f", "/tmp/ready"}, PeriodSeconds: 1},
		Liveness:  &model.Probe{Type: model.ProbeTCP, Port: 9, PeriodSeconds: 1, FailureThreshold: 2, InitialDelaySeconds: 4}}
	must(t, d.Apply(ctx, live))
	in = instanceWith("cmp-live", func(in model.Instance) bool { return in.Reason == "ReadinessProbeFailed" })
	if in.Status != model.InstanceNotReady {
		t.Errorf("before /tmp/ready: %+v", in)
	}
	instanceWith("cmp-live", func(in model.Instance) bool { return in.Status == model.InstanceRunning })
	in = instanceWith("cmp-live", func(in model.Instance) bool { return in.Restarts >= 1 })
	if in.Reason == "CrashLoopBackOff" && !strings.Contains(in.Message, "liveness probe") {
		t.Errorf("after the liveness restart: %+v", in)
	}

	for _, id := range []string{"cmp-crash", "cmp-oom", "cmp-huge", "cmp-missing", "cmp-badcmd", "cmp-live"} {
		must(t, d.Remove(ctx, id, true))
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func TestFloatingTag(t *testing.T) {
	for ref, want := range map[string]bool{
		"nginx": true, "nginx:latest": true, "127.0.0.1:5000/a/b": true, "127.0.0.1:5000/a/b:v1": false,
		"nginx:1.25": false, "nginx@sha256:abc": false,
	} {
		if got := floatingTag(ref); got != want {
			t.Errorf("floatingTag(%q) = %v", ref, got)
		}
	}
}

package containerd

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/containerd/errdefs"

	"github.com/berth-platform/berth/internal/testdaemon"
)

func TestRunServesHTTPOnBridge(t *testing.T) {
	env := newEnv(t)
	ref := env.pullBusybox(t)
	ctx := context.Background()
	r, err := env.engine.Run(ctx, InstanceSpec{
		ID:      "web-1",
		Image:   ref,
		Labels:  map[string]string{"berth.io/component": "c1", "berth.io/version": "3", "berth.io/instance": "0"},
		Cmd:     []string{"httpd", "-f", "-p", "8080", "-h", "/www"},
		Memory:  64 << 20,
		CPU:     500,
		LogPath: env.logPath("web-1"),
	})
	if err != nil {
		t.Fatal(err)
	}
	if r.IP == nil || !env.network.Subnet().Contains(r.IP) || r.PID == 0 {
		t.Fatalf("bad Running %+v (subnet %s)", r, env.network.Subnet())
	}
	t.Logf("web-1 runs as pid %d at %s", r.PID, r.IP)

	// Reach it from the host at its bridge address (bounded retries while
	// httpd binds).
	url := fmt.Sprintf("http://%s:8080/index.html", r.IP)
	hc := &http.Client{Timeout: 2 * time.Second}
	var body []byte
	for i := 0; ; i++ {
		resp, err := hc.Get(url)
		if err == nil {
			body, _ = io.ReadAll(resp.Body)
			resp.Body.Close()
			break
		}
		if i == 50 {
			t.Fatalf("GET %s: %v", url, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if string(body) != "hello from busybox httpd\n" {
		t.Fatalf("body %q", body)
	}

	list, err := env.engine.List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != 1 {
		t.Fatalf("List: %+v", list)
	}
	info := list[0]
	if info.ID != "web-1" || info.Status != StatusRunning || !info.IP.Equal(r.IP) || info.PID != r.PID ||
		info.Labels["berth.io/component"] != "c1" || info.Labels["berth.io/instance"] != "0" ||
		info.LogPath != env.logPath("web-1") || info.Image != ref {
		t.Fatalf("List info %+v", info)
	}
	if _, ok := info.Labels[LabelIP]; ok {
		t.Fatal("engine labels leak into Info.Labels")
	}
}

func TestRunCommandArgsEnv(t *testing.T) {
	env := newEnv(t)
	ref := env.pullBusybox(t)
	ctx := context.Background()
	exits, err := env.engine.Exits(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		id   string
		spec InstanceSpec
		want string
	}{
		{"cmd-args", InstanceSpec{Cmd: []string{"sh", "-c"}, Args: []string{"echo cmd-args $0 $1", "zero", "one"}}, "cmd-args zero one\n"},
		// Args alone replace the image's CMD (image ENTRYPOINT is empty).
		{"args-only", InstanceSpec{Args: []string{"echo", "args-only"}}, "args-only\n"},
		{"env", InstanceSpec{
			Cmd: []string{"sh", "-c", `echo "A=$A FROM_IMAGE=$FROM_IMAGE PATH=$PATH host=$(hostname)"`},
			Env: []string{"A=1", "PATH=/bin:/usr/bin", "FROM_IMAGE=overridden"}, Hostname: "inst-7",
		}, "A=1 FROM_IMAGE=overridden PATH=/bin:/usr/bin host=inst-7\n"},
		{"env-merge", InstanceSpec{Cmd: []string{"sh", "-c", `echo "B=$B FROM_IMAGE=$FROM_IMAGE"`}, Env: []string{"B=2"}}, "B=2 FROM_IMAGE=yes\n"},
		// Without Cmd or Args the image's CMD (sh) runs and exits at once.
		{"image-cmd", InstanceSpec{}, ""},
	}
	for _, c := range cases {
		spec := c.spec
		spec.ID, spec.Image, spec.LogPath = c.id, ref, env.logPath(c.id)
		if _, err := env.engine.Run(ctx, spec); err != nil {
			t.Fatalf("%s: %v", c.id, err)
		}
	}
	for _, c := range cases {
		ex := waitExit(t, exits, c.id, 30*time.Second)
		if ex.ExitCode != 0 {
			t.Errorf("%s exited %d", c.id, ex.ExitCode)
		}
	}
	for _, c := range cases {
		b, _ := os.ReadFile(env.logPath(c.id))
		if string(b) != c.want {
			t.Errorf("%s: log %q, want %q", c.id, b, c.want)
		}
	}
}

func TestMemoryLimitOOM(t *testing.T) {
	env := newEnv(t)
	ref := env.pullBusybox(t)
	ctx := context.Background()
	exits, err := env.engine.Exits(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	// The shell keeps 64 MiB in a variable under a 16 MiB limit.
	if _, err := env.engine.Run(ctx, InstanceSpec{
		ID: "hog", Image: ref, Memory: 16 << 20, LogPath: env.logPath("hog"),
		Cmd: []string{"sh", "-c", `echo start; x=$(head -c 67108864 /dev/zero | tr '\000' a); echo survived ${#x}`},
	}); err != nil {
		t.Fatal(err)
	}
	ex := waitExit(t, exits, "hog", time.Minute)
	t.Logf("exit: %+v", ex)
	if !ex.OOMKilled || ex.ExitCode != 137 {
		t.Fatalf("want OOM kill with 137, got %+v; log: %s", ex, readFile(env.logPath("hog")))
	}
	if strings.Contains(readFile(env.logPath("hog")), "survived") {
		t.Fatal("the process survived its memory limit")
	}
	// The limit is in the spec, memory+swap equal to it.
	c, err := env.client.LoadContainer(env.engine.ctx(ctx), "hog")
	if err != nil {
		t.Fatal(err)
	}
	spec, err := c.Spec(env.engine.ctx(ctx))
	if err != nil {
		t.Fatal(err)
	}
	mem := spec.Linux.Resources.Memory
	if mem == nil || *mem.Limit != 16<<20 || (mem.Swap != nil && *mem.Swap != 16<<20) {
		t.Fatalf("memory resources %+v", mem)
	}

	// Same command without a limit survives: the limit made the difference.
	if _, err := env.engine.Run(ctx, InstanceSpec{
		ID: "nohog", Image: ref, LogPath: env.logPath("nohog"),
		Cmd: []string{"sh", "-c", `x=$(head -c 67108864 /dev/zero | tr '\000' a); echo survived ${#x}`},
	}); err != nil {
		t.Fatal(err)
	}
	ex = waitExit(t, exits, "nohog", time.Minute)
	if ex.OOMKilled || ex.ExitCode != 0 {
		t.Fatalf("unlimited: %+v", ex)
	}
}

func TestCPULimit(t *testing.T) {
	env := newEnv(t)
	ref := env.pullBusybox(t)
	ctx := context.Background()
	if _, err := env.engine.Run(ctx, InstanceSpec{ID: "cpu", Image: ref, CPU: 250, LogPath: env.logPath("cpu"), Cmd: []string{"sleep", "300"}}); err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join("/sys/fs/cgroup/cpu", env.ns, "cpu")
	if _, err := os.Stat("/sys/fs/cgroup/cgroup.controllers"); err == nil {
		b := readFile(filepath.Join("/sys/fs/cgroup", env.ns, "cpu", "cpu.max"))
		if !strings.HasPrefix(b, "25000 100000") {
			t.Fatalf("cpu.max %q", b)
		}
		return
	}
	if q := strings.TrimSpace(readFile(filepath.Join(dir, "cpu.cfs_quota_us"))); q != "25000" {
		t.Fatalf("cfs quota %q, want 25000", q)
	}
	if p := strings.TrimSpace(readFile(filepath.Join(dir, "cpu.cfs_period_us"))); p != "100000" {
		t.Fatalf("cfs period %q", p)
	}
	if s := strings.TrimSpace(readFile(filepath.Join(dir, "cpu.shares"))); s != "256" {
		t.Fatalf("cpu shares %q", s)
	}
}

func TestBindMountPersists(t *testing.T) {
	env := newEnv(t)
	ref := env.pullBusybox(t)
	ctx := context.Background()
	exits, err := env.engine.Exits(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	vol := filepath.Join(env.dir, "volumes", "data")
	mounts := []Mount{{Source: vol, Target: "/data"}}
	if _, err := env.engine.Run(ctx, InstanceSpec{ID: "db-1", Image: ref, Mounts: mounts, LogPath: env.logPath("db-1"),
		Cmd: []string{"sh", "-c", "echo persisted-$$ > /data/f; cat /data/f"}}); err != nil {
		t.Fatal(err)
	}
	if ex := waitExit(t, exits, "db-1", 30*time.Second); ex.ExitCode != 0 {
		t.Fatalf("writer: %+v", ex)
	}
	written := strings.TrimSpace(readFile(env.logPath("db-1")))
	if err := env.engine.Stop(ctx, "db-1", time.Second); err != nil {
		t.Fatal(err)
	}
	if host := strings.TrimSpace(readFile(filepath.Join(vol, "f"))); host != written || !strings.HasPrefix(host, "persisted-") {
		t.Fatalf("host file %q, container wrote %q", host, written)
	}
	// A new container of the instance sees the data; read-only mounts
	// refuse writes.
	if _, err := env.engine.Run(ctx, InstanceSpec{ID: "db-1", Image: ref, LogPath: env.logPath("db-1"),
		Mounts: []Mount{{Source: vol, Target: "/data", ReadOnly: true}},
		Cmd:    []string{"sh", "-c", "cat /data/f; echo x > /data/g"}}); err != nil {
		t.Fatal(err)
	}
	ex := waitExit(t, exits, "db-1", 30*time.Second)
	if ex.ExitCode == 0 {
		t.Fatal("write to a read-only mount succeeded")
	}
	if got := readFile(env.logPath("db-1")); !strings.Contains(got, written) || !strings.Contains(got, "Read-only file system") {
		t.Fatalf("second container log %q", got)
	}
	// The first container's log is its previous log now.
	if prev := strings.TrimSpace(readFile(PreviousLogPath(env.logPath("db-1")))); prev != written {
		t.Fatalf("previous log %q", prev)
	}
}

func TestExitCodeAndList(t *testing.T) {
	env := newEnv(t)
	ref := env.pullBusybox(t)
	ctx := context.Background()
	exits, err := env.engine.Exits(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	before := time.Now()
	env.run(t, ref, "exit3", "sh", "-c", "exit 3")
	ex := waitExit(t, exits, "exit3", 30*time.Second)
	if ex.ExitCode != 3 || ex.OOMKilled || ex.ExitedAt.Before(before.Add(-time.Second)) {
		t.Fatalf("exit %+v", ex)
	}
	info, err := env.engine.Inspect(ctx, "exit3")
	if err != nil {
		t.Fatal(err)
	}
	if info.Status != StatusStopped || info.ExitCode != 3 || info.ExitedAt.IsZero() {
		t.Fatalf("inspect %+v", info)
	}
	// A second stream reports the already stopped task once.
	ctx2, cancel := context.WithCancel(ctx)
	exits2, err := env.engine.Exits(ctx2)
	if err != nil {
		t.Fatal(err)
	}
	if ex2 := waitExit(t, exits2, "exit3", 10*time.Second); ex2.ExitCode != 3 {
		t.Fatalf("reconciled exit %+v", ex2)
	}
	cancel()
	for range exits2 {
	}
	// Killed by Stop: 137 without OOM.
	env.run(t, ref, "sleeper", "sleep", "300")
	if err := env.engine.Stop(ctx, "sleeper", 0); err != nil {
		t.Fatal(err)
	}
	if ex := waitExit(t, exits, "sleeper", 30*time.Second); ex.ExitCode != 137 || ex.OOMKilled {
		t.Fatalf("killed: %+v", ex)
	}
}

func TestRunErrors(t *testing.T) {
	env := newEnv(t)
	ref := env.pullBusybox(t)
	ctx := context.Background()

	_, err := env.engine.Run(ctx, InstanceSpec{ID: "nope", Image: ref, Cmd: []string{"no-such-binary"}, LogPath: env.logPath("nope")})
	var ce *CreateContainerError
	if !errors.As(err, &ce) || !errors.Is(err, ErrExecutableNotFound) {
		t.Fatalf("want CreateContainerError with ErrExecutableNotFound, got %v", err)
	}
	if !strings.Contains(err.Error(), `exec: "no-such-binary": executable file not found in $PATH`) {
		t.Fatalf("message lacks runc's: %v", err)
	}
	t.Logf("error: %v (reason %s)", err, ce.Reason)

	_, err = env.engine.Run(ctx, InstanceSpec{ID: "abs", Image: ref, Cmd: []string{"/no/such/file"}, LogPath: env.logPath("abs")})
	if !errors.Is(err, ErrExecutableNotFound) {
		t.Fatalf("absolute path: %v", err)
	}

	_, err = env.engine.Run(ctx, InstanceSpec{ID: "noimg", Image: "127.0.0.1:1/not/pulled:v1", LogPath: env.logPath("noimg")})
	if !errors.Is(err, ErrImageNotPresent) || !errors.As(err, &ce) || ce.Reason != ReasonImageNeverPulled {
		t.Fatalf("unpulled image: %v", err)
	}

	// Nothing is left behind by failed runs.
	list, err := env.engine.List(ctx)
	if err != nil || len(list) != 0 {
		t.Fatalf("List after failures: %+v %v", list, err)
	}
	if left, _ := os.ReadDir(filepath.Join(env.dir, "s", "netns")); len(left) != 0 {
		t.Fatalf("network namespaces left: %v", left)
	}
	if rules := masqueradeRules(t, env.network.Name()); rules != "" {
		t.Fatalf("masquerade rules left:\n%s", rules)
	}

	// Run of an existing ID fails without harming it.
	env.run(t, ref, "dup", "sleep", "300")
	_, err = env.engine.Run(ctx, InstanceSpec{ID: "dup", Image: ref, Cmd: []string{"true"}, LogPath: env.logPath("dup")})
	if !errdefs.IsAlreadyExists(err) {
		t.Fatalf("duplicate: %v", err)
	}
	if info, err := env.engine.Inspect(ctx, "dup"); err != nil || info.Status != StatusRunning {
		t.Fatalf("dup after failed Run: %+v %v", info, err)
	}
}

func TestStopIdempotent(t *testing.T) {
	env := newEnv(t)
	ref := env.pullBusybox(t)
	ctx := context.Background()
	if err := env.engine.Stop(ctx, "never-existed", time.Second); err != nil {
		t.Fatalf("stop unknown: %v", err)
	}
	// SIGTERM ignored: SIGKILL after the grace period.
	r := env.run(t, ref, "stubborn", "sh", "-c", "trap '' TERM; echo ready; while true; do sleep 1; done")
	waitLog(t, env.logPath("stubborn"), "ready", 10*time.Second)
	start := time.Now()
	if err := env.engine.Stop(ctx, "stubborn", 700*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d < 700*time.Millisecond || d > 10*time.Second {
		t.Fatalf("stop took %s", d)
	}
	// Gracefully stopping one exits at SIGTERM, well before the grace.
	env.run(t, ref, "polite", "sh", "-c", "trap 'exit 0' TERM; echo ready; while true; do sleep 0.1; done")
	waitLog(t, env.logPath("polite"), "ready", 10*time.Second)
	start = time.Now()
	if err := env.engine.Stop(ctx, "polite", 20*time.Second); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("graceful stop took %s", d)
	}
	for i := 0; i < 2; i++ {
		if err := env.engine.Stop(ctx, "stubborn", time.Second); err != nil {
			t.Fatalf("repeated stop: %v", err)
		}
	}
	if testdaemon.Alive(int(r.PID)) {
		t.Fatalf("pid %d still alive", r.PID)
	}
	list, err := env.engine.List(ctx)
	if err != nil || len(list) != 0 {
		t.Fatalf("List: %+v %v", list, err)
	}
	if left, _ := os.ReadDir(filepath.Join(env.dir, "s", "netns")); len(left) != 0 {
		t.Fatalf("network namespaces left: %v", left)
	}
	if rules := masqueradeRules(t, env.network.Name()); rules != "" {
		t.Fatalf("masquerade rules left:\n%s", rules)
	}
	// The address was released: the next instance gets the same one.
	r2 := env.run(t, ref, "next", "sleep", "300")
	if !r2.IP.Equal(r.IP) {
		t.Logf("note: next address %s (first was %s)", r2.IP, r.IP)
	}
}

func TestAdoptionByNewEngine(t *testing.T) {
	env := newEnv(t)
	ref := env.pullBusybox(t)
	ctx := context.Background()
	r, err := env.engine.Run(ctx, InstanceSpec{ID: "adopt-1", Image: ref, Labels: map[string]string{"berth.io/component": "cx", "berth.io/version": "9"},
		Cmd: []string{"sh", "-c", "echo adopted; exec sleep 300"}, LogPath: env.logPath("adopt-1")})
	if err != nil {
		t.Fatal(err)
	}
	// A new berth process: a new client and a new engine on the namespace.
	c2, err := Connect(ctx, env.daemon.Address())
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Close()
	e2 := env.newEngine(t, c2)
	list, err := e2.List(ctx)
	if err != nil || len(list) != 1 {
		t.Fatalf("List: %+v %v", list, err)
	}
	info := list[0]
	if info.Status != StatusRunning || info.PID != r.PID || !info.IP.Equal(r.IP) || info.Labels["berth.io/version"] != "9" {
		t.Fatalf("adopted %+v, ran %+v", info, r)
	}
	waitLog(t, info.LogPath, "adopted", 10*time.Second)
	code, err := e2.Exec(ctx, "adopt-1", execOpts(nil, io.Discard, "true"))
	if err != nil || code != 0 {
		t.Fatalf("exec through new engine: %d %v", code, err)
	}
	exits, err := e2.Exits(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if err := e2.Stop(ctx, "adopt-1", time.Second); err != nil {
		t.Fatal(err)
	}
	if ex := waitExit(t, exits, "adopt-1", 30*time.Second); ex.ExitCode != 137 && ex.ExitCode != 143 {
		t.Fatalf("exit %+v", ex)
	}
	// Other namespaces do not see berth's containers.
	other, err := NewEngine(Config{Client: c2, Namespace: "bt-other-" + randHex(4), StateDir: filepath.Join(env.dir, "s2")})
	if err != nil {
		t.Fatal(err)
	}
	if l, err := other.List(ctx); err != nil || len(l) != 0 {
		t.Fatalf("other namespace: %+v %v", l, err)
	}
}

func readFile(p string) string {
	b, _ := os.ReadFile(p)
	return string(b)
}

func masqueradeRules(t *testing.T, netName string) string {
	t.Helper()
	out, err := exec.Command("iptables", "-w", "-t", "nat", "-S", "POSTROUTING").CombinedOutput()
	if err != nil {
		t.Fatalf("iptables: %v: %s", err, out)
	}
	var hits []string
	for _, l := range strings.Split(string(out), "\n") {
		if strings.Contains(l, fmt.Sprintf(`name: \"%s\"`, netName)) {
			hits = append(hits, l)
		}
	}
	return strings.Join(hits, "\n")
}

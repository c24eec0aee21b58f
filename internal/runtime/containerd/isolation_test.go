package containerd

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/berth-platform/berth/internal/model"
	"github.com/berth-platform/berth/internal/runtime"
	"github.com/berth-platform/berth/internal/runtime/cninetwork"
)

// Teams are kept apart by the driver itself: an instance of team A reaches
// its own team's instances and service addresses, and neither the
// instances nor the service addresses of team B. The instances are in
// their teams' user namespaces.
func TestTeamsCannotReachEachOther(t *testing.T) {
	requirePrereqs(t)
	dir := shortDir(t)
	reg := startRegistry(t, registryOpts{})
	image := reg.push(t, "test/busybox:v1", busyboxImage(t), "", "")
	cfg := DriverConfig{UserNS: os.Getenv("USERNS")}
	d := openTestDriver(t, dir, &cfg)
	defer func() { destroyDriver(t, d) }()
	ctx := context.Background()

	deploy := func(id, team string) (instance, addr, svc string) {
		t.Helper()
		spec := web(id, image, 1, 1)
		spec.Team, spec.Volumes = team, nil
		if err := d.Apply(ctx, spec); err != nil {
			t.Fatal(err)
		}
		waitRollout(t, d, id, runtime.RolloutComplete, time.Minute)
		ins, _ := d.Instances(ctx, id)
		svc, err := d.ServiceAddress(ctx, id, 8080)
		if err != nil {
			t.Fatal(err)
		}
		return ins[0].ID, ins[0].Address, svc
	}
	a1, _, _ := deploy("cmp-a1", "team-a")
	_, a2Addr, a2Svc := deploy("cmp-a2", "team-a")
	_, bAddr, bSvc := deploy("cmp-b", "team-b")
	if !strings.Contains(a2Addr, ":") {
		a2Addr += ":8080"
	}
	if !strings.Contains(bAddr, ":") {
		bAddr += ":8080"
	}

	fetch := func(addr string) (string, error) {
		out := &syncBuffer{}
		host, port, _ := strings.Cut(addr, ":")
		script := fmt.Sprintf(`printf 'GET / HTTP/1.0\r\n\r\n' | nc -w 3 %s %s`, host, port)
		code, err := d.Exec(ctx, "cmp-a1", a1, runtime.ExecOptions{Cmd: []string{"sh", "-c", script}, Stdout: out})
		if err == nil && code != 0 {
			err = fmt.Errorf("nc exited %d: %s", code, out.String())
		}
		// The body is the response's last line.
		lines := strings.Split(strings.TrimSpace(out.String()), "\n")
		return strings.TrimSpace(lines[len(lines)-1]), err
	}
	for what, addr := range map[string]string{"own team's instance": a2Addr, "own team's service address": a2Svc} {
		if body, err := fetch(addr); err != nil || body != "v1" {
			t.Errorf("%s %s: %q %v", what, addr, body, err)
		}
	}
	for what, addr := range map[string]string{"team B's instance": bAddr, "team B's service address": bSvc} {
		// The service address accepts and cuts at once; either way no
		// byte of team B's answer may arrive.
		if body, _ := fetch(addr); strings.Contains(body, "v1") {
			t.Errorf("team A reached %s %s: %q", what, addr, body)
		}
	}
	// A thirdparty component is never applied: its address learns its
	// team from Expose, and serves that team's instances only.
	thirdparty := func(id, team, target string) string {
		t.Helper()
		ports := []model.Port{{Port: 8080, Protocol: model.ProtoHTTP, Inner: true}}
		if err := d.Expose(ctx, team, id, ports, []string{target}); err != nil {
			t.Fatal(err)
		}
		svc, err := d.ServiceAddress(ctx, id, 8080)
		if err != nil {
			t.Fatal(err)
		}
		return svc
	}
	if body, err := fetch(thirdparty("cmp-tp-a", "team-a", a2Addr)); err != nil || body != "v1" {
		t.Errorf("own team's thirdparty service address: %q %v", body, err)
	}
	if body, _ := fetch(thirdparty("cmp-tp-b", "team-b", bAddr)); strings.Contains(body, "v1") {
		t.Errorf("team A reached team B's thirdparty service address: %q", body)
	}
	// The host (the gateway, probes) still reaches both.
	if code, body, err := httpGet("http://" + bSvc + "/"); err != nil || code != 200 {
		t.Errorf("host to team B's service: %d %q %v", code, body, err)
	}

	out := &syncBuffer{}
	if code, err := d.Exec(ctx, "cmp-a1", a1, execOpts(nil, out, "cat", "/proc/self/uid_map")); err != nil || code != 0 {
		t.Fatalf("exec: %d %v", code, err)
	}
	if d.iso.userNS && !hasLine(out.String(), fmt.Sprintf("0 %d 65536", IDBase)) &&
		!hasLine(out.String(), fmt.Sprintf("0 %d 65536", IDBase+IDRange)) {
		t.Errorf("team A's instance is not in a team id range:\n%s", out.String())
	}
}

// Destroying the team networks leaves no bridge and no iptables rule.
func TestTeamNetworksLeaveNothing(t *testing.T) {
	requirePrereqs(t)
	dir := shortDir(t)
	var cfg DriverConfig
	d := openTestDriver(t, dir, &cfg)
	is := InstanceSpec{}
	if err := d.iso.place(&is, "t1"); err != nil {
		t.Fatal(err)
	}
	chain := d.iso.networks.Chain()
	destroyDriver(t, d)
	if out, _ := exec.Command("iptables", "-w", "-S").CombinedOutput(); strings.Contains(string(out), chain) {
		t.Fatalf("iptables still mentions %s:\n%s", chain, out)
	}
	if _, err := exec.Command("ip", "link", "show", is.Network.Bridge()).CombinedOutput(); err == nil {
		t.Fatalf("bridge %s still exists", is.Network.Bridge())
	}
}

// The cost of user namespaces on a deploy, in one run: Apply to ready for
// fresh components with user namespaces on and then off, the first of
// each including the image's unpack (and, on, its remapped copy for the
// team). Figures only: BERTH_BENCH_USERNS=1 go test -run TestUserNSDeployCost -v.
func TestUserNSDeployCost(t *testing.T) {
	if os.Getenv("BERTH_BENCH_USERNS") == "" {
		t.Skip("a measurement; set BERTH_BENCH_USERNS=1")
	}
	requirePrereqs(t)
	reg := startRegistry(t, registryOpts{})
	image := reg.push(t, "test/busybox:v1", busyboxImage(t), "", "")
	const n = 10
	measure := func(mode string) (time.Duration, time.Duration) {
		dir := shortDir(t)
		cfg := DriverConfig{UserNS: mode}
		d := openTestDriver(t, dir, &cfg)
		defer destroyDriver(t, d)
		var first time.Duration
		var times []time.Duration
		for i := 0; i <= n; i++ {
			id := fmt.Sprintf("cost-%d", i)
			spec := web(id, image, 1, 1)
			spec.Team, spec.Volumes = "bench", nil
			t0 := time.Now()
			if err := d.Apply(context.Background(), spec); err != nil {
				t.Fatal(err)
			}
			waitRollout(t, d, id, runtime.RolloutComplete, time.Minute)
			if i == 0 {
				first = time.Since(t0)
			} else {
				times = append(times, time.Since(t0))
			}
			if err := d.Remove(context.Background(), id, true); err != nil {
				t.Fatal(err)
			}
		}
		return first, medianOf(times)
	}
	onFirst, on := measure(UserNSOn)
	offFirst, off := measure(UserNSOff)
	t.Logf("deploy to ready, median of %d: userns on %v, off %v, ratio %.2f", n, on, off, float64(on)/float64(off))
	t.Logf("first deploy (unpack%s): userns on %v, off %v", ", remapped copy", onFirst, offFirst)
}

func medianOf(ds []time.Duration) time.Duration {
	s := append([]time.Duration(nil), ds...)
	for i := range s {
		for j := i + 1; j < len(s); j++ {
			if s[j] < s[i] {
				s[i], s[j] = s[j], s[i]
			}
		}
	}
	return s[len(s)/2]
}

// A machine upgraded from a berth with one shared bridge over the whole
// subnet starts: the shared bridge goes, the team networks take its
// place.
func TestOpenRetiresTheSharedBridge(t *testing.T) {
	requirePrereqs(t)
	dir := shortDir(t)
	var cfg DriverConfig
	destroyDriver(t, openTestDriver(t, dir, &cfg))

	shared, err := cninetwork.New(cninetwork.Config{Bridge: cfg.Bridge, Subnet: cfg.Subnet, StateDir: filepath.Join(dir, "runtime", "cni")})
	if err != nil {
		t.Fatal(err)
	}
	ns := filepath.Join(dir, "legacy-ns")
	if err := cninetwork.NewNamespace(ns); err != nil {
		t.Fatal(err)
	}
	defer cninetwork.RemoveNamespace(ns)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if _, err := shared.Setup(ctx, "legacy", ns); err != nil {
		t.Fatal(err)
	}
	defer shared.Destroy(context.Background())

	d, err := Open(ctx, cfg)
	if err != nil {
		t.Fatalf("open over an older berth's shared bridge: %v", err)
	}
	defer destroyDriver(t, d)
	if _, err := net.InterfaceByName(cfg.Bridge); err == nil {
		t.Fatalf("the shared bridge %s is still there", cfg.Bridge)
	}
	is := InstanceSpec{}
	if err := d.iso.place(&is, "t"); err != nil {
		t.Fatal(err)
	}
}

// A deleted team's network block serves the next team; its user id range
// never does. Releasing a team that still runs is refused.
func TestReleaseTeam(t *testing.T) {
	requirePrereqs(t)
	dir := shortDir(t)
	reg := startRegistry(t, registryOpts{})
	image := reg.push(t, "test/busybox:v1", busyboxImage(t), "", "")
	var cfg DriverConfig
	d := openTestDriver(t, dir, &cfg)
	defer func() { destroyDriver(t, d) }()
	ctx := context.Background()

	spec := web("cmp-x", image, 1, 1)
	spec.Team, spec.Volumes = "x", nil
	if err := d.Apply(ctx, spec); err != nil {
		t.Fatal(err)
	}
	waitRollout(t, d, "cmp-x", runtime.RolloutComplete, time.Minute)
	x, _ := d.iso.teams.lookup("x")
	if err := d.iso.place(&InstanceSpec{}, "y"); err != nil {
		t.Fatal(err)
	}
	y, _ := d.iso.teams.lookup("y")
	if err := d.ReleaseTeam(ctx, "x"); err == nil {
		t.Fatal("released a team that still runs an instance")
	}
	if err := d.Remove(ctx, "cmp-x", true); err != nil {
		t.Fatal(err)
	}
	if err := d.ReleaseTeam(ctx, "x"); err != nil {
		t.Fatal(err)
	}
	if out, _ := exec.Command("iptables", "-w", "-S", d.iso.networks.Chain()).CombinedOutput(); strings.Count(string(out), "-j DROP") != 1 {
		t.Errorf("after releasing x, the isolation chain should hold y's rule only:\n%s", out)
	}
	z, err := d.iso.teams.of("z")
	if err != nil {
		t.Fatal(err)
	}
	if z.Net != x.Net || z.IDs == x.IDs || z.IDs == y.IDs {
		t.Fatalf("x %+v y %+v z %+v: z must reuse x's network block and get an id range of its own", x, y, z)
	}
}

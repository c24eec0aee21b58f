// Command deploy measures how fast berth turns a deploy into a served
// request, side by side with the floor on the same machine and containerd:
// `ctr run` of the same image plus polling its port. It also times 100
// instances to reach running and reads berth's RSS while they run.
//
//	sudo go run ./bench/deploy [-n 20] [-instances 100]
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/berth-platform/berth/internal/runtime/cninetwork"
	"github.com/berth-platform/berth/internal/runtime/containerd"
	"github.com/berth-platform/berth/internal/testimage"
)

func main() {
	n := flag.Int("n", 20, "deploys to time")
	instances := flag.Int("instances", 100, "instances for the scale figure")
	flag.Parse()
	if err := run(*n, *instances); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

type berth struct {
	cmd        *exec.Cmd
	url, token string
	data       string
	namespace  string
}

// Generous: deleting a component waits for its instances to stop.
var httpc = &http.Client{Timeout: 2 * time.Minute}

// benchSubnet holds the instances; 100 of them need more than a /24.
const benchSubnet = "10.209.0.0/20"

func (b *berth) call(method, path string, body any, want int, out any) error {
	var rd io.Reader
	if body != nil {
		j, _ := json.Marshal(body)
		rd = bytes.NewReader(j)
	}
	req, _ := http.NewRequest(method, b.url+path, rd)
	req.Header.Set("Authorization", "Bearer "+b.token)
	resp, err := httpc.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != want {
		return fmt.Errorf("%s %s: %d %s", method, path, resp.StatusCode, raw)
	}
	if out != nil {
		return json.Unmarshal(raw, out)
	}
	return nil
}

func freeAddr() string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

func start(bin, suffix string, extra ...string) (*berth, error) {
	data, err := os.MkdirTemp("/tmp", "bb-")
	if err != nil {
		return nil, err
	}
	b := &berth{data: data, namespace: "bench-" + suffix}
	addr := freeAddr()
	b.url = "http://" + addr
	args := append([]string{"server", "--data", data, "--listen", addr, "--containerd-namespace", b.namespace,
		"--bridge", "bbr" + suffix, "--subnet", benchSubnet, "--service-link", "bsv" + suffix, "--service-subnet", "10.209.16.0/24",
		// The bench's registry is on the host's loopback.
		"--allow-endpoint-cidr", "127.0.0.0/8"}, extra...)
	b.cmd = exec.Command(bin, args...)
	logf, _ := os.Create(filepath.Join(data, "server.out"))
	b.cmd.Stdout, b.cmd.Stderr = logf, logf
	if err := b.cmd.Start(); err != nil {
		return nil, err
	}
	for t0 := time.Now(); time.Since(t0) < 60*time.Second; time.Sleep(20 * time.Millisecond) {
		if resp, err := http.Get(b.url + "/healthz"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				tok, err := os.ReadFile(filepath.Join(data, "admin-token"))
				b.token = strings.TrimSpace(string(tok))
				return b, err
			}
		}
	}
	return nil, fmt.Errorf("berth not healthy; see %s/server.out", data)
}

// stop ends berth and removes what it left running on purpose.
func (b *berth) stop(suffix string) {
	_ = b.cmd.Process.Signal(syscall.SIGTERM)
	_ = b.cmd.Wait()
	out, _ := exec.Command("pgrep", "-f", b.data).Output()
	for _, pid := range strings.Fields(string(out)) {
		p, _ := strconv.Atoi(pid)
		_ = syscall.Kill(p, syscall.SIGKILL)
	}
	time.Sleep(300 * time.Millisecond)
	mounts, _ := os.ReadFile("/proc/mounts")
	lines := strings.Split(string(mounts), "\n")
	for i := len(lines) - 1; i >= 0; i-- {
		if f := strings.Fields(lines[i]); len(f) > 1 && strings.HasPrefix(f[1], b.data) {
			_ = syscall.Unmount(f[1], syscall.MNT_DETACH)
		}
	}
	if n, err := cninetwork.NewTeamNetworks(context.Background(), cninetwork.TeamConfig{Bridge: "bbr" + suffix, Subnet: benchSubnet, StateDir: filepath.Join(b.data, "runtime", "cni")}); err == nil {
		if err := n.Destroy(context.Background()); err != nil {
			fmt.Fprintln(os.Stderr, "bench: remove the networks:", err)
		}
	}
	_ = containerd.RemoveBundleStateDir(b.data)
	_ = exec.Command("ip", "link", "del", "bsv"+suffix).Run()
	_ = os.RemoveAll(b.data)
}

type component struct {
	Status    string
	Instances []struct{ Status string }
	Ports     []struct {
		InnerAddress string `json:"inner_address"`
	}
}

const comps = "/api/v1/teams/bench/apps/app/components"

// serve is the command every instance runs: a static page on port 8080.
var serve = []string{"sh", "-c", "mkdir -p /www && echo ok > /www/index.html && exec httpd -f -p 8080 -h /www"}

// timeDeploy deploys a fresh component and waits for its first answer
// through the inner address.
func (b *berth) timeDeploy(alias, image string) (time.Duration, error) {
	if err := b.call("POST", comps, map[string]any{"alias": alias, "image": image, "cmd": serve, "memory": "32Mi",
		"ports": []any{map[string]any{"port": 8080, "inner": true}}}, 201, nil); err != nil {
		return 0, err
	}
	t0 := time.Now()
	if err := b.call("POST", comps+"/"+alias+"/deploy", nil, 202, nil); err != nil {
		return 0, err
	}
	addr := ""
	for time.Since(t0) < time.Minute {
		if addr == "" {
			var c component
			if err := b.call("GET", comps+"/"+alias, nil, 200, &c); err != nil {
				return 0, err
			}
			if len(c.Ports) > 0 {
				addr = c.Ports[0].InnerAddress
			}
		}
		if addr != "" {
			if resp, err := httpc.Get("http://" + addr + "/"); err == nil {
				resp.Body.Close()
				if resp.StatusCode == 200 {
					return time.Since(t0), nil
				}
			}
		}
		time.Sleep(5 * time.Millisecond)
	}
	return 0, fmt.Errorf("%s never answered", alias)
}

// timeCtr is the floor: ctr runs the same image on the host network and
// the port is polled.
func timeCtr(b *berth, image string, i int) (time.Duration, error) {
	sock := filepath.Join(b.data, "containerd", "containerd.sock")
	id := fmt.Sprintf("floor-%d", i)
	port := strings.Split(freeAddr(), ":")[1]
	cmd := []string{"-a", sock, "-n", b.namespace, "run", "-d", "--net-host", image, id, "sh", "-c",
		"mkdir -p /www && echo ok > /www/index.html && exec httpd -f -p " + port + " -h /www"}
	t0 := time.Now()
	if out, err := exec.Command("ctr", cmd...).CombinedOutput(); err != nil {
		return 0, fmt.Errorf("ctr run: %v: %s", err, out)
	}
	var d time.Duration
	for time.Since(t0) < time.Minute {
		if resp, err := httpc.Get("http://127.0.0.1:" + port + "/"); err == nil {
			resp.Body.Close()
			d = time.Since(t0)
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	_ = exec.Command("ctr", "-a", sock, "-n", b.namespace, "task", "kill", "-s", "KILL", id).Run()
	time.Sleep(100 * time.Millisecond)
	_ = exec.Command("ctr", "-a", sock, "-n", b.namespace, "task", "rm", "-f", id).Run()
	_ = exec.Command("ctr", "-a", sock, "-n", b.namespace, "container", "rm", id).Run()
	if d == 0 {
		return 0, fmt.Errorf("ctr container never answered")
	}
	return d, nil
}

func median(ds []time.Duration) time.Duration {
	sort.Slice(ds, func(i, j int) bool { return ds[i] < ds[j] })
	return ds[len(ds)/2]
}

func rssMB(pid int) float64 {
	raw, _ := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	for _, line := range strings.Split(string(raw), "\n") {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == "VmRSS:" {
			kb, _ := strconv.ParseFloat(f[1], 64)
			return kb / 1024
		}
	}
	return -1
}

func run(n, instances int) error {
	if os.Geteuid() != 0 {
		return fmt.Errorf("run as root: berth starts containerd and containers")
	}
	dir, _ := os.MkdirTemp("", "berth-bench-bin")
	defer os.RemoveAll(dir)
	bin := filepath.Join(dir, "berth")
	if out, err := exec.Command("go", "build", "-o", bin, "./cmd/berth").CombinedOutput(); err != nil {
		return fmt.Errorf("build: %v: %s", err, out)
	}
	img, err := testimage.Busybox()
	if err != nil {
		return err
	}
	reg := testimage.Serve("", "")
	defer reg.Close()
	image, err := reg.Push("bench/busybox:v1", img)
	if err != nil {
		return err
	}
	suffix := strconv.Itoa(os.Getpid() % 100000)
	b, err := start(bin, suffix)
	if err != nil {
		return err
	}
	defer func() { b.stop(suffix) }()
	first, berthTimes, floorTimes, err := b.deploys(image, n, true)
	if err != nil {
		return err
	}

	// Many instances: scale one component and wait for all to run.
	if err := b.call("POST", comps, map[string]any{"alias": "many", "image": image, "cmd": serve, "memory": "16Mi", "instances": 1,
		"ports": []any{map[string]any{"port": 8080, "inner": true}}}, 201, nil); err != nil {
		return err
	}
	if err := b.call("POST", comps+"/many/deploy", nil, 202, nil); err != nil {
		return err
	}
	time.Sleep(2 * time.Second)
	t0 := time.Now()
	if err := b.call("POST", comps+"/many/scale", map[string]any{"instances": instances}, 202, nil); err != nil {
		return err
	}
	var scaled time.Duration
	for time.Since(t0) < 10*time.Minute {
		var c component
		if err := b.call("GET", comps+"/many", nil, 200, &c); err != nil {
			return err
		}
		running := 0
		for _, in := range c.Instances {
			if in.Status == "running" {
				running++
			}
		}
		if running == instances {
			scaled = time.Since(t0)
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if scaled == 0 {
		return fmt.Errorf("%d instances did not all reach running within 10 minutes", instances)
	}
	time.Sleep(2 * time.Second)
	rss := rssMB(b.cmd.Process.Pid)
	_ = b.call("DELETE", comps+"/many", nil, 204, nil)

	// The same deploys on a berth without user namespaces: their cost.
	var offFirst time.Duration
	var offTimes []time.Duration
	if supportsUserNSFlag(bin) {
		b.stop(suffix)
		off, err := start(bin, suffix, "--userns", "off")
		if err != nil {
			return err
		}
		b = off
		if offFirst, offTimes, _, err = off.deploys(image, n, false); err != nil {
			return err
		}
	}

	bm, fm := median(berthTimes), median(floorTimes)
	ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
	fmt.Printf("berth deploy benchmark (%d deploys, image local, containerd %s)\n\n", n, "supervised by berth")
	fmt.Printf("%-52s %12s %12s\n", "figure", "measured", "target")
	fmt.Printf("%-52s %10.1fms %12s\n", "deploy call -> first HTTP 200 via inner address (median)", ms(bm), "<= 1000ms")
	fmt.Printf("%-52s %10.1fms %12s\n", "floor: ctr run + poll the port (median)", ms(fm), "")
	fmt.Printf("%-52s %11.2fx %12s\n", "ratio berth / floor", float64(bm)/float64(fm), "<= 2x")
	fmt.Printf("%-52s %10.1fms %12s\n", "first deploy in the team (pull, remapped root fs)", ms(first), "")
	if offTimes != nil {
		om := median(offTimes)
		fmt.Printf("%-52s %10.1fms %12s\n", "deploy -> first 200 with --userns off (median)", ms(om), "")
		fmt.Printf("%-52s %11.2fx %12s\n", "ratio user namespaces on / off", float64(bm)/float64(om), "")
		fmt.Printf("%-52s %10.1fms %12s\n", "first deploy with --userns off (pull)", ms(offFirst), "")
	} else {
		fmt.Printf("%-52s %12s\n", "userns on/off ratio", "skipped: berth server has no --userns flag")
	}
	fmt.Printf("%-52s %11.1fs %12s\n", fmt.Sprintf("scale 1 -> %d instances, all running", instances), scaled.Seconds(), "")
	fmt.Printf("%-52s %10.1fMB %12s\n", fmt.Sprintf("berth RSS with %d instances", instances), rss, "")
	return nil
}

// deploys creates team bench and times a first deploy (which pulls the
// image and, with user namespaces, remaps its root file system for the
// team), then n deploys of new components, each followed by the floor
// when floor is set.
func (b *berth) deploys(image string, n int, floor bool) (time.Duration, []time.Duration, []time.Duration, error) {
	if err := b.call("POST", "/api/v1/teams", map[string]any{"name": "bench"}, 201, nil); err != nil {
		return 0, nil, nil, err
	}
	if err := b.call("POST", "/api/v1/teams/bench/apps", map[string]any{"name": "app"}, 201, nil); err != nil {
		return 0, nil, nil, err
	}
	first, err := b.timeDeploy("warm", image)
	if err != nil {
		return 0, nil, nil, err
	}
	var berthTimes, floorTimes []time.Duration
	for i := 0; i < n; i++ {
		d, err := b.timeDeploy(fmt.Sprintf("d%02d", i), image)
		if err != nil {
			return 0, nil, nil, err
		}
		berthTimes = append(berthTimes, d)
		if floor {
			f, err := timeCtr(b, image, i)
			if err != nil {
				return 0, nil, nil, err
			}
			floorTimes = append(floorTimes, f)
		}
		_ = b.call("DELETE", comps+fmt.Sprintf("/d%02d", i), nil, 204, nil)
	}
	_ = b.call("DELETE", comps+"/warm", nil, 204, nil)
	return first, berthTimes, floorTimes, nil
}

// supportsUserNSFlag says whether this berth takes --userns (the CLI flag
// over containerd.DriverConfig.UserNS).
func supportsUserNSFlag(bin string) bool {
	out, _ := exec.Command(bin, "server", "--help").CombinedOutput()
	return strings.Contains(string(out), "-userns")
}

// Command build measures how long berth takes to turn the Go and Node.js
// samples into images, cold (after `buildctl prune --all`) and warm
// (unchanged source right after a build), side by side with `buildctl
// build` of an equivalent hand-written Dockerfile on the same buildkitd,
// with the same offline base images from the hub. It also times a warm
// rebuild of a one-line code change until the new version answers through
// the gateway, watching the switch with a request every 10ms.
//
//	sudo go run ./bench/build [-runs 3] [-logs DIR]
//
// Two controls explain berth's figures: buildctl on a fresh `git clone`
// (the context berth gets, .git included), and the same code change on a
// component created with its port (berth then adds no readiness probe).
//
// It starts its own berth (own data directory, containerd namespace,
// bridge and subnets, loopback ports), runs `images prepare` for go and
// node (cached in /var/cache/berth-test/baseimage), serves the samples
// from a git server on loopback, and removes everything at the end.
package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/berth-platform/berth/internal/model"
	"github.com/berth-platform/berth/internal/runtime/cninetwork"
	"github.com/berth-platform/berth/internal/runtime/containerd"
	"github.com/berth-platform/berth/internal/testgit"
	"github.com/berth-platform/berth/internal/testsample"
)

const (
	buildctlBin     = "/usr/local/bin/buildctl"
	baseImagesCache = "/var/cache/berth-test/baseimage"
	// hostCA is the bundle berth offers builds as the secret berth-ca
	// (its default without --build-ca); buildctl offers the same.
	hostCA    = "/etc/ssl/certs/ca-certificates.crt"
	domain    = "bench.test"
	team, app = "bench", "app"
	comps     = "/api/v1/teams/" + team + "/apps/" + app + "/components"
)

func main() {
	runs := flag.Int("runs", 3, "runs per figure (medians are printed)")
	limit := flag.Duration("timeout", 2*time.Hour, "bound on the whole benchmark, images prepare included")
	logs := flag.String("logs", "", "keep berth's, buildkitd's, buildctl's and the builds' logs in this directory")
	flag.Parse()
	if *runs < 1 {
		fmt.Fprintln(os.Stderr, "bench: -runs must be at least 1")
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	ctx, cancel := context.WithTimeout(ctx, *limit)
	err := run(ctx, *runs, *logs)
	cancel()
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

// ---- samples ----------------------------------------------------------

// sample is one app: its files (as in test/e2e/build_languages_test.go),
// the marker line its answer starts with, and the hand-written Dockerfile
// buildctl builds (HUB is replaced by the hub's address).
type sample struct {
	name, greeting string
	files          map[string]string
	// codeFile is edited for the warm rebuild to a running new version.
	codeFile   string
	dockerfile string
}

var samples = []sample{
	{
		name: "go", greeting: "hello from go", codeFile: "main.go",
		files: testsample.Apps["go"],
		// What a developer writes for the same app: modules first, then
		// the code, both RUNs with cache mounts (and the host's CA bundle
		// as a secret, as berth does, for a TLS-intercepting proxy); a
		// static binary on the plain Debian runner.
		dockerfile: `FROM HUB/berth/base-go-builder:latest AS build
WORKDIR /src
ENV GOPATH=/go GOMODCACHE=/go/pkg/mod GOCACHE=/root/.cache/go-build CGO_ENABLED=0 GOTOOLCHAIN=auto GOFLAGS=-mod=mod
COPY go.mod go.sum ./
RUN --mount=type=secret,id=berth-ca,target=/etc/ssl/certs/ca-certificates.crt,required=false --mount=type=cache,target=/go/pkg/mod --mount=type=cache,target=/root/.cache/go-build go mod download
COPY . .
RUN --mount=type=secret,id=berth-ca,target=/etc/ssl/certs/ca-certificates.crt,required=false --mount=type=cache,target=/go/pkg/mod --mount=type=cache,target=/root/.cache/go-build go build -trimpath -ldflags="-s -w" -o /out/bin/hello .
RUN mkdir -p /out/certs && cp /etc/ssl/certs/ca-certificates.crt /out/certs/

FROM HUB/berth/base-go-runner:latest
WORKDIR /app
COPY --from=build /out/certs/ /etc/ssl/certs/
COPY --from=build /out/bin/ /app/bin/
ENV PORT=5000
EXPOSE 5000
CMD ["/app/bin/hello"]
`,
	},
	{
		name: "node", greeting: "hello from node", codeFile: "server.js",
		files: testsample.Apps["node"],
		dockerfile: `FROM HUB/berth/base-node-builder:latest AS build
WORKDIR /app
ENV NPM_CONFIG_UPDATE_NOTIFIER=false NPM_CONFIG_FUND=false NPM_CONFIG_AUDIT=false
COPY package.json package-lock.json ./
RUN --mount=type=secret,id=berth-ca,target=/etc/ssl/certs/ca-certificates.crt,required=false --mount=type=cache,target=/root/.npm npm ci
COPY . .

FROM HUB/berth/base-node-runner:latest
WORKDIR /app
ENV NODE_ENV=production PORT=5000
COPY --from=build /app /app
EXPOSE 5000
CMD ["node","server.js"]
`,
	},
}

// withMarker is the sample's code with its answer changed to carry marker.
func (s sample) withMarker(marker string) map[string]string {
	return map[string]string{s.codeFile: strings.Replace(s.files[s.codeFile], s.greeting+" ", s.greeting+" "+marker+" ", 1)}
}

// ---- testgit outside a test --------------------------------------------

// tb lets internal/testgit run outside `go test`: failures panic (run
// recovers them into an error), temporary directories and cleanups are
// kept until done.
type tb struct {
	testing.TB
	dirs     []string
	cleanups []func()
}

type tbFailure string

func (t *tb) Helper()                   {}
func (t *tb) Fatal(args ...any)         { panic(tbFailure(fmt.Sprint(args...))) }
func (t *tb) Fatalf(f string, a ...any) { panic(tbFailure(fmt.Sprintf(f, a...))) }
func (t *tb) Skip(args ...any)          { panic(tbFailure(fmt.Sprint(args...))) }
func (t *tb) Cleanup(f func())          { t.cleanups = append(t.cleanups, f) }
func (t *tb) TempDir() string {
	d, err := os.MkdirTemp("", "berth-bench-git-")
	if err != nil {
		panic(tbFailure(err.Error()))
	}
	t.dirs = append(t.dirs, d)
	return d
}

func (t *tb) done() {
	for i := len(t.cleanups) - 1; i >= 0; i-- {
		t.cleanups[i]()
	}
	for _, d := range t.dirs {
		_ = os.RemoveAll(d)
	}
}

// ---- berth --------------------------------------------------------------

type berth struct {
	cmd                 *exec.Cmd
	exited              chan struct{}
	url, addr, token    string
	gatewayHTTP         string
	data, namespace     string
	bridge, link        string
	subnet, serviceNet  string
	buildkitSock        string
	httpc, gatewayc     *http.Client
	componentsToDelete  []string
	startedAt, readyAt  time.Time
	serverOutput        string
	prepareTook         time.Duration
	prepareReusedLayers int
}

func freeAddr() string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// freeRange finds n consecutive free loopback ports (for --tcp-ports).
func freeRange(n int) string {
	for try := 0; try < 50; try++ {
		first, _ := strconv.Atoi(strings.Split(freeAddr(), ":")[1])
		if first+n > 65535 {
			continue
		}
		ok := true
		for p := first; p < first+n && ok; p++ {
			ln, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(p))
			if err != nil {
				ok = false
				continue
			}
			ln.Close()
		}
		if ok {
			return fmt.Sprintf("%d-%d", first, first+n-1)
		}
	}
	return "39100-39101"
}

// subnetsFree picks 10.x /24s that no interface of this machine is in.
func subnetsFree() (string, string) {
	addrs, _ := net.InterfaceAddrs()
	used := func(a, b int) bool {
		_, n, _ := net.ParseCIDR(fmt.Sprintf("10.%d.%d.0/24", a, b))
		for _, ad := range addrs {
			if ip, _, err := net.ParseCIDR(ad.String()); err == nil && n.Contains(ip) {
				return true
			}
		}
		return false
	}
	// 10.215.x (instances) and 10.216.x (services): next to berth's
	// defaults (10.213/10.214), away from the e2e tests' 10.200-10.207 and
	// bench/deploy's 10.209.
	for off := 0; off < 250; off++ {
		b := (os.Getpid() + off) % 250
		if !used(215, b) && !used(216, b) {
			return fmt.Sprintf("10.215.%d.0/24", b), fmt.Sprintf("10.216.%d.0/24", b)
		}
	}
	return "10.215.250.0/24", "10.216.250.0/24"
}

func startBerth(ctx context.Context, bin string) (*berth, error) {
	data, err := os.MkdirTemp("/tmp", "bbb-")
	if err != nil {
		return nil, err
	}
	suffix := fmt.Sprintf("%05d", os.Getpid()%100000)
	b := &berth{data: data, namespace: "benchbuild-" + suffix, bridge: "bbb" + suffix, link: "bbs" + suffix,
		httpc: &http.Client{Timeout: 2 * time.Minute}}
	b.subnet, b.serviceNet = subnetsFree()
	b.addr = freeAddr()
	b.url = "http://" + b.addr
	b.gatewayHTTP = freeAddr()
	b.buildkitSock = filepath.Join(data, "buildkit", "buildkitd.sock")
	b.gatewayc = &http.Client{Timeout: gatewayTimeout,
		Transport: &http.Transport{DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "tcp", b.gatewayHTTP)
		}, DisableKeepAlives: true}}
	args := []string{"server", "--data", data, "--listen", b.addr,
		"--http", b.gatewayHTTP, "--https", freeAddr(), "--domain", domain, "--tcp-ports", freeRange(2),
		"--runtime", "containerd", "--containerd-namespace", b.namespace,
		"--bridge", b.bridge, "--subnet", b.subnet, "--service-link", b.link, "--service-subnet", b.serviceNet,
		"--base-images-dir", baseImagesCache}
	b.cmd = exec.Command(bin, args...)
	b.serverOutput = filepath.Join(data, "server.out")
	logf, err := os.Create(b.serverOutput)
	if err != nil {
		return b, err
	}
	b.cmd.Stdout, b.cmd.Stderr = logf, logf
	b.startedAt = time.Now()
	fmt.Printf("starting berth: data %s, API %s, gateway %s, namespace %s, bridge %s %s, services %s %s\n",
		data, b.addr, b.gatewayHTTP, b.namespace, b.bridge, b.subnet, b.link, b.serviceNet)
	if err := b.cmd.Start(); err != nil {
		return b, err
	}
	b.exited = make(chan struct{})
	go func() { _ = b.cmd.Wait(); logf.Close(); close(b.exited) }()
	for time.Since(b.startedAt) < 3*time.Minute {
		select {
		case <-b.exited:
			return b, fmt.Errorf("berth exited during start-up:\n%s", tail(b.serverOutput, 30))
		case <-ctx.Done():
			return b, ctx.Err()
		default:
		}
		if resp, err := http.Get(b.url + "/healthz"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				tok, err := os.ReadFile(filepath.Join(data, "admin-token"))
				b.token = strings.TrimSpace(string(tok))
				b.readyAt = time.Now()
				return b, err
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	return b, fmt.Errorf("berth not healthy within 3 minutes:\n%s", tail(b.serverOutput, 30))
}

func tail(path string, n int) string {
	raw, _ := os.ReadFile(path)
	lines := strings.Split(strings.TrimRight(string(raw), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

func (b *berth) call(method, path string, body any, want int, out any) error {
	var rd io.Reader
	if body != nil {
		j, _ := json.Marshal(body)
		rd = bytes.NewReader(j)
	}
	req, _ := http.NewRequest(method, b.url+path, rd)
	req.Header.Set("Authorization", "Bearer "+b.token)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := b.httpc.Do(req)
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

type logLine struct {
	Seq   int64
	Time  time.Time
	Stage string
	Text  string
}

type eventLog struct {
	Event struct {
		Status     string
		Message    string
		CreatedAt  time.Time  `json:"created_at"`
		StartedAt  *time.Time `json:"started_at"`
		FinishedAt *time.Time `json:"finished_at"`
	}
	Lines []logLine
}

// follow waits for an event to end, handing each new log line to show
// (may be nil), and returns its whole log.
func (b *berth) follow(ctx context.Context, id string, limit time.Duration, show func(logLine)) (eventLog, error) {
	var all eventLog
	var after int64
	deadline := time.Now().Add(limit)
	for {
		var page eventLog
		if err := b.call("GET", fmt.Sprintf("/api/v1/events/%s/log?after=%d", id, after), nil, 200, &page); err != nil {
			return all, err
		}
		all.Event = page.Event
		for _, l := range page.Lines {
			all.Lines = append(all.Lines, l)
			after = l.Seq
			if show != nil {
				show(l)
			}
		}
		if len(page.Lines) == 0 && page.Event.Status != "running" && page.Event.Status != "" {
			return all, nil
		}
		if time.Now().After(deadline) {
			return all, fmt.Errorf("event %s did not end within %s", id, limit)
		}
		select {
		case <-ctx.Done():
			return all, ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// prepare runs `images prepare` for go and node, retrying while another
// prepare holds the shared cache directory.
func (b *berth) prepare(ctx context.Context) error {
	t0 := time.Now()
	for attempt := 1; ; attempt++ {
		var acc struct {
			EventID string `json:"event_id"`
		}
		if err := b.call("POST", "/api/v1/images/prepare", map[string]any{"languages": []string{"go", "node"}}, 202, &acc); err != nil {
			return err
		}
		ev, err := b.follow(ctx, acc.EventID, 40*time.Minute, func(l logLine) {
			if strings.Contains(l.Text, "reusing the layer") {
				b.prepareReusedLayers++
			}
			fmt.Printf("  prepare %6.1fs  %s\n", time.Since(t0).Seconds(), l.Text)
		})
		if err != nil {
			return fmt.Errorf("images prepare: %w", err)
		}
		if ev.Event.Status == "success" {
			b.prepareTook = time.Since(t0)
			return nil
		}
		msg := ev.Event.Message
		for _, l := range ev.Lines {
			msg += "\n" + l.Text
		}
		if strings.Contains(msg, "in use by another images prepare") && attempt < 60 {
			fmt.Println("  the base image cache is in use by another prepare; retrying in 20s")
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(20 * time.Second):
			}
			continue
		}
		return fmt.Errorf("images prepare failed: %s", msg)
	}
}

// stop removes the components (so their containers stop), ends berth and
// removes what it leaves behind: processes of its data directory, mounts,
// the bridge, the service link, cgroups and the directory.
func (b *berth) stop() {
	if b.token != "" {
		for _, alias := range b.componentsToDelete {
			if err := b.call("DELETE", comps+"/"+alias, nil, 204, nil); err != nil {
				fmt.Fprintln(os.Stderr, "bench: delete component", alias+":", err)
			}
		}
	}
	if b.cmd != nil && b.cmd.Process != nil && b.exited != nil {
		_ = b.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-b.exited:
		case <-time.After(60 * time.Second):
			fmt.Fprintln(os.Stderr, "bench: berth did not stop within 60s; killing it")
			_ = b.cmd.Process.Kill()
			<-b.exited
		}
	}
	// Shims and containers started for this data directory mention it.
	out, _ := exec.Command("pgrep", "-f", b.data).Output()
	for _, pid := range strings.Fields(string(out)) {
		if p, _ := strconv.Atoi(pid); p > 0 && p != os.Getpid() {
			_ = syscall.Kill(p, syscall.SIGKILL)
		}
	}
	time.Sleep(300 * time.Millisecond)
	mounts, _ := os.ReadFile("/proc/mounts")
	lines := strings.Split(string(mounts), "\n")
	for i := len(lines) - 1; i >= 0; i-- {
		if f := strings.Fields(lines[i]); len(f) > 1 && strings.HasPrefix(f[1], b.data+"/") {
			_ = syscall.Unmount(f[1], syscall.MNT_DETACH)
		}
	}
	if n, err := cninetwork.NewTeamNetworks(context.Background(), cninetwork.TeamConfig{Bridge: b.bridge, Subnet: b.subnet, StateDir: filepath.Join(b.data, "runtime", "cni")}); err == nil {
		if err := n.Destroy(context.Background()); err != nil {
			fmt.Fprintln(os.Stderr, "bench: remove the networks:", err)
		}
	}
	_ = containerd.RemoveBundleStateDir(b.data)
	_ = exec.Command("ip", "link", "del", b.link).Run()
	cg, _ := filepath.Glob("/sys/fs/cgroup/*/" + b.namespace)
	for _, d := range cg {
		_ = os.Remove(d)
	}
	if err := os.RemoveAll(b.data); err != nil {
		fmt.Fprintln(os.Stderr, "bench: remove the data directory:", err)
	}
}

// ---- measurements ------------------------------------------------------

// berthBuild is one build through berth.
type berthBuild struct {
	built   time.Duration // POST build -> "Build success" (image pushed, version recorded)
	total   time.Duration // POST build -> event ended (deployed)
	running time.Duration // POST build -> the new version answers through the gateway (0 if not asked)
	switchSeen
	phases   map[string]time.Duration
	cache    string // "X of Y" steps from the cache
	eventLog eventLog
}

var phaseOrder = []string{"queue", "clone", "detect+plan", "record version", "buildkit", "record success", "deploy→ready"}

// switchSeen is what the gateway poller saw while a new version rolled
// out: requests that got no 200 and the slowest request.
type switchSeen struct {
	first             time.Duration
	requests, failed  int
	failures          []string
	slowest, slowSent time.Duration
}

// gatewayTimeout bounds one request of the poller: long enough to see a
// request the gateway holds during a rollout.
const gatewayTimeout = 15 * time.Second

// pollGateway sends a request to the component's default domain every
// 10ms (without waiting for the previous ones) until one is answered with
// want, then waits for those still in flight.
func (b *berth) pollGateway(host, want string, t0 time.Time, stop <-chan struct{}, out chan<- switchSeen) {
	type result struct {
		sent, took time.Duration
		status     int
		err        error
	}
	var (
		mu      sync.Mutex
		results []result
		wg      sync.WaitGroup
		seen    switchSeen
	)
	newSeen := make(chan time.Duration, 1)
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
loop:
	for {
		select {
		case <-stop:
			return
		case seen.first = <-newSeen:
			break loop
		case <-tick.C:
			if time.Since(t0) > 15*time.Minute {
				return
			}
			wg.Add(1)
			go func(sent time.Duration) {
				defer wg.Done()
				req, _ := http.NewRequest("GET", "http://"+host+"/", nil)
				resp, err := b.gatewayc.Do(req)
				r := result{sent: sent, err: err}
				isNew := false
				if err == nil {
					body, _ := io.ReadAll(resp.Body)
					resp.Body.Close()
					r.status = resp.StatusCode
					isNew = r.status == 200 && strings.Contains(string(body), want)
				}
				r.took = time.Since(t0) - sent
				mu.Lock()
				results = append(results, r)
				mu.Unlock()
				if isNew {
					select {
					case newSeen <- sent + r.took:
					default:
					}
				}
			}(time.Since(t0))
		}
	}
	wg.Wait()
	sort.Slice(results, func(i, j int) bool { return results[i].sent < results[j].sent })
	seen.requests = len(results)
	for _, r := range results {
		if r.took > seen.slowest {
			seen.slowest, seen.slowSent = r.took, r.sent
		}
		if r.err == nil && r.status == 200 {
			continue
		}
		seen.failed++
		what := fmt.Sprint(r.status)
		if r.err != nil {
			what = r.err.Error()
			if strings.Contains(what, "Client.Timeout") {
				what = "no answer within " + gatewayTimeout.String()
			}
		}
		if len(seen.failures) < 5 {
			seen.failures = append(seen.failures, fmt.Sprintf("sent at %.2fs: %s after %.2fs", r.sent.Seconds(), what, r.took.Seconds()))
		}
	}
	out <- seen
}

// build builds alias through berth and waits for its event; with want
// set it also waits for an answer containing want through the gateway on
// port's default domain.
func (b *berth) build(ctx context.Context, alias string, port int, want string) (berthBuild, error) {
	var res berthBuild
	var acc struct {
		EventID string `json:"event_id"`
	}
	t0 := time.Now()
	if err := b.call("POST", comps+"/"+alias+"/build", nil, 202, &acc); err != nil {
		return res, err
	}
	answered := make(chan switchSeen, 1)
	stopPoll := make(chan struct{})
	defer close(stopPoll)
	if want != "" {
		go b.pollGateway(model.DefaultDomain(alias, port, team, domain), want, t0, stopPoll, answered)
	}
	ev, err := b.follow(ctx, acc.EventID, 15*time.Minute, nil)
	res.total = time.Since(t0)
	res.eventLog = ev
	if err != nil {
		return res, err
	}
	if ev.Event.Status != "success" {
		return res, fmt.Errorf("build of %s: %s %s\n%s", alias, ev.Event.Status, ev.Event.Message, joinLog(ev))
	}
	if ev.Event.FinishedAt != nil {
		res.total = ev.Event.FinishedAt.Sub(t0)
	}
	res.phases = map[string]time.Duration{}
	at := func(prefix string) time.Time {
		for _, l := range ev.Lines {
			if strings.HasPrefix(l.Text, prefix) {
				return l.Time
			}
		}
		return time.Time{}
	}
	span := func(name string, from, to time.Time) {
		if !from.IsZero() && !to.IsZero() {
			res.phases[name] = to.Sub(from)
		}
	}
	var first, ready time.Time
	if len(ev.Lines) > 0 {
		first = ev.Lines[0].Time
	}
	for _, l := range ev.Lines {
		if strings.Contains(l.Text, "instance(s) of version") && strings.HasSuffix(l.Text, "ready") {
			ready = l.Time
		}
		if strings.HasPrefix(l.Text, "build runtime image success") {
			res.cache = strings.TrimSuffix(strings.TrimPrefix(l.Text, "build runtime image success: "), " steps from the cache")
		}
	}
	cloned, planned, jobCreated := at("pull or clone code successfully"), at("make code package success"), at("create build code job success")
	imaged, success := at("build runtime image success"), at("Build success")
	span("queue", t0, first)
	span("clone", at("Start clone source code"), cloned)
	span("detect+plan", cloned, planned)
	span("record version", planned, jobCreated)
	span("buildkit", jobCreated, imaged)
	span("record success", imaged, success)
	span("deploy→ready", at("Deploying version"), ready)
	if success.IsZero() {
		return res, fmt.Errorf("no \"Build success\" line in the log of %s:\n%s", alias, joinLog(ev))
	}
	res.built = success.Sub(t0)
	if want != "" {
		select {
		case seen := <-answered:
			res.running, res.switchSeen = seen.first, seen
		case <-time.After(2*time.Minute + gatewayTimeout):
			return res, fmt.Errorf("%s: the new version (%q) never answered through the gateway", alias, want)
		case <-ctx.Done():
			return res, ctx.Err()
		}
	}
	return res, nil
}

func joinLog(ev eventLog) string {
	var sb strings.Builder
	for _, l := range ev.Lines {
		fmt.Fprintf(&sb, "%s [%s] %s\n", l.Time.Format("15:04:05.000"), l.Stage, l.Text)
	}
	return sb.String()
}

// buildctl runs the CLI against berth's buildkitd with the hub's
// credentials in a DOCKER_CONFIG of its own.
type buildctl struct {
	addr, dockerConfig, logDir string
	n                          int
}

func (c *buildctl) run(ctx context.Context, limit time.Duration, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, limit)
	defer cancel()
	cmd := exec.CommandContext(ctx, buildctlBin, append([]string{"--addr", c.addr}, args...)...)
	cmd.Env = append(os.Environ(), "DOCKER_CONFIG="+c.dockerConfig)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	c.n++
	_ = os.WriteFile(filepath.Join(c.logDir, fmt.Sprintf("buildctl-%02d-%s.log", c.n, args[0])), out.Bytes(), 0o644)
	if err != nil {
		return out.String(), fmt.Errorf("buildctl %s: %v\n%s", args[0], err, lastLines(out.String(), 25))
	}
	return out.String(), nil
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

func (c *buildctl) prune(ctx context.Context) error {
	_, err := c.run(ctx, 5*time.Minute, "prune", "--all")
	return err
}

type ctlBuild struct {
	took   time.Duration
	cached int // steps reported CACHED
	steps  int
}

func (c *buildctl) build(ctx context.Context, contextDir, dockerfileDir, ref string) (ctlBuild, error) {
	t0 := time.Now()
	out, err := c.run(ctx, 15*time.Minute, "build", "--progress", "plain", "--frontend", "dockerfile.v0",
		"--local", "context="+contextDir, "--local", "dockerfile="+dockerfileDir, "--secret", "id=berth-ca,src="+hostCA,
		"--output", "type=image,name="+ref+",push=true,registry.insecure=true")
	res := ctlBuild{took: time.Since(t0)}
	if err != nil {
		return res, err
	}
	// "#9 [build 4/6] RUN ..." then "#9 CACHED" for a step from the cache
	// (FROM lines are not counted, as berth does not count them).
	steps, cached := map[string]bool{}, map[string]bool{}
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) >= 4 && strings.HasPrefix(f[1], "[") && strings.HasSuffix(f[2], "]") &&
			(f[3] == "RUN" || f[3] == "COPY" || f[3] == "WORKDIR" || f[3] == "ADD") {
			steps[f[0]] = true
		}
		if len(f) == 2 && f[1] == "CACHED" {
			cached[f[0]] = true
		}
	}
	for id := range cached {
		if steps[id] {
			res.cached++
		}
	}
	res.steps = len(steps)
	return res, nil
}

// load is the 1-minute load average: the machine is shared, and a cold
// build's figure is only as good as the load it ran under.
func load() string {
	raw, _ := os.ReadFile("/proc/loadavg")
	if f := strings.Fields(string(raw)); len(f) > 0 {
		return "load " + f[0]
	}
	return "load ?"
}

func writeFiles(dir string, files map[string]string) error {
	for p, content := range files {
		full := filepath.Join(dir, p)
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(full, []byte(content), 0o644); err != nil {
			return err
		}
	}
	return nil
}

func median(ds []time.Duration) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := append([]time.Duration(nil), ds...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// ---- the benchmark -----------------------------------------------------

type figures struct {
	coldBerth, coldCtl, warmBerth, warmCtl, running []time.Duration
	coldTotal, warmTotal                            []time.Duration
	warmCtlClone                                    []time.Duration
	warmCache, warmCtlCloneCache                    []string
	switches                                        []switchSeen
	// The same change on a component created with its port (so without
	// the readiness probe berth adds when the build finds the port).
	runningNoProbe  []time.Duration
	switchesNoProbe []switchSeen
	phases          map[string]map[string][]time.Duration // kind -> phase -> runs
}

func (f *figures) addPhases(kind string, bb berthBuild) {
	if f.phases == nil {
		f.phases = map[string]map[string][]time.Duration{}
	}
	if f.phases[kind] == nil {
		f.phases[kind] = map[string][]time.Duration{}
	}
	for k, v := range bb.phases {
		f.phases[kind][k] = append(f.phases[kind][k], v)
	}
}

func run(ctx context.Context, runs int, keepLogs string) (err error) {
	if os.Geteuid() != 0 {
		return errors.New("run as root: berth starts containerd, buildkitd and containers")
	}
	for _, need := range []string{buildctlBin, "/usr/local/bin/buildkitd"} {
		if _, err := os.Stat(need); err != nil {
			return fmt.Errorf("%s is needed: %w", need, err)
		}
	}
	if _, err := exec.LookPath("debootstrap"); err != nil {
		return errors.New("debootstrap is needed for `images prepare` (apt-get install debootstrap)")
	}
	if err := os.MkdirAll(baseImagesCache, 0o755); err != nil {
		return err
	}
	gitTB := &tb{}
	defer gitTB.done()
	defer func() {
		if r := recover(); r != nil {
			if f, ok := r.(tbFailure); ok {
				err = fmt.Errorf("git server: %s", string(f))
				return
			}
			panic(r)
		}
	}()

	work, err := os.MkdirTemp("", "berth-bench-build-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(work)
	bin := filepath.Join(work, "berth")
	rev, _ := exec.Command("git", "rev-parse", "--short", "HEAD").Output()
	dirty, _ := exec.Command("git", "status", "--porcelain", "--untracked-files=no").Output()
	fmt.Printf("building berth (commit %s, %d file(s) changed in the working tree) ...\n", strings.TrimSpace(string(rev)), strings.Count(string(dirty), "\n"))
	if out, err := exec.CommandContext(ctx, "go", "build", "-o", bin, "./cmd/berth").CombinedOutput(); err != nil {
		return fmt.Errorf("go build ./cmd/berth: %v: %s", err, out)
	}

	logDir := filepath.Join(work, "logs")
	if keepLogs != "" {
		logDir = keepLogs
	}
	if err := os.MkdirAll(logDir, 0o755); err != nil {
		return err
	}
	b, err := startBerth(ctx, bin)
	if b == nil {
		return err
	}
	defer b.stop()
	// Runs before stop removes the data directory.
	defer func() {
		for _, f := range []string{b.serverOutput, filepath.Join(b.data, "logs", "buildkitd.log")} {
			if raw, err := os.ReadFile(f); err == nil {
				_ = os.WriteFile(filepath.Join(logDir, filepath.Base(f)), raw, 0o644)
			}
		}
	}()
	if err != nil {
		return err
	}
	fmt.Printf("berth healthy in %.1fs\n", b.readyAt.Sub(b.startedAt).Seconds())
	if err := b.call("POST", "/api/v1/teams", map[string]any{"name": team}, 201, nil); err != nil {
		return err
	}
	if err := b.call("POST", "/api/v1/teams/"+team+"/apps", map[string]any{"name": app}, 201, nil); err != nil {
		return err
	}

	fmt.Println("images prepare go node (Debian packages; cached in " + baseImagesCache + ") ...")
	if err := b.prepare(ctx); err != nil {
		return err
	}
	fmt.Printf("images prepare done in %s\n", b.prepareTook.Round(time.Second))

	// buildctl's credentials for the hub.
	ctl := &buildctl{addr: "unix://" + b.buildkitSock, dockerConfig: filepath.Join(work, "docker"), logDir: logDir}
	_ = os.MkdirAll(ctl.dockerConfig, 0o700)
	auth := base64.StdEncoding.EncodeToString([]byte("admin:" + b.token))
	cfg, _ := json.Marshal(map[string]any{"auths": map[string]any{b.addr: map[string]string{"auth": auth}}})
	if err := os.WriteFile(filepath.Join(ctl.dockerConfig, "config.json"), cfg, 0o600); err != nil {
		return err
	}

	git := testgit.Serve(gitTB, "", "")
	results := map[string]*figures{}
	for _, s := range samples {
		f := &figures{}
		results[s.name] = f
		repo := git.Repo(s.name)
		git.Commit(repo, s.name+" sample", s.files)
		// No port given: the first build adds the one the app listens on,
		// with a TCP readiness probe (what a user gets by default).
		if err := b.call("POST", comps, map[string]any{
			"alias": s.name, "kind": "source", "source": map[string]any{"url": git.URL(s.name), "branch": "main"}, "memory": "256Mi",
		}, 201, nil); err != nil {
			return err
		}
		b.componentsToDelete = append(b.componentsToDelete, s.name)
		port := 0
		ctxDir := filepath.Join(work, "ctx-"+s.name)
		dfDir := filepath.Join(work, "df-"+s.name)
		current := map[string]string{}
		for k, v := range s.files {
			current[k] = v
		}
		if err := writeFiles(dfDir, map[string]string{"Dockerfile": strings.ReplaceAll(s.dockerfile, "HUB", b.addr)}); err != nil {
			return err
		}
		saveLog := func(i int, kind string, bb berthBuild) {
			_ = os.WriteFile(filepath.Join(logDir, fmt.Sprintf("berth-%s-%d-%s.log", s.name, i, kind)), []byte(joinLog(bb.eventLog)), 0o644)
		}

		berthPass := func(i int) error {
			if err := ctl.prune(ctx); err != nil {
				return err
			}
			cold, err := b.build(ctx, s.name, 0, "")
			saveLog(i, "cold", cold)
			if err != nil {
				return err
			}
			fmt.Printf("  %s run %d: berth cold   %6.2fs to the pushed image (%s steps from the cache), %6.2fs deployed [%s]\n", s.name, i, cold.built.Seconds(), cold.cache, cold.total.Seconds(), load())
			if port == 0 {
				var c struct{ Ports []struct{ Port int } }
				if err := b.call("GET", comps+"/"+s.name, nil, 200, &c); err != nil {
					return err
				}
				if len(c.Ports) != 1 {
					return fmt.Errorf("%s: the build did not add the app's port: %+v", s.name, c.Ports)
				}
				port = c.Ports[0].Port
				if err := b.call("PATCH", fmt.Sprintf("%s/%s/ports/%d", comps, s.name, port), map[string]any{"outer": true}, 200, nil); err != nil {
					return err
				}
			}
			warm, err := b.build(ctx, s.name, port, "")
			saveLog(i, "warm", warm)
			if err != nil {
				return err
			}
			fmt.Printf("  %s run %d: berth warm   %6.2fs to the pushed image (%s steps from the cache), %6.2fs deployed\n", s.name, i, warm.built.Seconds(), warm.cache, warm.total.Seconds())
			marker := fmt.Sprintf("r%d", i)
			git.Commit(repo, "change "+marker, s.withMarker(marker))
			for k, v := range s.withMarker(marker) {
				current[k] = v
			}
			change, err := b.build(ctx, s.name, port, s.greeting+" "+marker+" ")
			saveLog(i, "change", change)
			if err != nil {
				return err
			}
			fmt.Printf("  %s run %d: berth change %6.2fs to the pushed image (%s steps from the cache), %6.2fs new version answers via the gateway, %6.2fs event ended; %s\n",
				s.name, i, change.built.Seconds(), change.cache, change.running.Seconds(), change.total.Seconds(), change.switchSeen)
			f.coldBerth = append(f.coldBerth, cold.built)
			f.warmBerth = append(f.warmBerth, warm.built)
			f.coldTotal = append(f.coldTotal, cold.total)
			f.warmTotal = append(f.warmTotal, warm.total)
			f.warmCache = append(f.warmCache, warm.cache)
			f.running = append(f.running, change.running)
			f.switches = append(f.switches, change.switchSeen)
			f.addPhases("cold", cold)
			f.addPhases("warm", warm)
			f.addPhases("change→running", change)
			return nil
		}
		ctlPass := func(i int) error {
			if err := os.RemoveAll(ctxDir); err != nil {
				return err
			}
			if err := writeFiles(ctxDir, current); err != nil {
				return err
			}
			if err := ctl.prune(ctx); err != nil {
				return err
			}
			ref := fmt.Sprintf("%s/benchctl/%s", b.addr, s.name)
			cold, err := ctl.build(ctx, ctxDir, dfDir, fmt.Sprintf("%s:cold-%d", ref, i))
			if err != nil {
				return err
			}
			fmt.Printf("  %s run %d: buildctl cold %6.2fs (%d of %d steps from the cache) [%s]\n", s.name, i, cold.took.Seconds(), cold.cached, cold.steps, load())
			warm, err := ctl.build(ctx, ctxDir, dfDir, fmt.Sprintf("%s:warm-%d", ref, i))
			if err != nil {
				return err
			}
			fmt.Printf("  %s run %d: buildctl warm %6.2fs (%d of %d steps from the cache)\n", s.name, i, warm.took.Seconds(), warm.cached, warm.steps)
			// Control: the context a fresh `git clone` makes, .git included,
			// as berth sends it; the first clone primes the cache.
			var clone ctlBuild
			for k := 0; k < 2; k++ {
				dir := filepath.Join(work, fmt.Sprintf("clone-%s-%d-%d", s.name, i, k))
				if out, err := exec.CommandContext(ctx, "git", "clone", "-q", "--depth", "1", "-b", "main", git.URL(s.name), dir).CombinedOutput(); err != nil {
					return fmt.Errorf("git clone: %v: %s", err, out)
				}
				clone, err = ctl.build(ctx, dir, dfDir, fmt.Sprintf("%s:clone-%d", ref, i))
				_ = os.RemoveAll(dir)
				if err != nil {
					return err
				}
			}
			fmt.Printf("  %s run %d: buildctl warm from a fresh clone with .git %6.2fs (%d of %d steps from the cache)\n", s.name, i, clone.took.Seconds(), clone.cached, clone.steps)
			f.coldCtl = append(f.coldCtl, cold.took)
			f.warmCtl = append(f.warmCtl, warm.took)
			f.warmCtlClone = append(f.warmCtlClone, clone.took)
			f.warmCtlCloneCache = append(f.warmCtlCloneCache, fmt.Sprintf("%d of %d", clone.cached, clone.steps))
			return nil
		}
		for i := 1; i <= runs; i++ {
			// Alternate who goes first, so neither always inherits a warmer
			// machine (page cache, the hub's blobs).
			first, second := berthPass, ctlPass
			if i%2 == 0 {
				first, second = ctlPass, berthPass
			}
			if err := first(i); err != nil {
				return err
			}
			if err := second(i); err != nil {
				return err
			}
		}

		// The same change on a component created with its port given, as
		// Rainbond users do: berth adds no readiness probe then.
		alias := s.name + "-port"
		if err := b.call("POST", comps, map[string]any{
			"alias": alias, "kind": "source", "source": map[string]any{"url": git.URL(s.name), "branch": "main"}, "memory": "256Mi",
			"ports": []map[string]any{{"port": port, "protocol": "http", "outer": true}},
		}, 201, nil); err != nil {
			return err
		}
		b.componentsToDelete = append(b.componentsToDelete, alias)
		if _, err := b.build(ctx, alias, port, ""); err != nil {
			return err
		}
		for i := 1; i <= runs; i++ {
			marker := fmt.Sprintf("p%d", i)
			git.Commit(repo, "change "+marker, s.withMarker(marker))
			change, err := b.build(ctx, alias, port, s.greeting+" "+marker+" ")
			saveLog(i, "port-change", change)
			if err != nil {
				return err
			}
			fmt.Printf("  %s run %d: port given, no probe: change %6.2fs to the pushed image, %6.2fs new version answers; %s\n",
				alias, i, change.built.Seconds(), change.running.Seconds(), change.switchSeen)
			f.runningNoProbe = append(f.runningNoProbe, change.running)
			f.switchesNoProbe = append(f.switchesNoProbe, change.switchSeen)
		}
	}

	report(runs, results, b)
	if keepLogs != "" {
		fmt.Printf("\nlogs kept in %s\n", keepLogs)
	}
	return nil
}

// String is one rollout's switch as the poller saw it.
func (s switchSeen) String() string {
	out := fmt.Sprintf("%d requests, %d failed, slowest %.2fs (sent at %.2fs)", s.requests, s.failed, s.slowest.Seconds(), s.slowSent.Seconds())
	if len(s.failures) > 0 {
		out += ": " + strings.Join(s.failures, "; ")
	}
	return out
}

// summarize adds up the switches of all runs.
func summarize(ss []switchSeen) string {
	requests, failed, slowest, withFailures := 0, 0, time.Duration(0), 0
	for _, s := range ss {
		requests += s.requests
		failed += s.failed
		slowest = max(slowest, s.slowest)
		if s.failed > 0 {
			withFailures++
		}
	}
	return fmt.Sprintf("%d of %d rollouts had failed requests (%d of %d requests), slowest request %.2fs", withFailures, len(ss), failed, requests, slowest.Seconds())
}

func report(runs int, results map[string]*figures, b *berth) {
	sec := func(d time.Duration) string { return fmt.Sprintf("%.2fs", d.Seconds()) }
	ratio := func(a, c time.Duration) string {
		if c == 0 {
			return "-"
		}
		return fmt.Sprintf("%.2f", float64(a)/float64(c))
	}
	fmt.Printf("\nberth build benchmark: medians of %d run(s); same buildkitd (berth's), offline base images from the hub\n", runs)
	fmt.Printf("cold = after `buildctl prune --all`; warm = unchanged source right after a build; berth's times end at\n")
	fmt.Printf("\"Build success\" (image pushed, version recorded); warm→running = POST build of a one-line code change\n")
	fmt.Printf("until the new version answers through the gateway.\n\n")
	row := "%-7s %11s %13s %6s   %11s %13s %6s   %14s\n"
	fmt.Printf(row, "sample", "cold berth", "cold buildctl", "ratio", "warm berth", "warm buildctl", "ratio", "warm→running")
	for _, s := range samples {
		f := results[s.name]
		if f == nil {
			continue
		}
		cb, cc, wb, wc := median(f.coldBerth), median(f.coldCtl), median(f.warmBerth), median(f.warmCtl)
		fmt.Printf(row, s.name, sec(cb), sec(cc), ratio(cb, cc), sec(wb), sec(wc), ratio(wb, wc), sec(median(f.running)))
	}
	fmt.Printf(row, "target", "", "", "≤ 1.1", "", "", "≤ 1.1", "≤ 3s")

	fmt.Printf("\nwarm, cache use: berth's steps from the cache per run; buildctl on a fresh `git clone` (.git in the context, as berth sends it):\n")
	for _, s := range samples {
		if f := results[s.name]; f != nil {
			fmt.Printf("  %-5s berth %v; buildctl from a clone %s (%v), from the plain files %s\n", s.name, f.warmCache,
				sec(median(f.warmCtlClone)), f.warmCtlCloneCache, sec(median(f.warmCtl)))
		}
	}

	fmt.Printf("\nwhere berth's time goes (medians, from the event log's timestamps):\n")
	fmt.Printf("%-7s %-15s", "sample", "build")
	for _, p := range phaseOrder {
		fmt.Printf(" %14s", p)
	}
	fmt.Printf(" %12s\n", "event ended")
	for _, s := range samples {
		f := results[s.name]
		if f == nil {
			continue
		}
		for _, kind := range []string{"cold", "warm", "change→running"} {
			fmt.Printf("%-7s %-15s", s.name, kind)
			for _, p := range phaseOrder {
				if v, ok := f.phases[kind][p]; ok {
					fmt.Printf(" %14s", sec(median(v)))
				} else {
					fmt.Printf(" %14s", "-")
				}
			}
			switch kind {
			case "cold":
				fmt.Printf(" %12s", sec(median(f.coldTotal)))
			case "warm":
				fmt.Printf(" %12s", sec(median(f.warmTotal)))
			}
			fmt.Println()
		}
	}

	fmt.Printf("\nwarm→running, the switch through the gateway (a request every 10ms, each bounded by %s):\n", gatewayTimeout)
	for _, s := range samples {
		if f := results[s.name]; f != nil {
			fmt.Printf("  %-5s port found by the build (TCP readiness probe added): %s to the new version; %s\n", s.name, sec(median(f.running)), summarize(f.switches))
			fmt.Printf("  %-5s port given at creation (no readiness probe):        %s to the new version; %s\n", s.name, sec(median(f.runningNoProbe)), summarize(f.switchesNoProbe))
		}
	}
	fmt.Printf("\nberth start-up %.1fs; images prepare (go, node) %s, %d layer(s) reused from %s\n",
		b.readyAt.Sub(b.startedAt).Seconds(), b.prepareTook.Round(time.Second), b.prepareReusedLayers, baseImagesCache)
}

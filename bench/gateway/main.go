// Command gateway benchmarks berth's HTTP gateway against nginx: both proxy
// to the same small Go backend (1 KB answers) on this machine, and wrk
// drives each with keep-alive connections, in the same run:
//
//   - plain HTTP;
//   - TLS (a self-signed certificate made by the bench; HTTP/1.1, as wrk
//     speaks it);
//   - while routes change ten times a second: berth's table is replaced
//     through SetRoutes, nginx is sent a reload (SIGHUP) as often, which is
//     what changing its configuration takes.
//
// It prints requests a second, the ratio berth/nginx, and p50/p99 latency.
// wrk and nginx are installed with apt-get when missing. Everything
// listens on 127.0.0.1 and is stopped, and its files removed, at the end.
//
//	go run ./bench/gateway [-duration 10s] [-connections 64] [-rounds 3]
//	go run ./bench/gateway -target http://127.0.0.1:80 -host app.example.com -backend 127.0.0.1:18080
package main

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"regexp"
	"runtime/pprof"
	"sort"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/berth-platform/berth/internal/gateway"
)

func main() {
	duration := flag.Duration("duration", 10*time.Second, "length of each wrk run")
	conns := flag.Int("connections", 64, "wrk connections")
	threads := flag.Int("threads", 2, "wrk threads")
	rounds := flag.Int("rounds", 1, "runs of every scenario (interleaved); the median is reported")
	only := flag.String("scenarios", "plain,tls,churn", "scenarios to run, comma-separated (also: reverseproxy, net/http/httputil's proxy for comparison)")
	size := flag.Int("size", 1024, "bytes in each backend answer")
	target := flag.String("target", "", "URL of a running berth gateway (plain HTTP) to measure instead of an in-process one")
	tlsTarget := flag.String("tls-target", "", "with -target: URL of the same gateway's HTTPS side")
	host := flag.String("host", "bench.test", "Host header sent (the route's domain)")
	backendAddr := flag.String("backend", "", "address for the backend (default: a free loopback port); a -target gateway must route -host to it")
	cpuProfile := flag.String("cpuprofile", "", "write a CPU profile of the in-process gateway during the plain run")
	netHTTPOnly := flag.Bool("nethttp", false, "serve berth's plain HTTP with net/http's server alone (the gateway's NetHTTPOnly), not its own fast path")
	serveBackend := flag.String("serve-backend", "", "internal: run as the backend on this address")
	flag.Parse()

	if *serveBackend != "" {
		runBackend(*serveBackend, *size)
		return
	}
	b := &bench{duration: *duration, conns: *conns, threads: *threads, rounds: max(1, *rounds), only: *only, size: *size, host: *host,
		target: *target, tlsTarget: *tlsTarget, backendAddr: *backendAddr, cpuProfile: *cpuProfile, netHTTPOnly: *netHTTPOnly}
	err := b.run()
	b.cleanup()
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

type bench struct {
	duration                time.Duration
	conns, threads, size    int
	rounds                  int
	only                    string
	host, target, tlsTarget string
	backendAddr, cpuProfile string
	netHTTPOnly             bool
	fast                    []*gateway.FastServer

	dir      string
	backend  *exec.Cmd
	nginx    *exec.Cmd
	servers  []*http.Server
	proxy    *gateway.Proxy
	rpURL    string
	observed atomic.Int64
}

// result is one wrk run.
type result struct {
	rps      float64
	p50, p99 time.Duration
	errors   string // wrk's socket errors and non-2xx count, "" when none
	skipped  string
	// CPU time a request, by process: the proxy under test, the backend.
	proxyCPU, backendCPU time.Duration
}

func (b *bench) run() error {
	// Whatever happens, Ctrl-C leaves no process behind.
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, os.Interrupt, syscall.SIGTERM)
	go func() {
		<-sig
		b.cleanup()
		os.Exit(130)
	}()

	if err := ensureTools(); err != nil {
		return err
	}
	dir, err := os.MkdirTemp("", "berth-gateway-bench")
	if err != nil {
		return err
	}
	b.dir = dir
	if b.backendAddr == "" {
		if b.backendAddr, err = freeAddr(); err != nil {
			return err
		}
	}
	if err := b.startBackend(); err != nil {
		return err
	}
	certFile, keyFile, cert, err := selfSigned(dir, b.host)
	if err != nil {
		return err
	}

	// berth
	berthHTTP, berthTLS := b.target, b.tlsTarget
	if berthHTTP == "" {
		if berthHTTP, berthTLS, err = b.startBerth(cert); err != nil {
			return err
		}
	}
	// nginx
	nginxHTTP, nginxTLS, err := b.startNginx(certFile, keyFile)
	if err != nil {
		return err
	}
	fmt.Printf("backend %s (%d-byte answers); berth %s %s; nginx %s %s\n", b.backendAddr, b.size, berthHTTP, berthTLS, nginxHTTP, nginxTLS)
	fmt.Printf("wrk -t%d -c%d -d%s --latency, Host: %s\n\n", b.threads, b.conns, b.duration, b.host)

	// Each scenario, berth then nginx (nginx first on even rounds): a
	// shared machine's noise falls on both alike, and the median of the
	// rounds is reported.
	type side struct {
		skipped string
		run     func() (result, error)
	}
	churnBerth := func() (result, error) {
		stop := b.churn(func(i int) { b.proxy.SetRoutes(b.routes(i)) })
		defer stop()
		return b.wrk(berthHTTP, b.berthPIDs)
	}
	churnNginx := func() (result, error) {
		stop := b.churn(func(int) { _ = b.nginx.Process.Signal(syscall.SIGHUP) })
		defer stop()
		return b.wrk(nginxHTTP, b.nginxPIDs)
	}
	scenarios := []struct {
		key          string
		name         string
		berth, nginx side
		note         string
	}{
		{"plain", "plain HTTP", side{run: func() (result, error) { return b.wrk(berthHTTP, b.berthPIDs) }},
			side{run: func() (result, error) { return b.wrk(nginxHTTP, b.nginxPIDs) }}, ""},
		{"tls", "TLS (HTTP/1.1)", side{run: func() (result, error) { return b.wrk(berthTLS, b.berthPIDs) }},
			side{run: func() (result, error) { return b.wrk(nginxTLS, b.nginxPIDs) }}, ""},
		{"churn", "routes change 10×/s", side{run: churnBerth}, side{run: churnNginx}, "berth: SetRoutes; nginx: reload (SIGHUP)"},
		{"reverseproxy", "plain, httputil.ReverseProxy", side{run: func() (result, error) { return b.wrk(b.rpURL, b.berthPIDs) }},
			side{run: func() (result, error) { return b.wrk(nginxHTTP, b.nginxPIDs) }}, "the berth column is net/http/httputil.ReverseProxy, for comparison"},
	}
	if berthTLS == "" {
		scenarios[1].berth.skipped = "no -tls-target"
	}
	if b.proxy == nil {
		scenarios[2].berth.skipped = "needs the in-process gateway"
		scenarios[3].berth.skipped = "needs the in-process gateway"
	}

	wanted := map[string]bool{}
	for _, k := range strings.Split(b.only, ",") {
		wanted[strings.TrimSpace(k)] = true
	}
	kept := scenarios[:0]
	for _, sc := range scenarios {
		if wanted[sc.key] {
			kept = append(kept, sc)
		}
	}
	scenarios = kept

	type row struct {
		scenario     string
		berth, nginx []result
		note         string
	}
	rows := make([]row, len(scenarios))
	for round := 0; round < b.rounds; round++ {
		for i, sc := range scenarios {
			rows[i].scenario, rows[i].note = sc.name, sc.note
			order := []string{"berth", "nginx"}
			if round%2 == 1 {
				order = []string{"nginx", "berth"}
			}
			for _, who := range order {
				s := sc.berth
				if who == "nginx" {
					s = sc.nginx
				}
				if s.skipped != "" {
					if round == 0 {
						rows[i].berth = append(rows[i].berth, result{skipped: s.skipped})
					}
					continue
				}
				var stopProfile func()
				if who == "berth" && i == 0 && round == 0 && b.cpuProfile != "" {
					if stopProfile, err = startProfile(b.cpuProfile); err != nil {
						return err
					}
				}
				res, err := s.run()
				if stopProfile != nil {
					stopProfile()
				}
				if err != nil {
					return fmt.Errorf("%s, %s: %w", sc.name, who, err)
				}
				if who == "nginx" {
					rows[i].nginx = append(rows[i].nginx, res)
				} else {
					rows[i].berth = append(rows[i].berth, res)
				}
				if b.rounds > 1 {
					fmt.Fprintf(os.Stderr, "round %d, %s, %s: %.0f req/s\n", round+1, sc.name, who, res.rps)
				}
			}
		}
	}

	tw := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "scenario\tberth req/s\tnginx req/s\tberth/nginx\tberth p50\tberth p99\tnginx p50\tnginx p99\tberth CPU/req\tnginx CPU/req\tbackend CPU/req\t")
	type final struct {
		scenario     string
		berth, nginx result
		note         string
	}
	var finals []final
	for _, r := range rows {
		finals = append(finals, final{r.scenario, median(r.berth), median(r.nginx), r.note})
	}
	for _, r := range finals {
		ratio := "-"
		if r.berth.skipped == "" && r.nginx.rps > 0 {
			ratio = fmt.Sprintf("%.2f", r.berth.rps/r.nginx.rps)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t\n", r.scenario, r.berth.rpsText(), r.nginx.rpsText(), ratio,
			r.berth.lat(r.berth.p50), r.berth.lat(r.berth.p99), r.nginx.lat(r.nginx.p50), r.nginx.lat(r.nginx.p99),
			r.berth.cpu(r.berth.proxyCPU), r.nginx.cpu(r.nginx.proxyCPU), r.nginx.cpu(r.nginx.backendCPU))
	}
	tw.Flush()
	fmt.Println()
	if b.rounds > 1 {
		fmt.Printf("medians of %d rounds\n", b.rounds)
	}
	for _, r := range finals {
		for _, s := range []struct {
			name string
			res  result
		}{{"berth", r.berth}, {"nginx", r.nginx}} {
			if s.res.skipped != "" {
				fmt.Printf("%s, %s: not measured (%s)\n", r.scenario, s.name, s.res.skipped)
			}
			if s.res.errors != "" {
				fmt.Printf("%s, %s: %s\n", r.scenario, s.name, s.res.errors)
			}
		}
		if r.note != "" {
			fmt.Printf("%s: %s\n", r.scenario, r.note)
		}
	}
	if b.proxy != nil {
		fmt.Printf("berth observer saw %d requests\n", b.observed.Load())
	}
	return nil
}

// median is the run with the median throughput (its latencies with it).
func median(rs []result) result {
	if len(rs) == 0 {
		return result{skipped: "not run"}
	}
	sorted := append([]result(nil), rs...)
	sort.Slice(sorted, func(i, j int) bool { return sorted[i].rps < sorted[j].rps })
	return sorted[len(sorted)/2]
}

func (r result) rpsText() string {
	if r.skipped != "" {
		return "-"
	}
	return fmt.Sprintf("%.0f", r.rps)
}

func (r result) lat(d time.Duration) string {
	if r.skipped != "" {
		return "-"
	}
	return fmt.Sprintf("%.2fms", float64(d)/float64(time.Millisecond))
}

func (r result) cpu(d time.Duration) string {
	if r.skipped != "" || d == 0 {
		return "-"
	}
	return fmt.Sprintf("%.1fµs", float64(d)/float64(time.Microsecond))
}

func ensureTools() error {
	var need []string
	for _, t := range []string{"wrk", "nginx"} {
		if _, err := exec.LookPath(t); err != nil {
			need = append(need, t)
		}
	}
	if len(need) == 0 {
		return nil
	}
	fmt.Fprintf(os.Stderr, "installing %s with apt-get\n", strings.Join(need, " "))
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	install := func() error {
		cmd := exec.CommandContext(ctx, "apt-get", append([]string{"install", "-y", "-qq"}, need...)...)
		cmd.Env = append(os.Environ(), "DEBIAN_FRONTEND=noninteractive")
		cmd.Stdout, cmd.Stderr = io.Discard, os.Stderr
		return cmd.Run()
	}
	if err := install(); err != nil {
		update := exec.CommandContext(ctx, "apt-get", "update", "-qq")
		update.Stdout, update.Stderr = io.Discard, os.Stderr
		if err := update.Run(); err != nil {
			return fmt.Errorf("apt-get update: %w", err)
		}
		if err := install(); err != nil {
			return fmt.Errorf("apt-get install %s: %w", strings.Join(need, " "), err)
		}
	}
	return nil
}

func freeAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

// startBackend runs the backend as a child process (this program again),
// so it has its own scheduler and heap as it would in production, and
// competes with the gateway under test for the CPUs exactly as it does
// with nginx.
func (b *bench) startBackend() error {
	self, err := os.Executable()
	if err != nil {
		return err
	}
	b.backend = exec.Command(self, "-serve-backend", b.backendAddr, "-size", strconv.Itoa(b.size))
	b.backend.Stdout, b.backend.Stderr = os.Stderr, os.Stderr
	b.backend.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := b.backend.Start(); err != nil {
		return fmt.Errorf("start backend: %w", err)
	}
	return waitHTTP("http://"+b.backendAddr+"/", "", nil)
}

func runBackend(addr string, size int) {
	body := bytes.Repeat([]byte("x"), size)
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		w.Write(body)
	})
	srv := &http.Server{Addr: addr, Handler: h, ReadHeaderTimeout: 10 * time.Second}
	if err := srv.ListenAndServe(); err != nil {
		fmt.Fprintln(os.Stderr, "backend:", err)
		os.Exit(1)
	}
}

type countObserver struct{ n *atomic.Int64 }

func (c countObserver) Observe(*gateway.AccessRecord) { c.n.Add(1) }

func (b *bench) routes(i int) []gateway.Route {
	addr := b.backendAddr
	return []gateway.Route{
		{ID: "bench-" + strconv.Itoa(i%2), Domain: b.host, Path: "/", Component: "bench/backend", Port: 80,
			Upstreams: func() []string { return []string{addr} }},
		{ID: "other", Domain: "other." + b.host, Path: "/", Component: "bench/other", Port: 80,
			Upstreams: func() []string { return nil }},
	}
}

// startBerth serves gateway.Proxy in this process on two loopback ports,
// plain and TLS (HTTP/1.1 only: that is what wrk speaks).
func (b *bench) startBerth(cert tls.Certificate) (string, string, error) {
	b.proxy = gateway.NewProxyWith(gateway.ProxyOptions{Observer: countObserver{&b.observed}})
	b.proxy.SetRoutes(b.routes(0))
	quiet := slog.NewLogLogger(slog.NewTextHandler(io.Discard, nil), slog.LevelError)
	serve := func(tlsCfg *tls.Config) (string, error) {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return "", err
		}
		srv := &http.Server{Handler: b.proxy, ReadHeaderTimeout: 30 * time.Second, IdleTimeout: 5 * time.Minute, ErrorLog: quiet}
		b.servers = append(b.servers, srv)
		scheme := "http"
		if tlsCfg != nil {
			ln = tls.NewListener(ln, tlsCfg)
			scheme = "https"
		} else if !b.netHTTPOnly {
			// As the gateway's plain listener: its own HTTP/1.1 server,
			// net/http behind it.
			fs := gateway.NewFastServer(b.proxy, srv, ln)
			b.fast = append(b.fast, fs)
			go fs.Serve()
			return scheme + "://" + ln.Addr().String() + "/", nil
		}
		go srv.Serve(ln)
		return scheme + "://" + ln.Addr().String() + "/", nil
	}
	plain, err := serve(nil)
	if err != nil {
		return "", "", err
	}
	if strings.Contains(b.only, "reverseproxy") {
		// What the gateway used before its own client, served the same way.
		target := &url.URL{Scheme: "http", Host: b.backendAddr}
		rp := &httputil.ReverseProxy{
			Rewrite: func(pr *httputil.ProxyRequest) {
				pr.SetURL(target)
				pr.Out.Host = pr.In.Host
				pr.SetXForwarded()
			},
			Transport: &http.Transport{MaxIdleConnsPerHost: 64},
			ErrorLog:  quiet,
		}
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return "", "", err
		}
		srv := &http.Server{Handler: rp, ReadHeaderTimeout: 30 * time.Second, ErrorLog: quiet}
		b.servers = append(b.servers, srv)
		go srv.Serve(ln)
		b.rpURL = "http://" + ln.Addr().String() + "/"
	}
	secure, err := serve(&tls.Config{Certificates: []tls.Certificate{cert}, NextProtos: []string{"http/1.1"}})
	if err != nil {
		return "", "", err
	}
	if err := waitHTTP(plain, b.host, nil); err != nil {
		return "", "", fmt.Errorf("berth: %w", err)
	}
	return plain, secure, nil
}

const nginxConf = `worker_processes auto;
daemon off;
user root;
pid {{dir}}/nginx.pid;
error_log {{dir}}/error.log warn;
events { worker_connections 4096; }
http {
  access_log off;
  client_body_temp_path {{dir}}/client_body;
  proxy_temp_path {{dir}}/proxy;
  fastcgi_temp_path {{dir}}/fastcgi;
  uwsgi_temp_path {{dir}}/uwsgi;
  scgi_temp_path {{dir}}/scgi;
  keepalive_requests 1000000;
  upstream backend {
    server {{backend}};
    keepalive 64;
  }
  server {
    listen {{http}};
    listen {{https}} ssl;
    server_name _;
    ssl_certificate {{cert}};
    ssl_certificate_key {{key}};
    location / {
      proxy_pass http://backend;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_set_header Host $host;
      proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
      proxy_set_header X-Forwarded-Proto $scheme;
      proxy_set_header X-Forwarded-Host $host;
      proxy_set_header X-Request-Id $request_id;
    }
  }
}
`

// startNginx runs nginx in the foreground with its own configuration, pid
// and log files in the bench's directory.
func (b *bench) startNginx(certFile, keyFile string) (string, string, error) {
	httpAddr, err := freeAddr()
	if err != nil {
		return "", "", err
	}
	httpsAddr, err := freeAddr()
	if err != nil {
		return "", "", err
	}
	conf := strings.NewReplacer("{{dir}}", b.dir, "{{backend}}", b.backendAddr, "{{http}}", httpAddr,
		"{{https}}", httpsAddr, "{{cert}}", certFile, "{{key}}", keyFile).Replace(nginxConf)
	confFile := filepath.Join(b.dir, "nginx.conf")
	if err := os.WriteFile(confFile, []byte(conf), 0o600); err != nil {
		return "", "", err
	}
	b.nginx = exec.Command("nginx", "-p", b.dir, "-c", confFile)
	b.nginx.Stdout, b.nginx.Stderr = os.Stderr, os.Stderr
	b.nginx.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := b.nginx.Start(); err != nil {
		return "", "", fmt.Errorf("start nginx: %w", err)
	}
	plain := "http://" + httpAddr + "/"
	if err := waitHTTP(plain, b.host, nil); err != nil {
		log, _ := os.ReadFile(filepath.Join(b.dir, "error.log"))
		return "", "", fmt.Errorf("nginx: %w\n%s", err, log)
	}
	return plain, "https://" + httpsAddr + "/", nil
}

// churn calls change ten times a second until stopped.
func (b *bench) churn(change func(int)) (stop func()) {
	done := make(chan struct{})
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		t := time.NewTicker(100 * time.Millisecond)
		defer t.Stop()
		for i := 1; ; i++ {
			select {
			case <-done:
				return
			case <-t.C:
				change(i)
			}
		}
	}()
	return func() {
		close(done)
		<-finished
	}
}

var (
	rpsRe     = regexp.MustCompile(`Requests/sec:\s+([0-9.]+)`)
	latRe     = regexp.MustCompile(`(?m)^\s+(50|99)(?:\.000)?%\s+([0-9.]+)(us|ms|s)\s*$`)
	socketRe  = regexp.MustCompile(`Socket errors:[^\n]*`)
	non2xxRe  = regexp.MustCompile(`Non-2xx or 3xx responses: \d+`)
	wrkPrefix = "wrk"
)

// wrk runs a short warm-up, then the measured run, and reads the CPU
// time the proxy's processes and the backend's used during it.
func (b *bench) wrk(url string, proxyPIDs func() []int) (result, error) {
	if _, err := b.runWrk(url, time.Second); err != nil {
		return result{}, err
	}
	nginx := b.nginx != nil && len(proxyPIDs()) > 0 && proxyPIDs()[0] == b.nginx.Process.Pid
	proxy0, backend0 := cpuTime(proxyPIDs(), nginx), cpuTime([]int{b.backend.Process.Pid}, false)
	out, err := b.runWrk(url, b.duration)
	if err != nil {
		return result{}, err
	}
	proxy1, backend1 := cpuTime(proxyPIDs(), nginx), cpuTime([]int{b.backend.Process.Pid}, false)
	var r result
	m := rpsRe.FindStringSubmatch(out)
	if m == nil {
		return r, fmt.Errorf("no Requests/sec in wrk's output:\n%s", out)
	}
	r.rps, _ = strconv.ParseFloat(m[1], 64)
	for _, m := range latRe.FindAllStringSubmatch(out, -1) {
		v, _ := strconv.ParseFloat(m[2], 64)
		unit := map[string]float64{"us": 1e3, "ms": 1e6, "s": 1e9}[m[3]]
		d := time.Duration(v * unit)
		if m[1] == "50" {
			r.p50 = d
		} else {
			r.p99 = d
		}
	}
	var errs []string
	if s := socketRe.FindString(out); s != "" {
		errs = append(errs, s)
	}
	if s := non2xxRe.FindString(out); s != "" {
		errs = append(errs, s)
	}
	r.errors = strings.Join(errs, "; ")
	if n := r.rps * b.duration.Seconds(); n > 0 {
		r.proxyCPU = time.Duration(float64(proxy1-proxy0) / n)
		r.backendCPU = time.Duration(float64(backend1-backend0) / n)
	}
	return r, nil
}

func (b *bench) berthPIDs() []int {
	if b.target != "" {
		return nil // not ours to measure
	}
	return []int{os.Getpid()}
}

// nginxPIDs are the master and its workers (its process group): they
// change with every reload.
func (b *bench) nginxPIDs() []int {
	pids := []int{b.nginx.Process.Pid}
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == b.nginx.Process.Pid {
			continue
		}
		if pgid, err := syscall.Getpgid(pid); err == nil && pgid == b.nginx.Process.Pid {
			pids = append(pids, pid)
		}
	}
	return pids
}

// cpuTime sums user and system time of pids (from /proc/PID/stat). The
// first pid's reaped children count too when it is nginx's master: workers
// replaced by a reload are gone by the end of a run.
func cpuTime(pids []int, withChildren bool) time.Duration {
	var ticks int64
	for i, pid := range pids {
		data, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
		if err != nil {
			continue
		}
		// Fields after the command name, which is in parentheses.
		s := string(data)
		fields := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
		if len(fields) < 13 {
			continue
		}
		for f := 11; f <= 12 || withChildren && i == 0 && f <= 14; f++ {
			t, _ := strconv.ParseInt(fields[f], 10, 64)
			ticks += t
		}
	}
	return time.Duration(ticks) * (time.Second / 100) // USER_HZ is 100 on Linux
}

func (b *bench) runWrk(url string, d time.Duration) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), d+30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, wrkPrefix, "-t"+strconv.Itoa(b.threads), "-c"+strconv.Itoa(b.conns),
		"-d"+strconv.Itoa(max(1, int(d.Seconds())))+"s", "--latency", "--timeout", "5s", "-H", "Host: "+b.host, url)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		return out.String(), fmt.Errorf("wrk: %w\n%s", err, out.String())
	}
	return out.String(), nil
}

// waitHTTP waits until url answers 200 with Host host.
func waitHTTP(url, host string, client *http.Client) error {
	if client == nil {
		client = &http.Client{Timeout: time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	}
	var last error
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		req, _ := http.NewRequest("GET", url, nil)
		if host != "" {
			req.Host = host
		}
		resp, err := client.Do(req)
		if err != nil {
			last = err
			continue
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode == 200 {
			return nil
		}
		last = fmt.Errorf("%s answers %s", url, resp.Status)
	}
	return fmt.Errorf("not ready: %w", last)
}

func selfSigned(dir, host string) (certFile, keyFile string, cert tls.Certificate, err error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return "", "", cert, err
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: host},
		DNSNames: []string{host}, IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return "", "", cert, err
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return "", "", cert, err
	}
	certPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	keyPEM := pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER})
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	if err := os.WriteFile(certFile, certPEM, 0o600); err != nil {
		return "", "", cert, err
	}
	if err := os.WriteFile(keyFile, keyPEM, 0o600); err != nil {
		return "", "", cert, err
	}
	cert, err = tls.X509KeyPair(certPEM, keyPEM)
	return certFile, keyFile, cert, err
}

func startProfile(path string) (func(), error) {
	f, err := os.Create(path)
	if err != nil {
		return nil, err
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, err
	}
	return func() {
		pprof.StopCPUProfile()
		f.Close()
	}, nil
}

var cleaned atomic.Bool

// cleanup stops nginx (gracefully, then not), the backend and the
// servers, and removes the bench's directory.
func (b *bench) cleanup() {
	if !cleaned.CompareAndSwap(false, true) {
		return
	}
	for _, f := range b.fast {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		f.Shutdown(ctx)
		cancel()
	}
	for _, s := range b.servers {
		s.Close()
	}
	if b.proxy != nil {
		b.proxy.Close()
	}
	if b.nginx != nil && b.nginx.Process != nil {
		_ = b.nginx.Process.Signal(syscall.SIGQUIT)
		done := make(chan error, 1)
		go func() { done <- b.nginx.Wait() }()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			_ = syscall.Kill(-b.nginx.Process.Pid, syscall.SIGKILL)
			<-done
		}
	}
	if b.backend != nil && b.backend.Process != nil {
		_ = b.backend.Process.Kill()
		_ = b.backend.Wait()
	}
	if b.dir != "" {
		os.RemoveAll(b.dir)
	}
}

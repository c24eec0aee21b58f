// Command api benchmarks berth's API: it starts a real berth server on a
// fresh data directory, creates 1,000 components, lists them and reads each
// one's status, and prints p50/p99 latency per call, the server's idle RSS
// and its time from start to /healthz 200, each beside the target.
//
//	go run ./bench/api [-n 1000] [-database postgres://...]
package main

import (
	"bytes"
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
)

func main() {
	n := flag.Int("n", 1000, "components to create")
	database := flag.String("database", "", "postgres://... to measure PostgreSQL instead of SQLite")
	starts := flag.Int("starts", 3, "cold starts to time")
	flag.Parse()
	if err := run(*n, *database, *starts); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

type server struct {
	cmd   *exec.Cmd
	url   string
	token string
	ready time.Duration
}

func build() (string, error) {
	dir, err := os.MkdirTemp("", "berth-bench")
	if err != nil {
		return "", err
	}
	bin := filepath.Join(dir, "berth")
	cmd := exec.Command("go", "build", "-o", bin, "./cmd/berth")
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("build berth: %w", err)
	}
	return bin, nil
}

func freeAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

func start(bin, data, database string) (*server, error) {
	addr, err := freeAddr()
	if err != nil {
		return nil, err
	}
	// The API is measured alone: no containers run, none are pulled. The
	// gateway gets loopback ports of its own (another berth may hold :80).
	httpAddr, err := freeAddr()
	if err != nil {
		return nil, err
	}
	httpsAddr, err := freeAddr()
	if err != nil {
		return nil, err
	}
	args := []string{"server", "--runtime", "none", "--data", data, "--listen", addr, "--http", httpAddr, "--https", httpsAddr}
	if database != "" {
		args = append(args, "--database", database)
	}
	s := &server{url: "http://" + addr}
	s.cmd = exec.Command(bin, args...)
	s.cmd.Stdout, s.cmd.Stderr = io.Discard, os.Stderr
	t0 := time.Now()
	if err := s.cmd.Start(); err != nil {
		return nil, err
	}
	for time.Since(t0) < 30*time.Second {
		if resp, err := http.Get(s.url + "/healthz"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				s.ready = time.Since(t0)
				tok, err := os.ReadFile(filepath.Join(data, "admin-token"))
				s.token = strings.TrimSpace(string(tok))
				return s, err
			}
		}
		time.Sleep(2 * time.Millisecond)
	}
	s.stop()
	return nil, fmt.Errorf("server not healthy after 30s")
}

func (s *server) stop() {
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	_ = s.cmd.Wait()
}

func (s *server) rssMB() float64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", s.cmd.Process.Pid))
	if err != nil {
		return -1
	}
	for _, line := range strings.Split(string(b), "\n") {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == "VmRSS:" {
			kb, _ := strconv.ParseFloat(f[1], 64)
			return kb / 1024
		}
	}
	return -1
}

var client = &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 16}, Timeout: 30 * time.Second}

func (s *server) call(method, path string, body any, want int) (time.Duration, error) {
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, _ := http.NewRequest(method, s.url+path, rd)
	req.Header.Set("Authorization", "Bearer "+s.token)
	t0 := time.Now()
	resp, err := client.Do(req)
	if err != nil {
		return 0, err
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	d := time.Since(t0)
	if resp.StatusCode != want {
		return d, fmt.Errorf("%s %s: %d %s", method, path, resp.StatusCode, b)
	}
	return d, nil
}

type stats struct{ p50, p99 time.Duration }

func percentiles(ds []time.Duration) stats {
	sort.Slice(ds, func(i, j int) bool { return ds[i] < ds[j] })
	at := func(q float64) time.Duration { return ds[min(len(ds)-1, int(q*float64(len(ds))))] }
	return stats{at(0.50), at(0.99)}
}

func run(n int, database string, starts int) error {
	bin, err := build()
	if err != nil {
		return err
	}
	defer os.RemoveAll(filepath.Dir(bin))

	// Cold starts on fresh data directories.
	var readies []time.Duration
	var idle float64
	for i := 0; i < starts; i++ {
		data, _ := os.MkdirTemp("", "berth-bench-data")
		s, err := start(bin, data, database)
		if err != nil {
			return err
		}
		readies = append(readies, s.ready)
		if i == starts-1 {
			time.Sleep(2 * time.Second)
			idle = s.rssMB()
		}
		s.stop()
		os.RemoveAll(data)
	}
	ready := percentiles(readies).p50

	data, _ := os.MkdirTemp("", "berth-bench-data")
	defer os.RemoveAll(data)
	s, err := start(bin, data, database)
	if err != nil {
		return err
	}
	defer s.stop()
	if _, err := s.call("POST", "/api/v1/teams", map[string]any{"name": "bench"}, 201); err != nil {
		return err
	}
	if _, err := s.call("POST", "/api/v1/teams/bench/apps", map[string]any{"name": "app"}, 201); err != nil {
		return err
	}
	base := "/api/v1/teams/bench/apps/app/components"
	var create, list, get []time.Duration
	for i := 0; i < n; i++ {
		d, err := s.call("POST", base, map[string]any{
			"alias": fmt.Sprintf("c%04d", i), "image": "nginx:1.25", "memory": "256Mi", "cpu": "250m",
			"ports": []any{map[string]any{"port": 80, "inner": true}},
			"envs":  []any{map[string]any{"name": "MODE", "value": "bench"}},
		}, 201)
		if err != nil {
			return err
		}
		create = append(create, d)
	}
	for i := 0; i < 20; i++ {
		d, err := s.call("GET", base, nil, 200)
		if err != nil {
			return err
		}
		list = append(list, d)
	}
	for i := 0; i < n; i++ {
		d, err := s.call("GET", fmt.Sprintf("%s/c%04d", base, i), nil, 200)
		if err != nil {
			return err
		}
		get = append(get, d)
	}
	loaded := s.rssMB()

	db := "SQLite"
	if database != "" {
		db = "PostgreSQL"
	}
	fmt.Printf("berth API benchmark: %d components, %s, %d cores\n\n", n, db, numCPU())
	fmt.Printf("%-34s %12s %12s %10s %8s\n", "figure", "measured", "target", "ratio", "")
	row := func(name string, got, target float64, unit string) {
		verdict := "ok"
		if got > target {
			verdict = "OVER"
		}
		fmt.Printf("%-34s %10.2f%-2s %10.0f%-2s %9.2fx %8s\n", name, got, unit, target, unit, got/target, verdict)
	}
	ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
	c, l, g := percentiles(create), percentiles(list), percentiles(get)
	row("create component p50", ms(c.p50), 50, "ms")
	row("create component p99", ms(c.p99), 50, "ms")
	row(fmt.Sprintf("list %d components p50", n), ms(l.p50), 50, "ms")
	row(fmt.Sprintf("list %d components p99", n), ms(l.p99), 50, "ms")
	row("get component status p50", ms(g.p50), 50, "ms")
	row("get component status p99", ms(g.p99), 50, "ms")
	row("idle RSS", idle, 150, "MB")
	row(fmt.Sprintf("RSS after %d components", n), loaded, 150, "MB")
	row(fmt.Sprintf("start to /healthz 200 (median of %d)", starts), ms(ready), 3000, "ms")
	return nil
}

func numCPU() int {
	b, _ := os.ReadFile("/proc/cpuinfo")
	return strings.Count(string(b), "processor\t:")
}

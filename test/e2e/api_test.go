package e2e

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestStartupPhasesAndHealth(t *testing.T) {
	s := startServer(t)
	out := s.out.String()
	for _, want := range []string{"✓ store", "✓ event log", "✓ api", "✓ worker", "berth is ready in", "Console and API: http://", "Admin token:", "admin-token"} {
		if !strings.Contains(out, want) {
			t.Errorf("start-up output lacks %q:\n%s", want, out)
		}
	}
	fi, err := os.Stat(filepath.Join(s.data, "admin-token"))
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("admin-token mode %v, want 0600", fi.Mode().Perm())
	}
	var ready struct {
		Ready  bool
		Phases []struct{ Name, State string }
	}
	s.must(200, "GET", "/readyz", nil).json(t, &ready)
	if !ready.Ready || len(ready.Phases) < 4 {
		t.Fatalf("readyz: %+v", ready)
	}
	for _, p := range ready.Phases {
		if p.State != "ready" {
			t.Errorf("phase %s is %s", p.Name, p.State)
		}
	}
	s.must(200, "GET", "/healthz", nil)
	metrics := string(s.must(200, "GET", "/metrics", nil).Body)
	for _, want := range []string{"berth_api_requests_total", "berth_api_request_duration_seconds", `berth_tasks{status="queued"}`} {
		if !strings.Contains(metrics, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
	// The token survives a restart and is not re-issued.
	s.stop()
	s.start()
	if strings.Contains(s.out.String(), "(new)") {
		t.Errorf("second start issued a new admin token:\n%s", s.out)
	}
	s.must(200, "GET", "/api/v1/whoami", nil)
}

// A phase that cannot start stops berth with the seed guide's line.
func TestStartupFailureNamesPhaseAndLog(t *testing.T) {
	data := t.TempDir()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	out, err := exec.Command(berthBin, append([]string{"server", "--runtime", "none", "--data", data, "--listen", ln.Addr().String()}, ownGatewayPorts(t)...)...).CombinedOutput()
	if err == nil {
		t.Fatalf("berth started on a busy port:\n%s", out)
	}
	want := fmt.Sprintf("ERROR: api failed to start: listen tcp %s: bind: address already in use. See %s", ln.Addr(), filepath.Join(data, "logs", "berth.log"))
	if !strings.Contains(string(out), want) {
		t.Fatalf("output lacks %q:\n%s", want, out)
	}

	out, err = exec.Command(berthBin, append([]string{"server", "--runtime", "none", "--data", t.TempDir(), "--listen", freePort(t), "--database", "postgres://nobody@127.0.0.1:1/none?sslmode=disable&connect_timeout=2"}, ownGatewayPorts(t)...)...).CombinedOutput()
	if err == nil || !strings.Contains(string(out), "ERROR: store failed to start: ") {
		t.Fatalf("want a store phase error, got %v:\n%s", err, out)
	}

	data = t.TempDir()
	out, err = exec.Command(berthBin, append([]string{"server", "--data", data, "--listen", freePort(t), "--containerd-address", "/nonexistent/containerd.sock"}, ownGatewayPorts(t)...)...).CombinedOutput()
	want = "ERROR: containerd failed to start: "
	if err == nil || !strings.Contains(string(out), want) || !strings.Contains(string(out), filepath.Join(data, "logs", "containerd.log")) {
		t.Fatalf("want %q naming the containerd log, got %v:\n%s", want, err, out)
	}

	// Two servers on one data directory would corrupt it.
	s := startServer(t)
	out, err = exec.Command(berthBin, append([]string{"server", "--runtime", "none", "--data", s.data, "--listen", freePort(t)}, ownGatewayPorts(t)...)...).CombinedOutput()
	if err == nil || !strings.Contains(string(out), "ERROR: data directory failed to start: another berth server") {
		t.Fatalf("want a data directory error, got %v:\n%s", err, out)
	}
}

func TestHealthzIsNotReadyBeforePhases(t *testing.T) {
	// /healthz must never answer 200 from a half-started server: the API
	// phase listens before the worker starts, so poll from the first moment.
	s := &server{t: t, data: t.TempDir(), addr: freePort(t)}
	s.url = "http://" + s.addr
	cmd := exec.Command(berthBin, append([]string{"server", "--runtime", "none", "--data", s.data, "--listen", s.addr}, ownGatewayPorts(t)...)...)
	buf := &syncBuffer{}
	cmd.Stdout, cmd.Stderr = buf, buf
	start := time.Now()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()
	for time.Since(start) < 30*time.Second {
		r, err := httpGet(s.url + "/healthz")
		if err == nil && r == 200 {
			if !strings.Contains(buf.String(), "✓ worker") {
				t.Fatalf("healthz 200 before the worker phase was ready:\n%s", buf)
			}
			return
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Fatalf("never healthy:\n%s", buf)
}

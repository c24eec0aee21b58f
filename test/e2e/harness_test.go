// Package e2e tests berth end to end: the real binary, started as a user
// starts it, driven over HTTP on loopback.
package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

var berthBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "berth-e2e-bin")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	berthBin = filepath.Join(dir, "berth")
	build := exec.Command("go", "build", "-o", berthBin, "../../cmd/berth")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "build berth:", err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// server is one berth server process of a test.
type server struct {
	t       *testing.T
	data    string
	addr    string
	url     string
	args    []string
	cmd     *exec.Cmd
	out     *syncBuffer
	token   string
	exited  chan struct{}
	exitErr error
	// gatewayHTTP and gatewayHTTPS are the gateway's listen addresses
	// (unless the test passed its own --http/--https).
	gatewayHTTP, gatewayHTTPS string
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func freePort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// startServer starts berth on a fresh data directory and waits for /healthz.
// ownGatewayPorts are gateway flags for a server a test starts by hand:
// loopback ports of its own, never :80/:443, which another berth on the
// machine may hold.
func ownGatewayPorts(t *testing.T) []string {
	return []string{"--http", freePort(t), "--https", freePort(t)}
}

func startServer(t *testing.T, extra ...string) *server {
	t.Helper()
	if !hasFlag(extra, "--runtime") {
		// The spine's tests need no containers; runtime tests say so.
		extra = append([]string{"--runtime", "none"}, extra...)
	}
	// The gateway gets loopback ports of its own, kept across restarts.
	gwHTTP, gwHTTPS := freePort(t), freePort(t)
	if !hasFlag(extra, "--http") {
		extra = append(extra, "--http", gwHTTP)
	}
	if !hasFlag(extra, "--https") {
		extra = append(extra, "--https", gwHTTPS)
	}
	if !hasFlag(extra, "--domain") {
		extra = append(extra, "--domain", "berth.test")
	}
	extra = loopbackAllowance(extra)
	// Not t.TempDir: containers outlive berth, and a runtime test's own
	// cleanup (which runs after this one) must stop them before the
	// directory can go, so it removes the directory again itself.
	data, err := os.MkdirTemp("", "berth-e2e-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(data) })
	s := &server{t: t, data: data, addr: freePort(t), args: extra, gatewayHTTP: gwHTTP, gatewayHTTPS: gwHTTPS}
	s.url = "http://" + s.addr
	s.start()
	t.Cleanup(s.stop)
	return s
}

func (s *server) start() {
	s.t.Helper()
	args := append([]string{"server", "--data", s.data, "--listen", s.addr}, s.args...)
	s.cmd = exec.Command(berthBin, args...)
	s.out = &syncBuffer{}
	s.cmd.Stdout, s.cmd.Stderr = s.out, s.out
	if err := s.cmd.Start(); err != nil {
		s.t.Fatal(err)
	}
	s.exited = make(chan struct{})
	go func() {
		s.exitErr = s.cmd.Wait()
		close(s.exited)
	}()
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := http.Get(s.url + "/healthz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				break
			}
		}
		select {
		case <-s.exited:
			s.t.Fatalf("berth exited during start-up (%v):\n%s", s.exitErr, s.out)
		default:
		}
		if time.Now().After(deadline) {
			s.t.Fatalf("berth not healthy after 30s:\n%s", s.out)
		}
		time.Sleep(20 * time.Millisecond)
	}
	tok, err := os.ReadFile(filepath.Join(s.data, "admin-token"))
	if err != nil {
		s.t.Fatal(err)
	}
	s.token = strings.TrimSpace(string(tok))
}

// kill ends the server with SIGKILL, as a crash would.
func (s *server) kill() {
	if s.cmd == nil {
		return
	}
	_ = s.cmd.Process.Signal(syscall.SIGKILL)
	<-s.exited
	s.cmd = nil
}

func (s *server) stop() {
	if s.cmd == nil {
		return
	}
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.exited:
	case <-time.After(10 * time.Second):
		s.t.Errorf("berth did not stop within 10s of SIGTERM:\n%s", s.out)
		s.kill()
	}
	s.cmd = nil
}

// response is a decoded answer.
type response struct {
	Status int
	Body   []byte
}

func (r response) json(t *testing.T, v any) {
	t.Helper()
	if err := json.Unmarshal(r.Body, v); err != nil {
		t.Fatalf("decode %s: %v", r.Body, err)
	}
}

// errorCode is the API error code of an error answer.
func (r response) errorCode() string {
	var e struct {
		Error struct{ Code, Message string }
	}
	_ = json.Unmarshal(r.Body, &e)
	return e.Error.Code
}

func (r response) errorMessage() string {
	var e struct {
		Error struct{ Code, Message string }
	}
	_ = json.Unmarshal(r.Body, &e)
	return e.Error.Message
}

// do calls the API with token; body may be nil, a string (sent raw) or a value.
func (s *server) do(token, method, path string, body any) response {
	s.t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	default:
		j, err := json.Marshal(b)
		if err != nil {
			s.t.Fatal(err)
		}
		rd = bytes.NewReader(j)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, s.url+path, rd)
	if err != nil {
		s.t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if rd != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		s.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return response{Status: resp.StatusCode, Body: b}
}

// must calls as admin and fails the test unless the status is want.
func (s *server) must(want int, method, path string, body any) response {
	s.t.Helper()
	return s.mustAs(s.token, want, method, path, body)
}

func (s *server) mustAs(token string, want int, method, path string, body any) response {
	s.t.Helper()
	r := s.do(token, method, path, body)
	if r.Status != want {
		s.t.Fatalf("%s %s: status %d, want %d: %s", method, path, r.Status, want, r.Body)
	}
	return r
}

// teamToken creates a token with role in team and returns its secret.
func (s *server) teamToken(team, role string) string {
	s.t.Helper()
	r := s.must(201, "POST", "/api/v1/teams/"+team+"/tokens", map[string]any{"name": "t-" + role + fmt.Sprint(time.Now().UnixNano()%100000), "role": role})
	var out struct{ Secret string }
	r.json(s.t, &out)
	return out.Secret
}

// waitEvent polls an event until it ends.
func (s *server) waitEvent(id string) map[string]any {
	s.t.Helper()
	return s.waitEventFor(id, 60*time.Second)
}

// waitEventFor waits up to timeout for an event to end.
func (s *server) waitEventFor(id string, timeout time.Duration) map[string]any {
	s.t.Helper()
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		var ev map[string]any
		s.must(200, "GET", "/api/v1/events/"+id, nil).json(s.t, &ev)
		if ev["status"] != "running" {
			return ev
		}
		time.Sleep(50 * time.Millisecond)
	}
	s.t.Fatalf("event %s did not end within %s:\n%s", id, timeout, s.eventLog(id))
	return nil
}

func httpGet(url string) (int, error) {
	resp, err := http.Get(url)
	if err != nil {
		return 0, err
	}
	resp.Body.Close()
	return resp.StatusCode, nil
}

func itoa(n int) string { return fmt.Sprint(n) }

func futureDay() time.Time { return time.Now().Add(24 * time.Hour) }

// noEndpointAllowance, among startServer's flags, starts berth without
// the loopback allowance, as a real one runs: for the tests that check
// berth refuses tenants' addresses at the host. It never reaches berth.
const noEndpointAllowance = "--test-no-endpoint-allowance"

// loopbackAllowance lets berth clone, pull and dial what tests serve on
// loopback (git servers, registries, upstreams), unless the test names
// its own ranges or opts out with noEndpointAllowance.
func loopbackAllowance(args []string) []string {
	out := args[:0:0]
	optOut := false
	for _, a := range args {
		if a == noEndpointAllowance {
			optOut = true
			continue
		}
		out = append(out, a)
	}
	if optOut || hasFlag(out, "--allow-endpoint-cidr") {
		return out
	}
	return append(out, "--allow-endpoint-cidr", "127.0.0.0/8")
}

func hasFlag(args []string, flag string) bool {
	for _, a := range args {
		if a == flag || strings.HasPrefix(a, flag+"=") {
			return true
		}
	}
	return false
}

package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/berth-platform/berth/client"
)

// serverArgsEnv makes the test binary run "berth ARGS..." instead of the
// tests, so the end-to-end test gets a real server in a child process that
// it can stop like a user would.
const serverArgsEnv = "BERTH_TEST_RUN_ARGS"

func TestMain(m *testing.M) {
	if raw := os.Getenv(serverArgsEnv); raw != "" {
		var args []string
		if err := json.Unmarshal([]byte(raw), &args); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(2)
		}
		ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
		c := &cli{stdin: os.Stdin, getenv: os.Getenv}
		code := execute(ctx, c, args, os.Stdout, os.Stderr)
		stop()
		os.Exit(code)
	}
	os.Exit(m.Run())
}

// startServer runs "berth server" on a free port and returns its URL and
// admin token.
func startServer(t *testing.T, extra ...string) (url, adminToken string) {
	t.Helper()
	if testing.Short() {
		t.Skip("starts a server")
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()

	data := t.TempDir()
	// The CLI's tests need no containers: --runtime none keeps them from
	// starting containerd and from pulling the images they name. The
	// gateway gets loopback ports of its own, so that tests running at the
	// same time (or a real berth on :80) do not collide.
	base := []string{"server", "--runtime", "none", "--data", data, "--listen", addr,
		"--http", "127.0.0.1:0", "--https", "127.0.0.1:0", "--tcp-ports", freePortRange(t)}
	args, _ := json.Marshal(append(base, extra...))
	cmd := exec.Command(os.Args[0])
	cmd.Env = append(os.Environ(), serverArgsEnv+"="+string(args))
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-exited
			t.Errorf("the server ignored SIGTERM for 10s")
		}
	})

	url = "http://" + addr
	deadline := time.Now().Add(30 * time.Second)
	for {
		select {
		case err := <-exited:
			if strings.Contains(out.String(), "not yet wired") {
				t.Skip("berth server is not wired yet")
			}
			t.Fatalf("server exited (%v):\n%s", err, out.String())
		default:
		}
		token, err := os.ReadFile(filepath.Join(data, "admin-token"))
		if err == nil {
			if resp, err := http.Get(url + "/healthz"); err == nil {
				resp.Body.Close()
				if resp.StatusCode == 200 {
					return url, strings.TrimSpace(string(token))
				}
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("server not healthy after 30s:\n%s", out.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// freePortRange is a one-port range for the gateway's TCP ports that is
// free right now.
func freePortRange(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	port := l.Addr().(*net.TCPAddr).Port
	return fmt.Sprintf("%d-%d", port, port)
}

func TestEndToEnd(t *testing.T) {
	url, admin := startServer(t)
	tc := newTestCLI(t, nil)

	out := tc.mustRun("login", url, "--token", admin)
	contains(t, "login", out, "Logged in to "+url)
	tc.mustRun("team", "create", "acme")
	tc.mustRun("use", "acme")
	tc.mustRun("app", "create", "shop")
	tc.mustRun("use", "acme/shop")
	tc.mustRun("component", "create", "web", "--image", "nginx:1.27", "--port", "80/http:inner,outer",
		"--memory", "256Mi", "--env", "MODE=prod", "--secret-env", "PASSWORD=hunter2")

	out = tc.mustRun("ps")
	contains(t, "ps", out, "ALIAS", "web", "image", "undeploy", "0/1", "nginx:1.27")

	out = tc.mustRun("component", "get", "web")
	contains(t, "get", out, "undeploy (未部署)", "80/http  inner,outer", "PASSWORD=******", "Memory:         256Mi")
	if strings.Contains(out, "hunter2") {
		t.Fatal("secret shown")
	}
	out = tc.mustRun("component", "update", "web", "--memory", "1Gi", "--cpu", "500m")
	if !strings.Contains(out, "Updated component web") {
		t.Fatalf("update: %s", out)
	}
	out = tc.mustRun("component", "get", "web")
	if !strings.Contains(out, "1Gi") || !strings.Contains(out, "500m") {
		t.Fatalf("get after update:\n%s", out)
	}

	out = tc.mustRun("deploy", "web")
	contains(t, "deploy", out, "Event ev-", "==> Deploy\n", "==> Deploy succeeded")
	eventID := strings.Fields(strings.SplitN(out, "\n", 2)[0])[1]

	// The log read back equals the log followed live.
	logged := tc.mustRun("logs", eventID)
	followed := strings.SplitN(out, "\n", 2)[1]
	if !strings.HasPrefix(followed, logged) {
		t.Fatalf("logs differ from the followed output:\n%s\n---\n%s", logged, followed)
	}
	if again := tc.mustRun("logs", "-f", eventID); !strings.HasPrefix(again, logged) {
		t.Fatalf("logs -f of an ended event:\n%s", again)
	}

	out = tc.mustRun("versions", "web")
	contains(t, "versions", out, "*  1", "nginx:1.27", eventID)

	detached, _, code := tc.run("scale", "web", "2", "-d")
	scaleID := strings.TrimSpace(detached)
	if code != 0 || !isEventID(scaleID) {
		t.Fatalf("scale -d: exit %d, %q", code, detached)
	}

	// The client's three ways to wait for an event agree.
	cl := client.New(url, admin)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	waited, err := cl.WaitEvent(ctx, scaleID)
	if err != nil || waited.Status != client.EventSuccess {
		t.Fatalf("WaitEvent: %+v %v", waited, err)
	}
	var sse, ws []client.Line
	if _, err := cl.FollowLog(ctx, scaleID, 0, func(l client.Line) error { sse = append(sse, l); return nil }); err != nil {
		t.Fatal(err)
	}
	if _, err := cl.FollowLogWebSocket(ctx, scaleID, 0, func(l client.Line) error { ws = append(ws, l); return nil }); err != nil {
		t.Fatal(err)
	}
	if len(sse) == 0 || fmt.Sprint(sse) != fmt.Sprint(ws) {
		t.Fatalf("SSE and WebSocket logs differ:\n%v\n%v", sse, ws)
	}
	var resumed []client.Line
	if _, err := cl.FollowLog(ctx, scaleID, 1, func(l client.Line) error { resumed = append(resumed, l); return nil }); err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(resumed) != fmt.Sprint(sse[1:]) {
		t.Fatalf("FollowLog after 1:\n%v\nwant\n%v", resumed, sse[1:])
	}

	out = tc.mustRun("events")
	contains(t, "events", out, eventID, scaleID, "deploy", "scale", "success")

	tc.mustRun("env", "set", "web", "LOG=debug", "--scope", "both")
	out = tc.mustRun("env", "list", "web")
	contains(t, "env list", out, "LOG", "debug", "both")

	// A team token sees its team only, and a revoked one is refused.
	var tok client.NewToken
	if err := json.Unmarshal([]byte(tc.mustRun("token", "create", "bot", "--role", "viewer", "-o", "json")), &tok); err != nil {
		t.Fatal(err)
	}
	viewer := newTestCLI(t, nil)
	viewer.runWithInput(tok.Secret+"\n", "login", url, "--token", "-")
	contains(t, "viewer ps", viewer.mustRun("ps"), "web")
	_, errOut, code := viewer.run("component", "delete", "web")
	if code != 1 || !strings.Contains(errOut, "Error: ") {
		t.Fatalf("a viewer deleted a component: %d %s", code, errOut)
	}
	tc.mustRun("token", "revoke", tok.Token.ID)
	_, errOut, _ = viewer.run("ps")
	contains(t, "revoked token", errOut, "Hint: the token was refused")

	_, errOut, _ = tc.run("component", "get", "nope")
	contains(t, "missing component", errOut, `Error: component "nope" not found`)

	tc.mustRun("component", "delete", "web")
	tc.mustRun("app", "delete", "shop")
	tc.mustRun("team", "delete", "acme", "--yes")
}

// TestFollowLogResumesThroughDroppedConnections follows a slow operation of
// the real server through a proxy that cuts the stream every few hundred
// bytes, and checks that the lines seen are exactly the stored log.
func TestFollowLogResumesThroughDroppedConnections(t *testing.T) {
	url, admin := startServer(t, "--debug-task-delay", "150ms")

	var mu sync.Mutex
	streams := 0
	proxy := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		req, _ := http.NewRequestWithContext(r.Context(), r.Method, url+r.URL.RequestURI(), r.Body)
		req.Header = r.Header.Clone()
		resp, err := http.DefaultTransport.RoundTrip(req)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		defer resp.Body.Close()
		for k, v := range resp.Header {
			w.Header()[k] = v
		}
		w.WriteHeader(resp.StatusCode)
		limit := int64(-1)
		if strings.HasPrefix(resp.Header.Get("Content-Type"), "text/event-stream") {
			mu.Lock()
			streams++
			if streams <= 3 {
				limit = 150 // cuts inside a message, not only between them
			}
			mu.Unlock()
		}
		body := io.Reader(resp.Body)
		if limit >= 0 {
			body = io.LimitReader(resp.Body, limit)
		}
		buf := make([]byte, 64)
		for {
			n, err := body.Read(buf)
			w.Write(buf[:n])
			w.(http.Flusher).Flush()
			if err != nil {
				break
			}
		}
		if limit >= 0 {
			panic(http.ErrAbortHandler) // drop the connection, no clean end
		}
	}))
	defer proxy.Close()

	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cl := client.New(url, admin)
	if _, err := cl.CreateTeam(ctx, "acme"); err != nil {
		t.Fatal(err)
	}
	if _, err := cl.CreateApp(ctx, "acme", client.AppSpec{Name: "shop"}); err != nil {
		t.Fatal(err)
	}
	if _, err := cl.CreateComponent(ctx, "acme", "shop", client.ComponentSpec{Alias: "web", Image: "nginx:1.27", Instances: 1}); err != nil {
		t.Fatal(err)
	}
	id, err := cl.Deploy(ctx, client.ComponentRef{Team: "acme", App: "shop", Component: "web"}, "")
	if err != nil {
		t.Fatal(err)
	}

	var followed []client.Line
	ev, err := client.New(proxy.URL, admin).FollowLog(ctx, id, 0, func(l client.Line) error {
		followed = append(followed, l)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	n := streams
	mu.Unlock()
	if n < 4 {
		t.Fatalf("only %d streams: the proxy did not cut the follower off", n)
	}
	var stored []client.Line
	if _, err := cl.ReadLog(ctx, id, 0, func(l client.Line) error { stored = append(stored, l); return nil }); err != nil {
		t.Fatal(err)
	}
	if !ev.Done() || len(stored) == 0 || fmt.Sprint(followed) != fmt.Sprint(stored) {
		t.Fatalf("event %s; followed %d lines:\n%v\nstored %d:\n%v", ev.Status, len(followed), followed, len(stored), stored)
	}
}

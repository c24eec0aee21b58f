package buildkit

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/v1/mutate"

	"github.com/berth-platform/berth/internal/testdaemon"
	"github.com/berth-platform/berth/internal/testimage"
)

const (
	testUser = "berth"
	testPass = "s3cret"
)

// requirePrereqs skips when this machine cannot run buildkitd, except in
// CI (CI=true), where a missing prerequisite is a failure.
func requirePrereqs(t *testing.T) {
	t.Helper()
	var missing []string
	if os.Geteuid() != 0 {
		missing = append(missing, "root")
	}
	if _, err := exec.LookPath("buildkitd"); err != nil {
		if _, err := os.Stat("/usr/local/bin/buildkitd"); err != nil {
			missing = append(missing, "buildkitd")
		}
	}
	if _, err := exec.LookPath("runc"); err != nil {
		missing = append(missing, "runc")
	}
	if _, err := os.Stat(testimage.BusyboxPath); err != nil {
		missing = append(missing, testimage.BusyboxPath)
	}
	if len(missing) == 0 {
		return
	}
	msg := "needs " + strings.Join(missing, ", ") + " (run as root; apt-get install runc busybox-static; GOBIN=/usr/local/bin go install github.com/moby/buildkit/cmd/buildkitd@v0.18.2)"
	if os.Getenv("CI") == "true" {
		t.Fatal(msg)
	}
	t.Skip(msg)
}

// shortDir is a fresh directory under /tmp: t.TempDir() paths are too long
// for unix sockets.
func shortDir(t testing.TB) string { return testdaemon.Dir(t, "bkt-") }

// env is a buildkitd and a registry (with basic auth) that holds a
// busybox base image as <host>/base.
type env struct {
	dir     string
	reg     *testimage.Registry
	daemon  *Daemon
	builder *Builder
	base    string // <host>/base:latest
}

// newEnv starts a registry and a buildkitd that knows it speaks HTTP.
// Cleanup stops both and removes every file.
func newEnv(t *testing.T) *env {
	t.Helper()
	return newEnvWith(t, nil)
}

// newEnvWith is newEnv with the daemon's configuration changed by adjust
// (nil: none). The build bridge is the test's own, never the default.
func newEnvWith(t *testing.T, adjust func(*DaemonConfig)) *env {
	t.Helper()
	requirePrereqs(t)
	e := &env{dir: shortDir(t)}
	e.reg = testimage.Serve(testUser, testPass)
	t.Cleanup(e.reg.Close)
	img, err := testimage.Busybox()
	if err != nil {
		t.Fatal(err)
	}
	// BuildKit refuses to export an image whose base has no platform.
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	cf = cf.DeepCopy()
	cf.OS, cf.Architecture = "linux", runtime.GOARCH
	if img, err = mutate.ConfigFile(img, cf); err != nil {
		t.Fatal(err)
	}
	if e.base, err = e.reg.Push("base:latest", img); err != nil {
		t.Fatal(err)
	}
	cfg := DaemonConfig{
		Dir:        filepath.Join(e.dir, "bk"),
		LogPath:    filepath.Join(e.dir, "logs", "buildkitd.log"),
		Registries: []RegistryConfig{{Host: e.reg.Host, PlainHTTP: true, Insecure: true}},
		Network:    NetworkConfig{Bridge: testBridge()},
	}
	if adjust != nil {
		adjust(&cfg)
	}
	e.daemon = NewDaemon(cfg)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	start := time.Now()
	if err := e.daemon.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Logf("buildkitd started in %s", time.Since(start).Round(time.Millisecond))
	t.Cleanup(func() {
		if err := e.daemon.Stop(10 * time.Second); err != nil {
			t.Error(err)
		}
		if t.Failed() {
			b, _ := os.ReadFile(filepath.Join(e.dir, "logs", "buildkitd.log"))
			t.Logf("buildkitd.log:\n%s", tail(string(b), 40))
		}
	})
	e.builder = NewBuilder(BuilderConfig{Address: e.daemon.Address(), InsecureRegistries: []string{e.reg.Host}})
	return e
}

// testBridge is a build bridge name no other test or berth uses.
func testBridge() string {
	return fmt.Sprintf("bkt%05d", time.Now().UnixNano()/1000%100000)
}

// contextDir is a build context holding files.
func contextDir(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// lines collects progress lines; safe to read after Build returned.
type lines struct {
	mu  sync.Mutex
	all []Line
	t   *testing.T
}

func (l *lines) add(line Line) {
	l.mu.Lock()
	l.all = append(l.all, line)
	l.mu.Unlock()
}

func (l *lines) text() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var b strings.Builder
	for _, x := range l.all {
		fmt.Fprintln(&b, x.Text)
	}
	return b.String()
}

func (l *lines) has(kind LineKind, substr string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, x := range l.all {
		if x.Kind == kind && strings.Contains(x.Text+" "+x.Step, substr) {
			return true
		}
	}
	return false
}

func tail(s string, n int) string {
	ls := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(ls) > n {
		ls = ls[len(ls)-n:]
	}
	return strings.Join(ls, "\n")
}

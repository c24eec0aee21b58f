package containerd

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log"
	"math/big"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/containerd/containerd/v2/client"
	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"golang.org/x/sys/unix"

	"github.com/berth-platform/berth/internal/runtime/cninetwork"
	"github.com/berth-platform/berth/internal/testdaemon"
)

const busyboxPath = "/bin/busybox"

// requirePrereqs skips when this machine cannot run containers, except in
// CI (CI=true), where a missing prerequisite is a failure.
func requirePrereqs(t *testing.T) {
	t.Helper()
	var missing []string
	if os.Geteuid() != 0 {
		missing = append(missing, "root")
	}
	for _, p := range []string{"/usr/bin/containerd", "/usr/bin/containerd-shim-runc-v2", busyboxPath, "/usr/lib/cni/bridge"} {
		if _, err := os.Stat(p); err != nil {
			missing = append(missing, p)
		}
	}
	if _, err := exec.LookPath("runc"); err != nil {
		missing = append(missing, "runc")
	}
	if len(missing) == 0 {
		return
	}
	msg := "needs " + strings.Join(missing, ", ") + " (apt-get install containerd runc containernetworking-plugins busybox-static iptables; run as root)"
	if os.Getenv("CI") == "true" {
		t.Fatal(msg)
	}
	t.Skip(msg)
}

func randHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)[:n]
}

// shortDir is a fresh directory under /tmp: t.TempDir() paths are too long
// for containerd's unix sockets.
func shortDir(t *testing.T) string { return testdaemon.Dir(t, "bt-") }

// testEnv is one test's containerd, network and engine.
type testEnv struct {
	dir     string
	daemon  *Daemon
	client  *client.Client
	network *cninetwork.Network
	engine  *Engine
	ns      string
}

func startDaemon(t *testing.T, dir string) *Daemon {
	t.Helper()
	d := NewDaemon(DaemonConfig{Dir: filepath.Join(dir, "c"), LogFile: filepath.Join(dir, "logs", "containerd.log")})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := d.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = d.Stop(10 * time.Second) })
	return d
}

func newNetwork(t *testing.T, stateDir string) *cninetwork.Network {
	t.Helper()
	for range 20 {
		a, _ := rand.Int(rand.Reader, big.NewInt(8))
		b, _ := rand.Int(rand.Reader, big.NewInt(256))
		n, err := cninetwork.New(cninetwork.Config{
			Bridge:   "bt" + randHex(6),
			Subnet:   fmt.Sprintf("10.%d.%d.0/24", 200+a.Int64(), b.Int64()),
			StateDir: stateDir,
		})
		var overlap *cninetwork.OverlapError
		if errors.As(err, &overlap) {
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	t.Fatal("no free subnet")
	return nil
}

// newEnv starts a daemon, a bridge network and an engine in a fresh
// namespace. Cleanup stops every container, removes the network and stops
// the daemon.
func newEnv(t *testing.T) *testEnv {
	t.Helper()
	requirePrereqs(t)
	env := &testEnv{dir: shortDir(t), ns: "bt-" + randHex(6)}
	// Runs after the daemon stopped: containers' parent cgroups.
	t.Cleanup(func() {
		testdaemon.KillProcessesMentioning(t, env.dir)
		removeCgroups(t, env.ns)
	})
	env.daemon = startDaemon(t, env.dir)
	c, err := env.daemon.Connect(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	env.client = c
	env.network = newNetwork(t, filepath.Join(env.dir, "cni"))
	t.Cleanup(func() {
		if err := env.network.Destroy(context.Background()); err != nil {
			t.Errorf("network destroy: %v", err)
		}
	})
	env.engine = env.newEngine(t, c)
	t.Cleanup(func() { env.stopAll(t) })
	return env
}

func (env *testEnv) newEngine(t *testing.T, c *client.Client) *Engine {
	t.Helper()
	e, err := NewEngine(Config{Client: c, Namespace: env.ns, Network: env.network, StateDir: filepath.Join(env.dir, "s")})
	if err != nil {
		t.Fatal(err)
	}
	return e
}

func (env *testEnv) stopAll(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	list, err := env.engine.List(ctx)
	if err != nil {
		t.Logf("cleanup list: %v", err)
		return
	}
	for _, info := range list {
		if err := env.engine.Stop(ctx, info.ID, 0); err != nil {
			t.Errorf("cleanup stop %s: %v", info.ID, err)
		}
	}
}

func (env *testEnv) logPath(id string) string {
	return filepath.Join(env.dir, "logs", "instances", id+".log")
}

// run starts a busybox container with the given command.
func (env *testEnv) run(t *testing.T, image, id string, cmd ...string) *Running {
	t.Helper()
	r, err := env.engine.Run(context.Background(), InstanceSpec{ID: id, Image: image, Cmd: cmd, LogPath: env.logPath(id)})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// waitLog waits until the instance log contains want.
func waitLog(t *testing.T, path, want string, timeout time.Duration) string {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		b, _ := os.ReadFile(path)
		if strings.Contains(string(b), want) {
			return string(b)
		}
		if time.Now().After(deadline) {
			t.Fatalf("log %s does not contain %q after %s; it has:\n%s", path, want, timeout, b)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// waitExit reads exits until one for id arrives.
func waitExit(t *testing.T, exits <-chan Exit, id string, timeout time.Duration) Exit {
	t.Helper()
	deadline := time.After(timeout)
	for {
		select {
		case ex, ok := <-exits:
			if !ok {
				t.Fatal("exit stream closed")
			}
			if ex.ID == id {
				return ex
			}
		case <-deadline:
			t.Fatalf("no exit for %s within %s", id, timeout)
		}
	}
}

// --- images -----------------------------------------------------------------

var (
	busyboxOnce sync.Once
	busyboxImg  v1.Image
	busyboxErr  error
)

// busyboxImage is a one-layer image with Debian's static busybox and a
// symlink per applet, PATH and an env var to check merging, CMD ["sh"].
func busyboxImage(t *testing.T) v1.Image {
	t.Helper()
	busyboxOnce.Do(func() { busyboxImg, busyboxErr = buildBusybox() })
	if busyboxErr != nil {
		t.Fatal(busyboxErr)
	}
	return busyboxImg
}

func buildBusybox() (v1.Image, error) {
	bin, err := os.ReadFile(busyboxPath)
	if err != nil {
		return nil, err
	}
	out, err := exec.Command(busyboxPath, "--list").Output()
	if err != nil {
		return nil, fmt.Errorf("busybox --list: %w", err)
	}
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	now := time.Unix(1700000000, 0)
	for _, d := range []struct {
		name string
		mode int64
	}{{"bin/", 0o755}, {"tmp/", 0o1777}, {"etc/", 0o755}, {"www/", 0o755}, {"data/", 0o755}} {
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: d.name, Mode: d.mode, ModTime: now}); err != nil {
			return nil, err
		}
	}
	files := map[string]string{
		"etc/passwd":     "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n",
		"etc/group":      "root:x:0:\nnogroup:x:65534:\n",
		"www/index.html": "hello from busybox httpd\n",
	}
	for n, content := range files {
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: n, Mode: 0o644, Size: int64(len(content)), ModTime: now}); err != nil {
			return nil, err
		}
		if _, err := io.WriteString(tw, content); err != nil {
			return nil, err
		}
	}
	if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: "bin/busybox", Mode: 0o755, Size: int64(len(bin)), ModTime: now}); err != nil {
		return nil, err
	}
	if _, err := tw.Write(bin); err != nil {
		return nil, err
	}
	for _, applet := range strings.Fields(string(out)) {
		if applet == "busybox" {
			continue
		}
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeSymlink, Name: "bin/" + applet, Linkname: "busybox", Mode: 0o777, ModTime: now}); err != nil {
			return nil, err
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	return imageFromTar(buf.Bytes(), v1.Config{
		Env: []string{"PATH=/bin", "FROM_IMAGE=yes"},
		Cmd: []string{"sh"},
	})
}

func imageFromTar(tarBytes []byte, cfg v1.Config) (v1.Image, error) {
	layer, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(tarBytes)), nil
	})
	if err != nil {
		return nil, err
	}
	img, err := mutate.AppendLayers(empty.Image, layer)
	if err != nil {
		return nil, err
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return nil, err
	}
	cf = cf.DeepCopy()
	cf.OS, cf.Architecture = "linux", "amd64"
	cf.Config = cfg
	return mutate.ConfigFile(img, cf)
}

// bigImage adds a layer of incompressible data to busybox so a throttled
// pull takes long enough to report progress.
func bigImage(t *testing.T, size int) v1.Image {
	t.Helper()
	data := make([]byte, size)
	_, _ = rand.Read(data)
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: "big.bin", Mode: 0o644, Size: int64(size)}); err != nil {
		t.Fatal(err)
	}
	_, _ = tw.Write(data)
	_ = tw.Close()
	layer, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(buf.Bytes())), nil })
	if err != nil {
		t.Fatal(err)
	}
	img, err := mutate.AppendLayers(busyboxImage(t), layer)
	if err != nil {
		t.Fatal(err)
	}
	return img
}

// --- registries -------------------------------------------------------------

type registryOpts struct {
	tls          bool
	user, pass   string
	throttleBlob bool // slow blob downloads down (~5 MiB/s)
}

type testRegistry struct {
	srv  *httptest.Server
	host string // 127.0.0.1:port
}

// startRegistry serves an in-memory registry on loopback.
func startRegistry(t *testing.T, o registryOpts) *testRegistry {
	t.Helper()
	var h http.Handler = registry.New(registry.Logger(log.New(io.Discard, "", 0)))
	if o.throttleBlob {
		inner := h
		h = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.Method == http.MethodGet && strings.Contains(r.URL.Path, "/blobs/") {
				w = &throttledWriter{ResponseWriter: w}
			}
			inner.ServeHTTP(w, r)
		})
	}
	if o.user != "" {
		inner := h
		h = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			u, p, ok := r.BasicAuth()
			if !ok || u != o.user || p != o.pass {
				w.Header().Set("WWW-Authenticate", `Basic realm="berth-test"`)
				http.Error(w, `{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}`, http.StatusUnauthorized)
				return
			}
			inner.ServeHTTP(w, r)
		})
	}
	var srv *httptest.Server
	if o.tls {
		srv = httptest.NewTLSServer(h)
	} else {
		srv = httptest.NewServer(h)
	}
	t.Cleanup(srv.Close)
	return &testRegistry{srv: srv, host: strings.TrimPrefix(strings.TrimPrefix(srv.URL, "http://"), "https://")}
}

// push uploads img as repo:tag and returns the reference.
func (r *testRegistry) push(t *testing.T, repo string, img v1.Image, user, pass string) string {
	t.Helper()
	ref := r.host + "/" + repo
	parsed, err := name.ParseReference(ref, name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	opts := []remote.Option{remote.WithTransport(r.srv.Client().Transport)}
	if user != "" {
		opts = append(opts, remote.WithAuth(&authn.Basic{Username: user, Password: pass}))
	}
	if err := remote.Write(parsed, img, opts...); err != nil {
		t.Fatalf("push %s: %v", ref, err)
	}
	return ref
}

type throttledWriter struct {
	http.ResponseWriter
}

func (w *throttledWriter) Write(p []byte) (int, error) {
	const chunk = 64 << 10
	written := 0
	for len(p) > 0 {
		n := min(len(p), chunk)
		m, err := w.ResponseWriter.Write(p[:n])
		written += m
		if err != nil {
			return written, err
		}
		if f, ok := w.ResponseWriter.(http.Flusher); ok {
			f.Flush()
		}
		p = p[n:]
		time.Sleep(12 * time.Millisecond)
	}
	return written, nil
}

// pullBusybox pushes busybox to a fresh loopback registry and pulls it.
func (env *testEnv) pullBusybox(t *testing.T) string {
	t.Helper()
	reg := startRegistry(t, registryOpts{})
	ref := reg.push(t, "test/busybox:v1", busyboxImage(t), "", "")
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := env.engine.Pull(ctx, ref, nil, nil); err != nil {
		t.Fatal(err)
	}
	return ref
}

// removeCgroups deletes the (empty) cgroups of a test namespace in every
// hierarchy; runc removes the containers' own cgroups but not the parent
// named after the namespace.
func removeCgroups(t *testing.T, ns string) {
	roots, _ := filepath.Glob("/sys/fs/cgroup/*/" + ns)
	if d := filepath.Join("/sys/fs/cgroup", ns); dirExists(d) {
		roots = append(roots, d)
	}
	for _, root := range roots {
		var dirs []string
		_ = filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
			if err == nil && d.IsDir() {
				dirs = append(dirs, p)
			}
			return nil
		})
		for i := len(dirs) - 1; i >= 0; i-- {
			var err error
			for range 20 {
				if err = unix.Rmdir(dirs[i]); err == nil || errors.Is(err, os.ErrNotExist) {
					break
				}
				time.Sleep(100 * time.Millisecond)
			}
			if err != nil && !errors.Is(err, os.ErrNotExist) {
				t.Logf("cgroup %s: %v", dirs[i], err)
			}
		}
	}
}

func dirExists(p string) bool {
	st, err := os.Stat(p)
	return err == nil && st.IsDir()
}

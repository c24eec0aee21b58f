package baseimage

import (
	"archive/tar"
	"context"
	"io"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
)

// cacheDir keeps the debootstrap'd minbase and the layers between test
// runs: debootstrap takes minutes, the images a few more.
const cacheDir = "/var/cache/berth-test/baseimage"

// requirePrereqs skips when images cannot be made here, except in CI
// (CI=true), where a missing prerequisite is a failure. debootstrap is
// installed when missing.
func requirePrereqs(t *testing.T) {
	t.Helper()
	fail := t.Skip
	if os.Getenv("CI") == "true" {
		fail = t.Fatal
	}
	if os.Geteuid() != 0 {
		fail("needs root (debootstrap, chroot)")
	}
	if _, err := exec.LookPath("debootstrap"); err != nil {
		out, err := exec.Command("apt-get", "install", "-y", "debootstrap").CombinedOutput()
		if err != nil {
			fail("needs debootstrap, and apt-get install -y debootstrap failed: " + err.Error() + "\n" + string(out))
		}
	}
}

// TestPrepare makes the static and go images into a registry on loopback,
// pulls them back and checks their contents and that Go works in the
// builder. Set BERTH_TEST_BASEIMAGE_REBUILD=1 to ignore the layers cached
// by an earlier run (the minbase is always reused).
func TestPrepare(t *testing.T) {
	requirePrereqs(t)
	ctx, cancel := context.WithTimeout(t.Context(), 40*time.Minute)
	defer cancel()
	srv := httptest.NewServer(registry.New())
	defer srv.Close()
	host := strings.TrimPrefix(srv.URL, "http://")

	var steps []string
	start := time.Now()
	imgs, err := Prepare(ctx, Options{
		Registry:  host + "/acme",
		Languages: []string{"static", "go"},
		WorkDir:   cacheDir,
		Rebuild:   os.Getenv("BERTH_TEST_BASEIMAGE_REBUILD") == "1",
		Progress: func(s string) {
			t.Logf("%s  %s", time.Since(start).Round(time.Second), s)
			steps = append(steps, s)
		},
	})
	if err != nil {
		t.Fatalf("prepare: %v", err)
	}
	t.Logf("prepare took %s", time.Since(start).Round(time.Second))
	{
		left, _ := filepath.Glob(filepath.Join(cacheDir, "images", "*", "*"))
		for _, p := range left {
			if b := filepath.Base(p); b != "layer.tar.gz" && b != "layer.json" && b != "install.log" {
				t.Errorf("left behind: %s", p)
			}
		}
	}
	if len(imgs) != 4 {
		t.Fatalf("%d images, want 4: %+v", len(imgs), imgs)
	}
	for _, img := range imgs {
		t.Logf("%s %s: %s %s %s reused=%v %q", img.Language, img.Role, img.Refs, img.Digest, mb(img.Size), img.Reused, img.Version)
		if len(img.Refs) != 2 || !strings.HasSuffix(img.Refs[0], "/acme/berth/base-"+img.Language+"-"+img.Role+":bookworm") || !strings.HasSuffix(img.Refs[1], ":latest") {
			t.Errorf("refs %v", img.Refs)
		}
		for _, ref := range img.Refs {
			r, err := name.ParseReference(ref)
			if err != nil {
				t.Fatal(err)
			}
			desc, err := remote.Get(r, remote.WithAuth(authn.Anonymous))
			if err != nil {
				t.Fatalf("pull %s: %v", ref, err)
			}
			if desc.Digest.String() != img.Digest {
				t.Errorf("%s has digest %s, Prepare said %s", ref, desc.Digest, img.Digest)
			}
		}
	}

	goBuilder := pull(t, imgs[2].Refs[0])
	if !strings.Contains(imgs[2].Version, "go version go1.2") {
		t.Errorf("go builder's check said %q", imgs[2].Version)
	}
	cf, err := goBuilder.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	if cf.Config.WorkingDir != "/app" || !strings.HasPrefix(cf.Config.Env[0], "PATH=") || cf.OS != "linux" {
		t.Errorf("config: %+v", cf.Config)
	}
	files := listFiles(t, goBuilder)
	for _, want := range []string{"usr/bin/go", "usr/bin/apt-get", "etc/ssl/certs/ca-certificates.crt", "tmp", "etc/apt/sources.list"} {
		if _, ok := files[want]; !ok {
			t.Errorf("go builder lacks %s", want)
		}
	}
	for _, unwanted := range []string{"etc/resolv.conf", "usr/sbin/policy-rc.d", "dev/null", "etc/hostname"} {
		if _, ok := files[unwanted]; ok {
			t.Errorf("go builder has %s", unwanted)
		}
	}
	if h := files["tmp"]; h != nil && h.Mode&0o1777 != 0o1777 {
		t.Errorf("/tmp mode %o", h.Mode)
	}

	staticRunner := pull(t, imgs[1].Refs[0])
	cf, err = staticRunner.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(cf.Config.Cmd, " ") != "busybox httpd -f -v -p 80 -h /usr/share/nginx/html" {
		t.Errorf("static runner cmd %v", cf.Config.Cmd)
	}
	static := listFiles(t, staticRunner)
	for _, want := range []string{"usr/bin/busybox", "usr/bin/sh", "bin", "etc/passwd", "app", "tmp", "usr/share/nginx/html"} {
		if _, ok := static[want]; !ok {
			t.Errorf("static runner lacks %s", want)
		}
	}
	if imgs[1].Size > 5e6 {
		t.Errorf("static runner is %s, want busybox alone", mb(imgs[1].Size))
	}

	// A second run reuses everything and pushes the same images.
	again, err := Prepare(ctx, Options{Registry: host + "/acme", Languages: []string{"static"}, WorkDir: cacheDir})
	if err != nil {
		t.Fatal(err)
	}
	if !again[0].Reused || again[0].Digest != imgs[0].Digest {
		t.Errorf("second run: %+v, first %s: a reused layer must give the same image", again[0], imgs[0].Digest)
	}
}

func pull(t *testing.T, ref string) v1.Image {
	t.Helper()
	r, err := name.ParseReference(ref)
	if err != nil {
		t.Fatal(err)
	}
	img, err := remote.Image(r)
	if err != nil {
		t.Fatalf("pull %s: %v", ref, err)
	}
	return img
}

// listFiles is the headers of an image's file system by name.
func listFiles(t *testing.T, img v1.Image) map[string]*tar.Header {
	t.Helper()
	rc := mutate.Extract(img)
	defer rc.Close()
	out := map[string]*tar.Header{}
	tr := tar.NewReader(rc)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		out[strings.TrimSuffix(h.Name, "/")] = h
	}
}

func TestPrepareNeedsRegistry(t *testing.T) {
	if _, err := Prepare(context.Background(), Options{WorkDir: t.TempDir()}); err == nil {
		t.Error("no registry accepted")
	}
	if os.Geteuid() == 0 {
		if _, err := Prepare(context.Background(), Options{Registry: "127.0.0.1:1", WorkDir: t.TempDir(), Languages: []string{"dotnet"}}); err == nil || !strings.Contains(err.Error(), "Debian has no .NET") {
			t.Errorf("dotnet: %v", err)
		}
	}
}

// TestPrepareAll makes every language's images; it takes several minutes
// and runs only with BERTH_TEST_BASEIMAGE_ALL=1.
func TestPrepareAll(t *testing.T) {
	if os.Getenv("BERTH_TEST_BASEIMAGE_ALL") != "1" {
		t.Skip("set BERTH_TEST_BASEIMAGE_ALL=1 to make every language's images")
	}
	requirePrereqs(t)
	srv := httptest.NewServer(registry.New())
	defer srv.Close()
	start := time.Now()
	imgs, err := Prepare(t.Context(), Options{
		Registry: strings.TrimPrefix(srv.URL, "http://"),
		WorkDir:  cacheDir,
		Rebuild:  os.Getenv("BERTH_TEST_BASEIMAGE_REBUILD") == "1",
		Progress: func(s string) { t.Logf("%s  %s", time.Since(start).Round(time.Second), s) },
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, img := range imgs {
		t.Logf("%-7s %-7s %9s %q", img.Language, img.Role, mb(img.Size), img.Version)
	}
	if len(imgs) != 2*len(Languages()) {
		t.Errorf("%d images for %d languages", len(imgs), len(Languages()))
	}
}

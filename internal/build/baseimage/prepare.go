// Package baseimage makes berth's builder and runner base images offline,
// from Debian packages only (`berth images prepare`): a debootstrap'd
// minbase plus each language's toolchain, packed as a one-layer OCI image
// and pushed to berth's hub, where the generated build plans find them as
// <hub>/berth/base-<lang>-builder and -runner.
package baseimage

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// Options configure Prepare.
type Options struct {
	// Registry is where the images go: a host with an optional path
	// prefix, e.g. "127.0.0.1:5000" (berth's hub) or "hub.example.com/acme".
	Registry string
	// Auth is the registry's credentials; nil for none.
	Auth *Auth
	// Insecure allows plain HTTP and unverified certificates (loopback
	// registries are spoken to over HTTP in any case).
	Insecure bool
	// Languages to prepare; default all of Languages().
	Languages []string
	// Mirror is the Debian mirror; default the machine's own, from
	// /etc/apt/sources.list(.d), else DefaultMirror.
	Mirror string
	// WorkDir keeps the debootstrap'd minbase and each image's layer
	// between runs (e.g. DATA/baseimages); a few GB.
	WorkDir string
	// Rebuild makes every image again instead of pushing a layer made by
	// an earlier run with the same packages.
	Rebuild bool
	// Progress receives one line per step; may be nil.
	Progress func(string)
	// Logger gets the same lines; default slog.Default().
	Logger *slog.Logger
}

// Auth is a username and password for the registry.
type Auth struct {
	Username string
	Password string
}

// Image is one pushed base image.
type Image struct {
	Language string
	Role     string   // RoleBuilder or RoleRunner
	Refs     []string // every tag pushed, e.g. .../berth/base-go-builder:bookworm and :latest
	Digest   string   // manifest digest
	Size     int64    // compressed layer size in bytes
	Version  string   // what the image's check printed, e.g. "go version go1.19.8 linux/amd64"
	Reused   bool     // the layer came from an earlier run
}

// Tags every image is pushed with: the Debian release, for plans that
// pin it, and latest.
var Tags = []string{Suite, "latest"}

// Repository is an image's repository under a registry prefix, as the
// build plans refer to it: <prefix>/berth/base-<lang>-<role>.
func Repository(prefix, lang, role string) string {
	return strings.TrimRight(prefix, "/") + "/berth/base-" + lang + "-" + role
}

// preparer holds one Prepare run's state.
type preparer struct {
	opt      Options
	log      *slog.Logger
	arch     string // Debian's name: amd64, arm64
	mirror   string
	security string
}

// Prepare makes the base images of opt.Languages and pushes them. Images
// are made one after the other (they are disk- and network-bound, and
// share the minbase); the first failure stops the run and is returned
// with the images pushed until then.
func Prepare(ctx context.Context, opt Options) ([]Image, error) {
	if opt.Registry == "" || opt.WorkDir == "" {
		return nil, errors.New("images prepare: Registry and WorkDir are required")
	}
	if os.Geteuid() != 0 {
		return nil, errors.New("images prepare: must run as root (debootstrap and chroot)")
	}
	if opt.Logger == nil {
		opt.Logger = slog.Default()
	}
	langs := opt.Languages
	if len(langs) == 0 {
		langs = Languages()
	}
	for _, l := range langs {
		if _, err := recipeFor(l); err != nil {
			return nil, fmt.Errorf("images prepare: %w", err)
		}
	}
	p := &preparer{opt: opt, log: opt.Logger.With("component", "baseimage"), arch: debianArch()}
	p.mirror, p.security = mirrors("/etc/apt", Suite)
	if opt.Mirror != "" {
		p.mirror = opt.Mirror
	}

	if err := os.MkdirAll(opt.WorkDir, 0o755); err != nil {
		return nil, fmt.Errorf("images prepare: %w", err)
	}
	unlock, err := p.lockDir(ctx, opt.WorkDir)
	if err != nil {
		return nil, fmt.Errorf("images prepare: %w", err)
	}
	defer unlock()

	base, err := p.baseRootfs(ctx)
	if err != nil {
		return nil, fmt.Errorf("images prepare: %w", err)
	}
	var out []Image
	for _, lang := range langs {
		r, _ := recipeFor(lang)
		if r.note != "" {
			p.progress("%s: %s", lang, r.note)
		}
		for _, role := range []string{RoleBuilder, RoleRunner} {
			s := r.builder
			if role == RoleRunner {
				s = r.runner
			}
			img, err := p.image(ctx, base, lang, role, s)
			if err != nil {
				return out, fmt.Errorf("images prepare: %s %s: %w", lang, role, err)
			}
			out = append(out, img)
		}
	}
	return out, nil
}

func (p *preparer) progress(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	p.log.Info(msg)
	if p.opt.Progress != nil {
		p.opt.Progress(msg)
	}
}

// layerInfo records how a cached layer was made, to tell whether it can
// be pushed again as it is.
type layerInfo struct {
	Packages    []string  `json:"packages"`
	Setup       string    `json:"setup"`
	Backports   bool      `json:"backports"`
	BusyboxOnly bool      `json:"busybox_only"`
	Dirs        []string  `json:"dirs"`
	Base        string    `json:"base"` // the minbase's completion stamp
	Version     string    `json:"version"`
	Size        int64     `json:"size"` // uncompressed
	Made        time.Time `json:"made"`
}

func (a layerInfo) same(b layerInfo) bool {
	return slices.Equal(a.Packages, b.Packages) && a.Setup == b.Setup && a.Backports == b.Backports &&
		a.BusyboxOnly == b.BusyboxOnly && slices.Equal(a.Dirs, b.Dirs) && a.Base == b.Base
}

// image makes (or reuses) one image's layer and pushes it.
func (p *preparer) image(ctx context.Context, base, lang, role string, s spec) (Image, error) {
	name := lang + "-" + role
	dir := filepath.Join(p.opt.WorkDir, "images", name)
	layerPath := filepath.Join(dir, "layer.tar.gz")
	infoPath := filepath.Join(dir, "layer.json")
	stamp, _ := os.ReadFile(filepath.Join(filepath.Dir(base), "complete"))
	want := layerInfo{Packages: s.packages, Setup: s.setup, Backports: s.backports, BusyboxOnly: s.busyboxOnly, Dirs: s.dirs, Base: strings.TrimSpace(string(stamp))}
	img := Image{Language: lang, Role: role}

	var have layerInfo
	if b, err := os.ReadFile(infoPath); err == nil && json.Unmarshal(b, &have) == nil && have.same(want) && !p.opt.Rebuild {
		if _, err := os.Stat(layerPath); err == nil {
			p.progress("%s: reusing the layer made %s (%s)", name, have.Made.Format(time.RFC3339), have.Version)
			img.Reused, img.Version = true, oneLine(have.Version)
			return p.push(ctx, img, layerPath, s, have.Made)
		}
	}

	if err := removeTree(dir); err != nil {
		return img, err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return img, err
	}
	rootfs := filepath.Join(dir, "rootfs")
	// The rootfs is only needed until it is packed.
	defer func() {
		if err := removeTree(rootfs); err != nil {
			p.log.Warn("could not remove a root file system", "dir", rootfs, "err", err)
		}
	}()
	start := time.Now()
	p.progress("%s: copying minbase", name)
	if out, err := exec.CommandContext(ctx, "cp", "-a", base, rootfs).CombinedOutput(); err != nil {
		return img, fmt.Errorf("copy minbase: %w: %s", err, strings.TrimSpace(string(out)))
	}
	version, err := p.install(ctx, rootfs, dir, name, s)
	if err != nil {
		return img, err
	}
	tree := rootfs // what goes into the layer
	if s.busyboxOnly {
		slim := filepath.Join(dir, "slim")
		defer func() { _ = removeTree(slim) }()
		if err := slimRootfs(rootfs, slim); err != nil {
			return img, fmt.Errorf("busybox-only root file system: %w", err)
		}
		if version, err = output(ctx, slim, sh, "-ec", s.check); err != nil {
			return img, fmt.Errorf("check %q in the busybox-only root file system failed: %w: %s", s.check, err, version)
		}
		version = oneLine(version)
		tree = slim
	}
	for _, d := range s.dirs {
		if err := os.MkdirAll(filepath.Join(tree, d), 0o755); err != nil {
			return img, err
		}
	}
	img.Version = version
	p.progress("%s: installed in %s: %s", name, time.Since(start).Round(time.Second), version)

	packStart := time.Now()
	size, err := writeLayer(ctx, tree, layerPath+".tmp")
	if err != nil {
		_ = os.Remove(layerPath + ".tmp")
		return img, err
	}
	if err := os.Rename(layerPath+".tmp", layerPath); err != nil {
		return img, err
	}
	st, _ := os.Stat(layerPath)
	p.progress("%s: packed %s into %s in %s", name, mb(size), mb(st.Size()), time.Since(packStart).Round(time.Second))
	want.Version, want.Size, want.Made = version, size, time.Now().UTC()
	b, _ := json.MarshalIndent(want, "", "  ")
	if err := os.WriteFile(infoPath, b, 0o644); err != nil {
		return img, err
	}
	return p.push(ctx, img, layerPath, s, want.Made)
}

// install adds the spec's packages to rootfs, cleans apt's leftovers and
// runs the check; the whole output goes to install.log next to it.
func (p *preparer) install(ctx context.Context, rootfs, dir, name string, s spec) (string, error) {
	logPath := filepath.Join(dir, "install.log")
	logf, err := os.Create(logPath)
	if err != nil {
		return "", err
	}
	defer logf.Close()
	if err := writeFile(rootfs, "etc/apt/sources.list", p.sourcesList(s.backports), 0o644); err != nil {
		return "", err
	}
	// Packages must not start services in a root file system.
	if err := writeFile(rootfs, "usr/sbin/policy-rc.d", "#!/bin/sh\nexit 101\n", 0o755); err != nil {
		return "", err
	}
	// apt resolves the mirror's name with the host's resolver.
	if b, err := os.ReadFile("/etc/resolv.conf"); err == nil {
		if err := writeFile(rootfs, "etc/resolv.conf", string(b), 0o644); err != nil {
			return "", err
		}
	}
	p.progress("%s: apt-get install %s (log %s)", name, strings.Join(s.packages, " "), logPath)
	steps := [][]string{
		{"apt-get", "update"},
		append([]string{"apt-get", "install", "-y", "--no-install-recommends"}, s.packages...),
	}
	if s.setup != "" {
		steps = append(steps, []string{sh, "-ec", s.setup})
	}
	steps = append(steps, []string{sh, "-ec", clean})
	for _, args := range steps {
		if err := runIn(ctx, rootfs, logf, args...); err != nil {
			return "", fmt.Errorf("%w (log %s)", err, logPath)
		}
	}
	version, err := output(ctx, rootfs, sh, "-ec", s.check)
	fmt.Fprintf(logf, "+ %s\n%s\n", s.check, version)
	if err != nil {
		return "", fmt.Errorf("check %q failed: %w: %s", s.check, err, version)
	}
	return oneLine(version), nil
}

// ansi matches terminal escape sequences (colours) that tools print even
// without a terminal.
var ansi = regexp.MustCompile(`\x1b\[[0-9;]*[A-Za-z]`)

// oneLine is a check's output as one readable line.
func oneLine(s string) string {
	return strings.Join(strings.Fields(ansi.ReplaceAllString(s, "")), " ")
}

// clean removes what installing left that an image should not carry:
// downloaded packages, package lists (stale the day after), caches.
const clean = `apt-get clean
rm -rf /var/lib/apt/lists/* /var/cache/apt/*.bin /var/cache/debconf/*-old /var/lib/dpkg/*-old
rm -f /usr/sbin/policy-rc.d /etc/resolv.conf
find /var/log -type f -delete
rm -rf /root/.cache /root/.npm /tmp/* /var/tmp/*`

// sourcesList is apt's configuration inside the images: the mirror the
// images were made from, with updates and security fixes.
func (p *preparer) sourcesList(backports bool) string {
	var b strings.Builder
	fmt.Fprintf(&b, "deb %s %s main\n", p.mirror, Suite)
	fmt.Fprintf(&b, "deb %s %s-updates main\n", p.mirror, Suite)
	if backports {
		fmt.Fprintf(&b, "deb %s %s-backports main\n", p.mirror, Suite)
	}
	if p.security != "" {
		fmt.Fprintf(&b, "deb %s %s-security main\n", p.security, Suite)
	}
	return b.String()
}

// debianArch is Debian's name for this machine's architecture.
func debianArch() string {
	switch runtime.GOARCH {
	case "arm":
		return "armhf"
	case "386":
		return "i386"
	}
	return runtime.GOARCH // amd64, arm64, ppc64le, s390x, riscv64
}

// lockDir keeps two prepares (two berth commands, a server and a test)
// off the same WorkDir: the second waits for the first, whose layers it
// then reuses.
func (p *preparer) lockDir(ctx context.Context, dir string) (func(), error) {
	f, err := os.OpenFile(filepath.Join(dir, ".lock"), os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, err
	}
	for waited := false; ; waited = true {
		err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB)
		if err == nil {
			return func() { f.Close() }, nil
		}
		if !errors.Is(err, unix.EWOULDBLOCK) {
			f.Close()
			return nil, fmt.Errorf("lock %s: %w", dir, err)
		}
		if !waited {
			p.progress("waiting for another images prepare that uses %s", dir)
		}
		select {
		case <-ctx.Done():
			f.Close()
			return nil, fmt.Errorf("waiting for another images prepare that uses %s: %w", dir, ctx.Err())
		case <-time.After(500 * time.Millisecond):
		}
	}
}

func mb(n int64) string { return fmt.Sprintf("%.1f MB", float64(n)/1e6) }

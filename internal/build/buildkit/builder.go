package buildkit

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/moby/buildkit/client"
	"github.com/moby/buildkit/session"
	"github.com/moby/buildkit/session/secrets/secretsprovider"
	"github.com/moby/buildkit/util/grpcerrors"
	"github.com/tonistiigi/fsutil"
	"google.golang.org/grpc/codes"
)

// BuilderConfig says which buildkitd a Builder drives.
type BuilderConfig struct {
	// Address is buildkitd's gRPC address: Daemon.Address() for berth's
	// own, or what --buildkit-address names (unix:///run/buildkit/buildkitd.sock,
	// tcp://host:1234).
	Address string
	// InsecureRegistries are registry hosts that speak plain HTTP or have
	// an unverifiable certificate (berth's hub on loopback). Pushes and
	// cache exports to them are marked registry.insecure. Pulls in FROM
	// lines are buildkitd's business: list the same hosts in its
	// configuration (DaemonConfig.Registries).
	InsecureRegistries []string
	// Logger receives one line per build; default slog.Default().
	Logger *slog.Logger
}

// Builder runs Dockerfile builds on a buildkitd.
type Builder struct {
	cfg      BuilderConfig
	log      *slog.Logger
	insecure map[string]bool
}

// NewBuilder returns a Builder; it connects on each Build, so it can be
// made before buildkitd is up and survives buildkitd restarts.
func NewBuilder(cfg BuilderConfig) *Builder {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	ins := map[string]bool{}
	for _, h := range cfg.InsecureRegistries {
		ins[h] = true
	}
	return &Builder{cfg: cfg, log: cfg.Logger.With("component", "buildkit"), insecure: ins}
}

// Request is one build.
type Request struct {
	// ContextDir is the build context (the source tree).
	ContextDir string
	// Dockerfile is the Dockerfile's path, relative to ContextDir or
	// absolute; default "Dockerfile".
	Dockerfile string
	// DockerfileInline is the Dockerfile's content (a plan berth
	// generated); when set, Dockerfile is ignored.
	DockerfileInline string
	// BuildArgs are ARG values.
	BuildArgs map[string]string
	// Target is the stage to build; default the last one.
	Target string
	// Labels are added to the image.
	Labels map[string]string
	// Push lists the references the image is pushed as (all to the same
	// content). Without any, the image is built and only cached.
	Push []string
	// Auth gives credentials per registry host ("127.0.0.1:5000",
	// "docker.io") for pulls, pushes and registry caches.
	Auth map[string]Auth
	// CacheFrom are images whose cache the build may use: a cache
	// reference written by CacheTo, or an image pushed with an inline
	// cache.
	CacheFrom []string
	// CacheTo exports the build cache: "inline" puts it into the pushed
	// image, any other value is a cache reference in a registry (all
	// stages, mode=max).
	CacheTo string
	// NoCache rebuilds every step.
	NoCache bool
	// Timeout bounds the build; 0 means no bound besides ctx.
	Timeout time.Duration
	// Secrets are offered to RUN --mount=type=secret,id=ID, by id; they
	// never land in a layer (e.g. the CA bundle builds trust).
	Secrets map[string][]byte
}

// Result describes a finished build.
type Result struct {
	// Digest is the pushed image's manifest digest (sha256:...), empty
	// when nothing was pushed.
	Digest string
	// Duration is the build's wall time.
	Duration time.Duration
	// Steps counts the Dockerfile instructions that ran or were reused
	// (RUN, COPY, ADD, WORKDIR; not FROM, which BuildKit never reports as
	// cached); CacheHits how many of them came from the cache, so an
	// unchanged rebuild has CacheHits == Steps.
	Steps     int
	CacheHits int
}

// errTimedOut is the cause of a build context that ran out of time,
// telling a timeout from the caller's own deadline or cancellation.
var errTimedOut = errors.New("build timeout")

// Build runs req and reports progress lines to progress (called from one
// goroutine, in order; may be nil). Errors: *BuildError when the build
// itself failed, *TimeoutError when it ran past req.Timeout, ctx's error
// when ctx ended, anything else when buildkitd could not be used.
func (b *Builder) Build(ctx context.Context, req Request, progress func(Line)) (Result, error) {
	started := time.Now()
	var res Result
	if req.ContextDir == "" {
		return res, errors.New("buildkit: ContextDir is required")
	}
	if st, err := os.Stat(req.ContextDir); err != nil || !st.IsDir() {
		return res, fmt.Errorf("buildkit: build context %s is not a directory: %w", req.ContextDir, errOrNotDir(err))
	}
	buildCtx := ctx
	if req.Timeout > 0 {
		var cancel context.CancelFunc
		buildCtx, cancel = context.WithTimeoutCause(ctx, req.Timeout, errTimedOut)
		defer cancel()
	}

	dfDir, dfName, cleanup, err := dockerfileLocation(req)
	if err != nil {
		return res, err
	}
	defer cleanup()
	contextFS, err := fsutil.NewFS(req.ContextDir)
	if err != nil {
		return res, fmt.Errorf("buildkit: build context: %w", err)
	}
	dockerfileFS, err := fsutil.NewFS(dfDir)
	if err != nil {
		return res, fmt.Errorf("buildkit: Dockerfile directory: %w", err)
	}

	c, err := client.New(buildCtx, b.cfg.Address)
	if err != nil {
		return res, fmt.Errorf("buildkit: connect %s: %w", b.cfg.Address, err)
	}
	defer c.Close()
	if err := b.ping(buildCtx, c); err != nil {
		if ctxErr := b.contextError(ctx, buildCtx, req.Timeout); ctxErr != nil {
			return res, ctxErr
		}
		return res, err
	}

	opt := client.SolveOpt{
		Frontend:      "dockerfile.v0",
		FrontendAttrs: b.frontendAttrs(req, dfName),
		LocalMounts:   map[string]fsutil.FS{"context": contextFS, "dockerfile": dockerfileFS},
		// The same key for the same directory lets buildkitd send only
		// what changed since the last build of this context.
		SharedKey:    req.ContextDir,
		Session:      []session.Attachable{newAuthProvider(req.Auth, b.insecure), secretsprovider.FromMap(req.Secrets)},
		CacheImports: b.cacheImports(req),
		CacheExports: b.cacheExports(req),
	}
	if len(req.Push) > 0 {
		attrs := map[string]string{"name": strings.Join(req.Push, ","), "push": "true"}
		if b.anyInsecure(req.Push) {
			attrs["registry.insecure"] = "true"
		}
		opt.Exports = []client.ExportEntry{{Type: client.ExporterImage, Attrs: attrs}}
	}

	tr := newTracker(progress)
	statusCh := make(chan *client.SolveStatus)
	consumed := make(chan struct{})
	go func() {
		defer close(consumed)
		for s := range statusCh {
			tr.update(s)
		}
		tr.finish()
	}()
	resp, err := c.Solve(buildCtx, nil, opt, statusCh)
	<-consumed // Solve closes statusCh
	res.Duration = time.Since(started)
	res.Steps, res.CacheHits = tr.counts()
	if err != nil {
		if ctxErr := b.contextError(ctx, buildCtx, req.Timeout); ctxErr != nil {
			b.log.Info("build stopped", "context", req.ContextDir, "duration", res.Duration, "err", ctxErr)
			return res, ctxErr
		}
		if code := grpcerrors.Code(err); code == codes.Unavailable {
			return res, fmt.Errorf("buildkit: buildkitd at %s went away during the build (see its log): %w", b.cfg.Address, err)
		}
		be := &BuildError{Err: &solveError{err: err}}
		if v := tr.failed(); v != nil {
			be.Step, be.Output = v.name, v.output()
		}
		b.log.Info("build failed", "context", req.ContextDir, "step", be.Step, "duration", res.Duration, "err", be.Err.Error())
		return res, be
	}
	res.Digest = resp.ExporterResponse["containerimage.digest"]
	b.log.Info("build done", "context", req.ContextDir, "push", req.Push, "digest", res.Digest,
		"duration", res.Duration, "steps", res.Steps, "cached", res.CacheHits)
	return res, nil
}

// ping fails fast, with a message that names buildkitd, when nothing
// answers at the address: otherwise Solve waits for the connection until
// the build's own timeout.
func (b *Builder) ping(ctx context.Context, c *client.Client) error {
	pctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	if _, err := c.ListWorkers(pctx); err != nil {
		return fmt.Errorf("buildkit: buildkitd at %s does not answer (is it running? berth starts its own unless --buildkit-address is given): %w", b.cfg.Address, err)
	}
	return nil
}

// contextError says why a build stopped if it was not the build's fault:
// its timeout, or the caller's cancellation.
func (b *Builder) contextError(ctx, buildCtx context.Context, timeout time.Duration) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("build cancelled: %w", context.Cause(ctx))
	}
	if errors.Is(context.Cause(buildCtx), errTimedOut) {
		return &TimeoutError{After: timeout}
	}
	return nil
}

func (b *Builder) frontendAttrs(req Request, dockerfileName string) map[string]string {
	attrs := map[string]string{"filename": dockerfileName}
	if req.Target != "" {
		attrs["target"] = req.Target
	}
	for _, k := range slices.Sorted(maps.Keys(req.BuildArgs)) {
		attrs["build-arg:"+k] = req.BuildArgs[k]
	}
	for _, k := range slices.Sorted(maps.Keys(req.Labels)) {
		attrs["label:"+k] = req.Labels[k]
	}
	if req.NoCache {
		attrs["no-cache"] = ""
	}
	if len(req.CacheFrom) > 0 {
		// The frontend also reads the cache sources, to resolve the
		// inline cache of the images listed there.
		attrs["cache-from"] = strings.Join(req.CacheFrom, ",")
	}
	return attrs
}

func (b *Builder) cacheImports(req Request) []client.CacheOptionsEntry {
	var out []client.CacheOptionsEntry
	for _, ref := range req.CacheFrom {
		attrs := map[string]string{"ref": ref}
		if b.anyInsecure([]string{ref}) {
			attrs["registry.insecure"] = "true"
		}
		out = append(out, client.CacheOptionsEntry{Type: "registry", Attrs: attrs})
	}
	return out
}

func (b *Builder) cacheExports(req Request) []client.CacheOptionsEntry {
	switch req.CacheTo {
	case "":
		return nil
	case "inline":
		return []client.CacheOptionsEntry{{Type: "inline"}}
	}
	attrs := map[string]string{"ref": req.CacheTo, "mode": "max"}
	if b.anyInsecure([]string{req.CacheTo}) {
		attrs["registry.insecure"] = "true"
	}
	return []client.CacheOptionsEntry{{Type: "registry", Attrs: attrs}}
}

// anyInsecure says whether one of refs lives on an insecure registry.
func (b *Builder) anyInsecure(refs []string) bool {
	for _, r := range refs {
		if b.insecure[refHost(r)] {
			return true
		}
	}
	return false
}

// refHost is the registry host of an image reference ("docker.io" for
// short names).
func refHost(ref string) string {
	first, _, ok := strings.Cut(ref, "/")
	if ok && (strings.ContainsAny(first, ".:") || first == "localhost") {
		return first
	}
	return "docker.io"
}

// dockerfileLocation is the directory and file name the frontend reads
// the Dockerfile from; an inline Dockerfile is written to a temporary
// directory that cleanup removes.
func dockerfileLocation(req Request) (dir, name string, cleanup func(), err error) {
	cleanup = func() {}
	if req.DockerfileInline != "" {
		dir, err = os.MkdirTemp("", "berth-dockerfile-")
		if err != nil {
			return "", "", cleanup, fmt.Errorf("buildkit: %w", err)
		}
		cleanup = func() { _ = os.RemoveAll(dir) }
		if err := os.WriteFile(filepath.Join(dir, "Dockerfile"), []byte(req.DockerfileInline), 0o644); err != nil {
			cleanup()
			return "", "", func() {}, fmt.Errorf("buildkit: write Dockerfile: %w", err)
		}
		return dir, "Dockerfile", cleanup, nil
	}
	path := req.Dockerfile
	if path == "" {
		path = "Dockerfile"
	}
	if !filepath.IsAbs(path) {
		path = filepath.Join(req.ContextDir, path)
	}
	if _, err := os.Stat(path); err != nil {
		return "", "", cleanup, &BuildError{Err: fmt.Errorf("no Dockerfile at %s: %w", path, err)}
	}
	return filepath.Dir(path), filepath.Base(path), cleanup, nil
}

func errOrNotDir(err error) error {
	if err != nil {
		return err
	}
	return errors.New("not a directory")
}

package worker

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/berth-platform/berth/internal/build/buildkit"
	"github.com/berth-platform/berth/internal/build/plan"
	"github.com/berth-platform/berth/internal/build/source"
	"github.com/berth-platform/berth/internal/model"
	"github.com/berth-platform/berth/internal/store"
)

// TaskBuild builds a source component into a new version and deploys it.
const TaskBuild = "build"

// BuildTask is the payload of a build.
type BuildTask struct {
	ComponentID string `json:"component_id"`
	// UploadID is the completed upload to build (source type package).
	UploadID string `json:"upload_id,omitempty"`
	// Commit pins what a webhook announced.
	Commit string `json:"commit,omitempty"`
}

// ImageRegistry is where builds push: berth's hub or an external registry.
type ImageRegistry struct {
	// Prefix is host[/path]; images are Prefix/<team>/<component>:v<N>.
	Prefix string
	// Username and Password reach everything: berth's own housekeeping
	// (and every pull and push on an external registry, which has one).
	Username string
	Password string
	// TeamPull and TeamBuild mint the hub's per-team credentials for a
	// team's workloads and builds (see team_images.go); nil for an
	// external registry.
	TeamPull  func(team string) (username, password string)
	TeamBuild func(team, repo string) (username, password string, err error)
	// PlainHTTP for a registry on loopback without TLS (the hub).
	PlainHTTP bool
	// Tags lists a repository's tags (to find offline base images) and
	// Delete removes a tag of a collected version; nil for an external
	// registry, where berth only pushes.
	Tags   func(ctx context.Context, repo string) ([]string, error)
	Delete func(ctx context.Context, repo, tag string) error
	// Collect frees the blobs of deleted tags (the hub's GC), may be nil.
	Collect func(ctx context.Context) error
}

func (r *ImageRegistry) host() string {
	h, _, _ := strings.Cut(r.Prefix, "/")
	return h
}

// Builds turns sources into versions: fetch, detect, plan, BuildKit, push,
// record the version, then roll it out.
type Builds struct {
	store    store.Store
	tasks    *ComponentTasks
	Builder  *buildkit.Builder
	Registry *ImageRegistry
	// Uploads is a component's upload area.
	Uploads func(componentID string) (*source.Uploads, error)
	// WorkDir holds each build's checkout while it runs.
	WorkDir string
	// BaseImagesDir keeps the Debian root file systems of base images.
	BaseImagesDir string
	// KeepVersions is how many versions a component keeps (default 5).
	KeepVersions int
	// Timeout bounds a build unless the component sets its own.
	Timeout time.Duration
	// MirrorPrefix makes official base images pull through a mirror.
	MirrorPrefix string
	// BaseImages override the base images per language.
	BaseImages plan.BaseImages
	// BuildEnv reaches every build (GOPROXY, NPM_CONFIG_REGISTRY...), under
	// the component's own BUILD_* variables.
	BuildEnv map[string]string
	// CABundle is the PEM bundle builds trust when they download (the
	// host's, so that a proxy's CA works); nil leaves the images' own.
	CABundle []byte
	// Hosts checks the git and registry hosts builds connect to (not the
	// host's own addresses); nil checks nothing.
	Hosts *HostGuard

	collecting sync.Mutex
}

// NewBuilds returns the build handlers; tasks deploys what they build.
func NewBuilds(st store.Store, tasks *ComponentTasks) *Builds {
	return &Builds{store: st, tasks: tasks, KeepVersions: 5, Timeout: 30 * time.Minute}
}

// Forget removes the checkout a deleted component kept between builds.
func (b *Builds) Forget(componentID string) {
	if componentID == "" || strings.ContainsAny(componentID, "/\\.") {
		return
	}
	if err := os.RemoveAll(filepath.Join(b.WorkDir, "checkouts", componentID)); err != nil {
		slog.Warn("remove the checkout of a deleted component", "component", componentID, "err", err)
	}
}

// Register adds the build handler to r.
func (b *Builds) Register(r *Runner) {
	r.Handle(TaskBuild, b.build)
	r.Handle(TaskImagesPrepare, b.prepareImages)
}

// Repository is where a component's images live in the registry.
func (b *Builds) Repository(c *model.Component) string {
	return strings.TrimSuffix(b.Registry.Prefix, "/") + "/" + c.Team + "/" + c.Alias
}

// logWriter turns written lines into event log lines of a stage.
type logWriter struct {
	log   *TaskLog
	stage string
	buf   []byte
}

func (w *logWriter) Write(p []byte) (int, error) {
	w.buf = append(w.buf, p...)
	for {
		i := strings.IndexByte(string(w.buf), '\n')
		if i < 0 {
			return len(p), nil
		}
		if line := strings.TrimRight(string(w.buf[:i]), "\r"); line != "" {
			w.log.Printf(w.stage, "%s", line)
		}
		w.buf = w.buf[i+1:]
	}
}

func (b *Builds) build(ctx context.Context, t *model.Task, log *TaskLog) error {
	var p BuildTask
	if err := json.Unmarshal(t.Payload, &p); err != nil {
		return &Failure{Reason: "BadTask", Err: fmt.Errorf("read task: %w", err)}
	}
	c, err := b.tasks.mutate(ctx, p.ComponentID, func(c *model.Component) error {
		if c.Kind != model.KindSource || c.Source == nil {
			return &Failure{Reason: "NotSource", Err: fmt.Errorf("%s is a %s component; only source components are built", c.Alias, c.Kind)}
		}
		c.BuildState, c.BuildMessage = "building", "build "+t.EventID
		return nil
	})
	if err != nil {
		return err
	}
	start := time.Now()
	version, port, err := b.run(ctx, t, p, c, log)
	if err != nil {
		b.fail(ctx, c, version, err, log)
		return err
	}
	version.Status, version.DurationMS = model.VersionSuccess, time.Since(start).Milliseconds()
	if err := b.store.UpdateVersion(ctx, version); err != nil {
		return fmt.Errorf("record version %d: %w", version.Number, err)
	}
	log.Printf("build", "Build success: version %d (%s) in %s", version.Number, version.Digest, time.Since(start).Round(100*time.Millisecond))
	b.collect(ctx, c, log)

	if same, running := b.sameAsRunning(ctx, c, version); same {
		_, err := b.tasks.mutate(ctx, c.ID, func(c *model.Component) error {
			c.BuildState, c.BuildMessage = "", ""
			return nil
		})
		log.Printf("deploy", "version %d is the same image as the running version %d (%s); nothing to roll out", version.Number, running, version.Digest)
		return err
	}
	c, err = b.tasks.mutate(ctx, c.ID, func(c *model.Component) error {
		c.BuildState, c.BuildMessage = "", ""
		c.DeployVersion, c.Image, c.Desired = version.Number, version.Image, model.DesiredRunning
		if len(c.Ports) == 0 && port > 0 {
			// The app's own port, as the plan or its Dockerfile says.
			c.Ports = []model.Port{{Port: port, Protocol: model.ProtoHTTP, Inner: true}}
			c.Normalize()
			log.Printf("build", "the app listens on port %d: added it to %s as an inner port (PATCH it with {\"outer\": true} to publish it)", port, c.Alias)
		}
		return nil
	})
	if err != nil {
		return err
	}
	if c.Readiness == nil {
		// The default probe is ReadinessProbe's, applied at deploy time.
		if p := ReadinessProbe(c); p != nil {
			log.Printf("build", "readiness: %s is ready when port %d accepts connections (set a readiness check to change it)", c.Alias, p.Port)
		}
	}
	log.Printf("deploy", "Deploying version %d", version.Number)
	return b.tasks.realize(ctx, c, log, "deploy")
}

// sameAsRunning reports whether v is the image the component runs now
// (an unchanged source), and that version's number.
func (b *Builds) sameAsRunning(ctx context.Context, c *model.Component, v *model.Version) (bool, int64) {
	if c.DeployVersion == 0 || c.Desired != model.DesiredRunning || v.Digest == "" {
		return false, 0
	}
	running, err := b.store.GetVersion(ctx, c.ID, c.DeployVersion)
	if err != nil || running.Digest != v.Digest {
		return false, 0
	}
	return true, running.Number
}

// fail records a failed build: the version says failure, the component
// shows build_failure and keeps running its last good version.
func (b *Builds) fail(ctx context.Context, c *model.Component, v *model.Version, err error, log *TaskLog) {
	// The task's context may be what ended; the record must still be made.
	ctx = context.WithoutCancel(ctx)
	if v != nil && v.Number > 0 {
		v.Status = model.VersionFailure
		if uerr := b.store.UpdateVersion(ctx, v); uerr != nil {
			slog.Warn("record failed version", "component", c.Alias, "err", uerr)
		}
	}
	msg := err.Error()
	var be *buildkit.BuildError
	if errors.As(err, &be) {
		log.Errorf("build", "%s", be.Detail())
	}
	if _, merr := b.tasks.mutate(ctx, c.ID, func(c *model.Component) error {
		c.BuildState, c.BuildMessage = "failed", firstLine(msg)
		return nil
	}); merr != nil {
		slog.Warn("record build failure", "component", c.Alias, "err", merr)
	}
}

func firstLine(s string) string {
	line, _, _ := strings.Cut(s, "\n")
	return line
}

// run fetches, plans, builds and pushes; the returned version exists once
// the build started (to be marked failed on error).
func (b *Builds) run(ctx context.Context, t *model.Task, p BuildTask, c *model.Component, log *TaskLog) (v *model.Version, port int, err error) {
	v, err = b.fetchAndBuild(ctx, t, p, c, log, &port)
	return v, port, err
}

func (b *Builds) fetchAndBuild(ctx context.Context, t *model.Task, p BuildTask, c *model.Component, log *TaskLog, port *int) (*model.Version, error) {
	dir := filepath.Join(b.WorkDir, t.EventID)
	if err := os.RemoveAll(dir); err != nil { // a resumed build starts over
		return nil, err
	}
	defer os.RemoveAll(dir)
	src := filepath.Join(dir, "src")
	if c.Source.Type == model.SourceGit || c.Source.Type == "" {
		// A component keeps its checkout between builds: an unchanged
		// branch then costs one ls-remote instead of a clone.
		src = filepath.Join(b.WorkDir, "checkouts", c.ID)
	} else if err := os.MkdirAll(src, 0o755); err != nil {
		return nil, err
	}
	v := &model.Version{ComponentID: c.ID, Status: model.VersionBuilding, EventID: t.EventID, CreatedAt: time.Now().UTC()}

	switch c.Source.Type {
	case model.SourceImage:
		return b.retag(ctx, c, v, log)
	case model.SourcePackage:
		if err := b.unpack(c.ID, p.UploadID, src, log); err != nil {
			return nil, err
		}
		v.Message = "uploaded package"
	default:
		spec := source.GitSpecFromSource(*c.Source)
		if p.Commit != "" {
			spec.Ref = p.Commit
		}
		spec.Username, spec.Password, spec.Submodules = c.Source.Username, c.Source.Password, c.Source.Submodules
		spec.Guard = b.Hosts.gitPolicy()
		if c.Source.SSHKey != "" {
			spec.SSHKey = []byte(c.Source.SSHKey)
		}
		commit, err := source.Refresh(ctx, spec, src, &logWriter{log: log, stage: "clone"})
		if err != nil {
			var ge *source.GitError
			if errors.As(err, &ge) && ge.Advice != "" {
				log.Errorf("clone", "%s", ge.Advice)
			}
			return nil, &Failure{Reason: "CloneFailed", Err: err}
		}
		v.Commit, v.Author, v.Message = commit.Hash, commit.Author, firstLine(commit.Message)
	}
	log.Printf("build", "pull or clone code successfully, start code build")

	log.Printf("build", "Start make code package")
	det, err := plan.DetectSource(src, *c.Source)
	if err != nil {
		return nil, &Failure{Reason: "DetectFailed", Err: err}
	}
	how := det.DecidedBy
	if det.ForcedBy != "" {
		how = det.ForcedBy
	}
	log.Printf("build", "detected %s%s (decided by %s)", det.Language, toolSuffix(det.Tool), how)
	pl, err := plan.Generate(det, plan.Options{BaseImages: b.baseImages(ctx), MirrorPrefix: b.MirrorPrefix,
		BuildEnv: b.buildEnv(c), CacheScope: c.Team, CABundle: len(b.CABundle) > 0, Port: c.MainPort()})
	if err != nil {
		return nil, &Failure{Reason: "PlanFailed", Err: err}
	}
	log.Printf("build", "make code package success: %s", planSummary(pl))
	*port = pl.Port

	if err := b.store.CreateVersion(ctx, v); err != nil {
		return nil, fmt.Errorf("record version: %w", err)
	}
	ref := fmt.Sprintf("%s:v%d", b.Repository(c), v.Number)
	auth, err := b.Registry.buildAuth(c)
	if err != nil {
		return v, err
	}
	req := buildkit.Request{
		ContextDir: filepath.Join(src, pl.Context), BuildArgs: pl.BuildArgs, Push: []string{ref},
		Auth:    map[string]buildkit.Auth{b.Registry.host(): auth},
		Timeout: b.Timeout,
		Secrets: map[string][]byte{plan.CASecret: b.CABundle},
		// No version label: an unchanged source must give the same digest.
		Labels: map[string]string{"berth.component": c.Team + "/" + c.Alias},
	}
	if c.Source.BuildTimeout > 0 {
		req.Timeout = time.Duration(c.Source.BuildTimeout) * time.Second
	}
	if pl.UserDockerfile {
		req.Dockerfile = pl.DockerfilePath
		// The user's ARGs get the build variables under both names:
		// BUILD_GREETING and GREETING.
		req.BuildArgs = map[string]string{}
		for k, v := range b.buildEnv(c) {
			req.BuildArgs[k] = v
			if short, ok := strings.CutPrefix(k, "BUILD_"); ok && short != "" {
				req.BuildArgs[short] = v
			}
		}
	} else {
		req.DockerfileInline = pl.Dockerfile
	}
	// Written through os.Root: the checkout's .dockerignore may be a link.
	if err := plan.WriteIgnore(src, pl.Context, pl.Ignore); err != nil {
		return v, &Failure{Reason: "PlanFailed", Err: err}
	}
	if err := b.Registry.checkDockerfileImages(c.Team, []byte(pl.Dockerfile), req.BuildArgs); err != nil {
		log.Errorf("build", "%v", err)
		return v, err
	}
	if pl.UserDockerfile {
		if err := b.Hosts.checkDockerfile(ctx, []byte(pl.Dockerfile), req.BuildArgs); err != nil {
			log.Errorf("build", "%v", err)
			return v, err
		}
	}
	log.Printf("build", "create build code job success: pushing to %s", ref)
	codeDone, stages := false, newCodeStages(pl.Stages)
	res, err := b.Builder.Build(ctx, req, func(l buildkit.Line) {
		log.Printf("build", "%s", l.Text)
		if !codeDone && stages.done(l) {
			codeDone = true
			log.Printf("build", "code build success")
		}
	})
	if err != nil {
		return v, &Failure{Reason: "BuildFailed", Err: b.explain(err, pl)}
	}
	if !codeDone {
		log.Printf("build", "code build success")
	}
	log.Printf("build", "build runtime image success: %d of %d steps from the cache", res.CacheHits, res.Steps)
	v.Image, v.Digest = ref, res.Digest
	return v, nil
}

func toolSuffix(tool string) string {
	if tool == "" {
		return ""
	}
	return " (" + tool + ")"
}

func planSummary(p plan.Plan) string {
	if p.UserDockerfile {
		return "the repository's own " + p.DockerfilePath
	}
	s := "stages " + strings.Join(p.Stages, " → ")
	if p.Port > 0 {
		s += fmt.Sprintf(", port %d", p.Port)
	}
	return s
}

// explain adds the advice a failed build needs: a base image that is not
// there is the usual one on a machine without internet.
func (b *Builds) explain(err error, pl plan.Plan) error {
	var te *buildkit.TimeoutError
	if errors.As(err, &te) {
		return err
	}
	msg := err.Error()
	if hint := b.Registry.deniedHint(msg); hint != "" {
		return fmt.Errorf("%w; %s", err, hint)
	}
	if f := pullFailed(err, pl); f != nil {
		return f
	}
	return err
}

// unpack places an uploaded package in dir: a jar or war as it is, an
// archive extracted (refusing entries that leave the tree, links out of it
// and decompression bombs).
func (b *Builds) unpack(componentID, uploadID, dir string, log *TaskLog) error {
	if uploadID == "" || b.Uploads == nil {
		return &Failure{Reason: "NoPackage", Err: fmt.Errorf("no uploaded package to build: upload one first (POST .../uploads, then PATCH the chunks)")}
	}
	ups, err := b.Uploads(componentID)
	if err != nil {
		return err
	}
	up, err := ups.Status(uploadID)
	if err != nil {
		return &Failure{Reason: "NoPackage", Err: fmt.Errorf("upload %s: %w", uploadID, err)}
	}
	path, err := ups.Complete(uploadID)
	if err != nil {
		return &Failure{Reason: "NoPackage", Err: err}
	}
	log.Printf("clone", "Start make code package from the upload %s (%s, %d bytes)", up.Name, uploadID, up.Size)
	format, err := source.PreparePackage(path, dir, source.Limits{})
	if err != nil {
		return &Failure{Reason: "BadPackage", Err: err}
	}
	log.Printf("clone", "package %s is a %s", up.Name, format)
	return nil
}

// retag copies an image into the registry as a version.
func (b *Builds) retag(ctx context.Context, c *model.Component, v *model.Version, log *TaskLog) (*model.Version, error) {
	srcRef, err := name.ParseReference(c.Source.Image)
	if err != nil {
		return nil, &Failure{Reason: "BadImage", Err: fmt.Errorf("source.image %q: %w", c.Source.Image, err)}
	}
	var srcOpts []remote.Option
	srcOpts = append(srcOpts, remote.WithContext(ctx))
	srcOpts = append(srcOpts, b.Hosts.pullOptions(c.Source.Image)...)
	if reg, err := b.store.GetRegistry(ctx, c.Team, srcRef.Context().RegistryStr()); err == nil {
		srcOpts = append(srcOpts, remote.WithAuth(&authn.Basic{Username: reg.Username, Password: reg.Password}))
	}
	// An image of the hub is pulled with the team's own credential, and
	// only from the team's namespace or the base images.
	hubAuth, err := b.Registry.pullAuth(c.Team, c.Source.Image)
	if err != nil {
		log.Errorf("build", "%v", err)
		return nil, err
	}
	if hubAuth != nil {
		if b.Registry.PlainHTTP {
			if srcRef, err = name.ParseReference(c.Source.Image, name.Insecure); err != nil {
				return nil, &Failure{Reason: "BadImage", Err: fmt.Errorf("source.image %q: %w", c.Source.Image, err)}
			}
		}
		srcOpts = append(srcOpts, remote.WithAuth(&authn.Basic{Username: hubAuth.Username, Password: hubAuth.Password}))
	}
	log.Printf("build", "Start pull image %s", c.Source.Image)
	img, err := remote.Image(srcRef, srcOpts...)
	if err != nil {
		return nil, &Failure{Reason: "PullFailed", Err: fmt.Errorf("pull %s: %w", c.Source.Image, err)}
	}
	if err := b.store.CreateVersion(ctx, v); err != nil {
		return nil, fmt.Errorf("record version: %w", err)
	}
	ref := fmt.Sprintf("%s:v%d", b.Repository(c), v.Number)
	var nameOpts []name.Option
	if b.Registry.PlainHTTP {
		nameOpts = append(nameOpts, name.Insecure)
	}
	dst, err := name.ParseReference(ref, nameOpts...)
	if err != nil {
		return v, err
	}
	push, err := b.Registry.buildAuth(c)
	if err != nil {
		return v, err
	}
	if err := remote.Write(dst, img, remote.WithContext(ctx),
		remote.WithAuth(&authn.Basic{Username: push.Username, Password: push.Password})); err != nil {
		return v, &Failure{Reason: "PushFailed", Err: fmt.Errorf("push %s: %w", ref, err)}
	}
	digest, err := img.Digest()
	if err != nil {
		return v, err
	}
	log.Printf("build", "build runtime image success: %s re-tagged as %s", c.Source.Image, ref)
	v.Image, v.Digest, v.Message = ref, digest.String(), "image "+c.Source.Image
	return v, nil
}

// baseImages are the official images, with the hub's offline ones (from
// `berth images prepare`) for each language where they exist, and the
// server's own choices over both.
func (b *Builds) baseImages(ctx context.Context) plan.BaseImages {
	out := plan.DefaultBaseImages()
	if b.Registry.Tags != nil {
		offline := plan.OfflineBaseImages(b.Registry.Prefix)
		have := plan.BaseImages{}
		for lang, img := range offline {
			if b.present(ctx, img.Builder) && b.present(ctx, img.Runner) {
				have[lang] = img
			}
		}
		out = out.Merge(have)
	}
	return out.Merge(b.BaseImages)
}

func (b *Builds) present(ctx context.Context, ref string) bool {
	if ref == "" {
		return true
	}
	repo := strings.TrimPrefix(ref, strings.TrimSuffix(b.Registry.Prefix, "/")+"/")
	repo, _, _ = strings.Cut(repo, ":")
	tags, err := b.Registry.Tags(ctx, repo)
	return err == nil && len(tags) > 0
}

// buildEnv is the server's build environment under the component's own
// BUILD_* variables.
func (b *Builds) buildEnv(c *model.Component) map[string]string {
	env := map[string]string{}
	for k, v := range b.BuildEnv {
		env[k] = v
	}
	for _, e := range c.Envs {
		if strings.HasPrefix(e.Name, "BUILD_") {
			env[e.Name] = e.Value
		}
	}
	return env
}

// collect keeps the newest KeepVersions versions (and the one running) and
// deletes the rest with their images.
func (b *Builds) collect(ctx context.Context, c *model.Component, log *TaskLog) {
	versions, err := b.store.ListVersions(ctx, c.ID)
	if err != nil {
		slog.Warn("list versions to collect", "component", c.Alias, "err", err)
		return
	}
	sort.Slice(versions, func(i, j int) bool { return versions[i].Number > versions[j].Number })
	keep := max(b.KeepVersions, 1)
	var gone []int64
	for i, v := range versions {
		if i < keep || v.Number == c.DeployVersion || v.Status == model.VersionBuilding {
			continue
		}
		if b.Registry.Delete != nil && v.Image != "" && strings.HasPrefix(v.Image, b.Repository(c)+":") {
			tag := strings.TrimPrefix(v.Image, b.Repository(c)+":")
			repo := strings.TrimPrefix(b.Repository(c), strings.TrimSuffix(b.Registry.Prefix, "/")+"/")
			if err := b.Registry.Delete(ctx, repo, tag); err != nil {
				slog.Warn("delete image of a collected version", "image", v.Image, "err", err)
			}
		}
		if err := b.store.DeleteVersion(ctx, c.ID, v.Number); err != nil {
			slog.Warn("delete version", "component", c.Alias, "version", v.Number, "err", err)
			continue
		}
		gone = append(gone, v.Number)
	}
	if len(gone) == 0 {
		return
	}
	log.Printf("build", "collected %d old version(s) (%v); %d kept", len(gone), gone, keep)
	if b.Registry.Collect != nil {
		// The hub's sweep waits for a quiet moment; the build does not.
		go func() {
			if !b.collecting.TryLock() {
				return
			}
			defer b.collecting.Unlock()
			if err := b.Registry.Collect(context.WithoutCancel(ctx)); err != nil {
				slog.Warn("collect image blobs", "err", err)
			}
		}()
	}
}

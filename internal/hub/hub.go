// Package hub is berth's embedded OCI registry, "the hub".
//
// The registry itself is distribution/v3's handler application
// (registry/handlers.App) configured in code: filesystem storage under
// Config.Root, deletes enabled, no redis, notifications, health checks,
// access log or listener of its own. Hub adds what berth needs around it:
//
//   - a Docker-registry-spec token server at TokenPath that trades HTTP basic
//     credentials for a JWT scoped to the caller's teams (see auth.go);
//   - an internal credential that may pull and push everything, for berth's
//     own housekeeping, and per-team credentials minted for the runtime and
//     BuildKit, scoped to the team's namespace and the base images;
//   - tag/manifest deletion and a mark-and-sweep garbage collector that is
//     safe to run while the registry serves (see gc.go).
//
// Layout under Config.Root:
//
//	registry/           distribution's filesystem driver root (docker/registry/v2/...)
//	auth/signing.key    ECDSA P-256 private key (PKCS#8 PEM) that signs tokens
//	auth/signing.crt    self-signed certificate for that key: the registry's
//	                    token rootcertbundle
//	auth/internal.secret password of the internal credential
//	auth/http.secret    secret that signs blob-upload state
//
// All of these are created on first start and reused afterwards, so images,
// issued tokens, in-flight uploads and the internal credential survive a
// restart.
//
// Clients authenticate the standard way, so stock tooling needs only a
// username/password for the berth host:
//
//  1. A request without a token gets 401 with
//     WWW-Authenticate: Bearer realm="http://<host>/v2/token",service="berth-hub",scope="repository:<team>/<component>:pull".
//  2. The client asks the realm for a token: GET with HTTP basic auth (any
//     username, a berth API token as password), or the OAuth2-style POST
//     form containerd and BuildKit try first. See serveToken.
//  3. It retries with "Authorization: Bearer <jwt>"; the JWT lists the
//     repositories and actions granted, and the registry checks each
//     request against it.
//
// For a team's workloads, give containerd's docker resolver an authorizer
// with docker.WithAuthCreds returning TeamPullCredentials(team) for the
// berth host (and plain HTTP when berth's listener is not TLS), and a
// team's build in BuildKit a session auth provider answering
// TeamBuildCredentials(team, repo) for that host: neither reaches another
// team's repositories (see teams.go). InternalCredentials() is for berth's
// own housekeeping only.
package hub

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/distribution/distribution/v3"
	"github.com/distribution/distribution/v3/configuration"
	"github.com/distribution/distribution/v3/registry/handlers"
	"github.com/distribution/distribution/v3/registry/storage"
	storagedriver "github.com/distribution/distribution/v3/registry/storage/driver"
	"github.com/distribution/distribution/v3/registry/storage/driver/filesystem"

	// The token access controller registers itself with the registry's
	// auth factory on import; NewApp looks it up by name.
	_ "github.com/distribution/distribution/v3/registry/auth/token"
)

// TokenPath is where the hub's token endpoint is served. It sits under /v2/
// so that mounting Handler() on "/v2/" serves both the registry API and the
// token endpoint; no repository route can collide with it because every
// repository route has at least one more path segment.
const TokenPath = "/v2/token"

// Defaults for Config.
const (
	DefaultService       = "berth-hub"
	DefaultIssuer        = "berth-hub"
	DefaultTokenTTL      = 15 * time.Minute
	DefaultGCQuietPeriod = 30 * time.Second
)

// fsMaxThreads matches the filesystem driver's own default concurrency cap.
const fsMaxThreads = 100

// Errors returned by the hub. Authenticators return ErrUnauthorized
// (possibly wrapped) for credentials they reject.
var (
	ErrNotFound     = errors.New("hub: not found")
	ErrUnauthorized = errors.New("hub: unauthorized")
)

// Config configures a Hub.
type Config struct {
	// Root is the directory the hub owns (created if missing).
	Root string

	// Realm is the absolute URL of the token endpoint advertised in
	// WWW-Authenticate challenges. Empty means it is derived from each
	// request: scheme (X-Forwarded-Proto, else TLS or not) + Host + TokenPath,
	// which is right whenever clients reach the hub at the address they
	// pull from.
	Realm string
	// Service is the token audience and the "service" in challenges.
	Service string
	// Issuer is the token "iss" claim.
	Issuer string
	// TokenTTL is how long issued tokens stay valid.
	TokenTTL time.Duration

	// Auth decides what a basic-auth caller of the token endpoint may do.
	// The internal credential is checked before Auth is consulted.
	Auth Authenticator

	// GCQuietPeriod is how long GarbageCollect waits after the last push
	// activity before sweeping; see gc.go. Zero means
	// DefaultGCQuietPeriod, negative means no wait.
	GCQuietPeriod time.Duration

	// Logger receives the hub's own logs and, via a logrus bridge, the
	// registry library's. Nil means slog.Default().
	Logger *slog.Logger
}

// Hub is a running embedded registry.
type Hub struct {
	cfg      Config
	log      *slog.Logger
	app      *handlers.App
	driver   storagedriver.StorageDriver
	reg      distribution.Namespace
	tokens   *tokenIssuer
	internal credential
	handler  http.Handler

	// sweep is held shared by every request that could make a blob
	// referenced (pushes, blob existence checks, deletes) and exclusively by
	// GarbageCollect, so nothing can observe or reference a blob while the
	// sweep decides its fate.
	sweep sync.RWMutex
	// pushes counts push-activity requests in flight; lastPush is the
	// UnixNano time the most recent one started or ended. GarbageCollect
	// waits until pushes is zero and lastPush is GCQuietPeriod old, because
	// a push spans several requests and a blob checked or uploaded early in
	// it is referenced only by the manifest PUT at its end.
	pushes   atomic.Int64
	lastPush atomic.Int64

	closeOnce sync.Once
}

// New creates (or reopens) the hub under cfg.Root. ctx bounds start-up only;
// the hub lives until Close.
func New(ctx context.Context, cfg Config) (*Hub, error) {
	if cfg.Root == "" {
		return nil, errors.New("hub: root directory is required")
	}
	if cfg.Auth == nil {
		return nil, errors.New("hub: authenticator is required")
	}
	root, err := filepath.Abs(cfg.Root)
	if err != nil {
		return nil, fmt.Errorf("hub: root: %w", err)
	}
	cfg.Root = root
	if cfg.Service == "" {
		cfg.Service = DefaultService
	}
	if cfg.Issuer == "" {
		cfg.Issuer = DefaultIssuer
	}
	if cfg.TokenTTL <= 0 {
		cfg.TokenTTL = DefaultTokenTTL
	}
	if cfg.GCQuietPeriod == 0 {
		cfg.GCQuietPeriod = DefaultGCQuietPeriod
	}
	logger := cfg.Logger
	if logger == nil {
		logger = slog.Default()
	}
	logger = logger.With("component", "hub")
	bridgeLogrus(logger)

	regDir := filepath.Join(root, "registry")
	authDir := filepath.Join(root, "auth")
	for _, d := range []string{regDir, authDir} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return nil, fmt.Errorf("hub: %w", err)
		}
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("hub: %w", err)
	}

	tokens, err := loadTokenIssuer(authDir, cfg.Issuer, cfg.Service, cfg.TokenTTL)
	if err != nil {
		return nil, fmt.Errorf("hub: signing key: %w", err)
	}
	internalPass, err := loadOrCreateSecret(filepath.Join(authDir, "internal.secret"))
	if err != nil {
		return nil, fmt.Errorf("hub: internal credential: %w", err)
	}
	httpSecret, err := loadOrCreateSecret(filepath.Join(authDir, "http.secret"))
	if err != nil {
		return nil, fmt.Errorf("hub: http secret: %w", err)
	}

	h := &Hub{
		cfg:      cfg,
		log:      logger,
		tokens:   tokens,
		internal: credential{Username: InternalUsername, Password: internalPass},
	}
	// The app outlives start-up; Close cancels it through Shutdown.
	appCtx := context.WithoutCancel(ctx)
	h.app, err = newApp(appCtx, h.registryConfig(regDir, httpSecret))
	if err != nil {
		return nil, err
	}

	// A second view of the same storage for GC and the Go helpers. The
	// app's own is unexported; sharing the directory is safe because
	// neither view caches blob descriptors (no cache is configured).
	h.driver = filesystem.New(filesystem.DriverParameters{
		RootDirectory: regDir,
		MaxThreads:    fsMaxThreads,
	})
	h.reg, err = storage.NewRegistry(appCtx, h.driver, storage.EnableDelete)
	if err != nil {
		_ = h.app.Shutdown()
		return nil, fmt.Errorf("hub: storage: %w", err)
	}

	mux := http.NewServeMux()
	mux.HandleFunc(TokenPath, h.serveToken)
	mux.HandleFunc("GET /v2/_catalog", h.serveCatalog)
	mux.HandleFunc("/v2/", h.serveRegistry)
	mux.HandleFunc("/v2", h.serveRegistry)
	h.handler = mux

	h.log.Info("hub ready", "root", root, "service", cfg.Service)
	return h, nil
}

// registryConfig builds distribution's configuration in code rather than
// YAML so that nothing optional (redis, notifications, health, tracing,
// proxy) can be switched on by accident.
func (h *Hub) registryConfig(regDir, httpSecret string) *configuration.Configuration {
	conf := &configuration.Configuration{}
	conf.Log.AccessLog.Disabled = true
	conf.Storage = configuration.Storage{
		"filesystem": configuration.Parameters{"rootdirectory": regDir},
		"delete":     configuration.Parameters{"enabled": true},
		// The filesystem driver cannot redirect; saying so skips the probe.
		"redirect": configuration.Parameters{"disable": true},
		"maintenance": configuration.Parameters{
			// Abandoned uploads are reclaimed after a week, as upstream does.
			"uploadpurging": map[any]any{
				"enabled":  true,
				"age":      "168h",
				"interval": "24h",
				"dryrun":   false,
			},
		},
	}
	tokenParams := configuration.Parameters{
		"realm":          h.cfg.Realm,
		"service":        h.cfg.Service,
		"issuer":         h.cfg.Issuer,
		"rootcertbundle": h.tokens.certPath,
		// Only what tokenIssuer signs with, so no other algorithm (HS256
		// keyed with a public key, say) can ever be accepted.
		"signingalgorithms": []any{string(signingAlgorithm)},
	}
	if h.cfg.Realm == "" {
		// The realm must name the host the client used, which only the
		// request knows; serveRegistry sets X-Forwarded-Proto so the scheme
		// is right too.
		tokenParams["realm"] = TokenPath
		tokenParams["autoredirect"] = true
		tokenParams["autoredirectpath"] = TokenPath
	}
	conf.Auth = configuration.Auth{"token": tokenParams}
	// A persisted secret keeps resumable uploads valid across restarts.
	conf.HTTP.Secret = httpSecret
	// Non-distributable layers may name where they are fetched from; the
	// hub never fetches them, so any web URL is accepted (OCI 1.1).
	conf.Validation.Manifests.URLs.Allow = []string{`^https?://`}
	// Relative Location headers work behind any proxy or port mapping;
	// containerd, BuildKit and go-containerregistry all resolve them.
	conf.HTTP.RelativeURLs = true
	return conf
}

// newApp turns NewApp's panics (its way of reporting bad configuration)
// into errors.
func newApp(ctx context.Context, conf *configuration.Configuration) (app *handlers.App, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("hub: registry: %v", r)
		}
	}()
	return handlers.NewApp(ctx, conf), nil
}

// Handler serves the registry API (/v2/...) and the token endpoint
// (TokenPath). Mount it on "/v2/" (and "/v2" if the mux does not redirect).
func (h *Hub) Handler() http.Handler { return h.handler }

// Service is the token audience, as advertised in challenges.
func (h *Hub) Service() string { return h.cfg.Service }

// Root is the hub's absolute root directory.
func (h *Hub) Root() string { return h.cfg.Root }

// Close stops the registry's background work. The handler must not be used
// afterwards.
func (h *Hub) Close() error {
	var err error
	h.closeOnce.Do(func() {
		if e := h.app.Shutdown(); e != nil {
			err = fmt.Errorf("hub: shutdown: %w", e)
		}
	})
	return err
}

// serveRegistry hands a request to distribution after taking part in the
// GC protocol.
func (h *Hub) serveRegistry(w http.ResponseWriter, r *http.Request) {
	if h.cfg.Realm == "" && r.Header.Get("X-Forwarded-Proto") == "" {
		// distribution's auto-redirect realm assumes https unless told;
		// berth often listens on plain HTTP.
		r = r.Clone(r.Context())
		if r.TLS != nil {
			r.Header.Set("X-Forwarded-Proto", "https")
		} else {
			r.Header.Set("X-Forwarded-Proto", "http")
		}
	}
	push := pushActivity(r)
	if push {
		h.pushBegin()
		defer h.pushEnd()
	}
	if push || r.Method == http.MethodDelete {
		h.sweep.RLock()
		defer h.sweep.RUnlock()
	}
	if h.serveOCI11(w, r) {
		return
	}
	h.app.ServeHTTP(w, r)
}

// pushActivity reports whether r is part of a push: any write except
// DELETE, and HEAD on a blob, which is how pushers (containerd, BuildKit,
// go-containerregistry) decide to skip uploading a layer the registry
// already has. Pullers GET blobs.
func pushActivity(r *http.Request) bool {
	switch r.Method {
	case http.MethodGet, http.MethodOptions, http.MethodDelete:
		return false
	case http.MethodHead:
		i := strings.LastIndex(r.URL.Path, "/blobs/")
		return i >= 0 && !strings.HasPrefix(r.URL.Path[i:], "/blobs/uploads")
	default:
		return true
	}
}

func (h *Hub) pushBegin() {
	h.pushes.Add(1)
	h.lastPush.Store(time.Now().UnixNano())
}

func (h *Hub) pushEnd() {
	h.lastPush.Store(time.Now().UnixNano())
	h.pushes.Add(-1)
}

// Package server wires the all-in-one berth: it starts each part in phases,
// reports them, and shuts them down in reverse order.
package server

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/berth-platform/berth/internal/api"
	"github.com/berth-platform/berth/internal/build/buildkit"
	"github.com/berth-platform/berth/internal/events"
	"github.com/berth-platform/berth/internal/gateway"
	"github.com/berth-platform/berth/internal/hub"
	"github.com/berth-platform/berth/internal/runtime"
	"github.com/berth-platform/berth/internal/runtime/containerd"
	"github.com/berth-platform/berth/internal/store"
	"github.com/berth-platform/berth/internal/worker"
	"github.com/berth-platform/berth/web"
)

// Config is the server's configuration (the flags of `berth server`).
type Config struct {
	DataDir  string
	Listen   string
	Database string // "" for SQLite in DataDir, or postgres://...
	TCPPorts string // gateway TCP port range, "LO-HI"
	// HTTPAddr and HTTPSAddr are the gateway's listeners ("" turns one off).
	HTTPAddr, HTTPSAddr string
	// GatewayMaxConns caps the gateway's client connections (0: 10000);
	// GatewayHeaderTimeout and GatewayIdleTimeout bound a request head and
	// a kept-alive connection's wait for the next (0: 30 s and 75 s).
	GatewayMaxConns                          int
	GatewayHeaderTimeout, GatewayIdleTimeout time.Duration
	// Domain is the base of default domains; "" is <machine IP>.nip.io.
	Domain string
	// ACME issues certificates for rules with auto_tls.
	ACMEDirectory, ACMEEmail, ACMECA string
	// BuildKitAddress uses a running buildkitd instead of berth's own.
	BuildKitAddress string
	// BuildNetwork is the network of RUN steps in berth's own buildkitd:
	// "isolated" (default) or "host" (for a machine that runs only its
	// owner's code).
	BuildNetwork string
	// BuildBridge and BuildSubnet are the isolated build network's bridge
	// (default: the instance bridge's name + "bk") and IPv4 range
	// (default: a free /24 of 10.215.0.0/16).
	BuildBridge, BuildSubnet string
	// Registry pushes builds to an external registry (host[/prefix])
	// instead of the hub.
	Registry string
	// KeepVersions is how many versions a component keeps.
	KeepVersions int
	// BuildTimeout bounds builds that do not set their own.
	BuildTimeout time.Duration
	// ImageMirror prefixes official base images (a registry mirror).
	ImageMirror string
	// RegistryMirrors are BuildKit's mirrors per registry host, as
	// HOST=MIRROR (docker.io=mirror.example.com): a user Dockerfile's FROM
	// is pulled through them.
	RegistryMirrors []string
	// BuildEnv are NAME=value pairs every build gets.
	BuildEnv []string
	// BaseImages override builder and runner images per language
	// (LANG=BUILDER[,RUNNER]).
	BaseImages []string
	// BuildCA is the CA bundle builds trust when they download; default
	// the host's.
	BuildCA string
	// UploadMax bounds an uploaded package, in bytes.
	UploadMax int64
	// BaseImagesDir keeps the Debian root file systems `images prepare`
	// makes; default DATA/baseimages. Tests share one across servers.
	BaseImagesDir string
	Workers       int
	LogLevel      slog.Level
	// ResetAdminToken issues a new admin token and revokes the old one.
	ResetAdminToken bool
	// RotateSecretKey re-encrypts the stored secrets with a new
	// DATA/secret.key at start-up.
	RotateSecretKey bool
	// MetricsListen serves /metrics without a token on this address; on
	// the API address /metrics needs the admin token.
	MetricsListen string
	// Runtime is the engine that runs components: "containerd" (default)
	// or "none" (API only, nothing runs).
	Runtime string
	// Containerd configures the embedded engine; DataDir is filled in.
	Containerd containerd.DriverConfig
	// AllowEndpointCIDRs are ranges thirdparty endpoints (and so TCP and
	// HTTP rules) may point at although they are the host's or berth's
	// own (loopback, link-local, host addresses, instance and service
	// subnets). Default: none; BERTH_ALLOW_ENDPOINT_CIDR when empty.
	AllowEndpointCIDRs []string
	// TaskStepDelay slows every task step; for crash-recovery tests only.
	TaskStepDelay time.Duration
	// ReadyTimeout bounds a rollout: a new version not ready by then is
	// rolled back (or the deploy fails). Zero is 5 minutes.
	ReadyTimeout time.Duration
	// Out receives the phase lines (stdout).
	Out io.Writer
}

// Version is berth's version, set at build time.
var Version = "dev"

// Run starts berth and blocks until ctx ends, then shuts down cleanly.
func Run(ctx context.Context, cfg Config) error {
	if cfg.Out == nil {
		cfg.Out = os.Stdout
	}
	lo, hi, err := ParsePortRange(cfg.TCPPorts)
	if err != nil {
		return fmt.Errorf("--tcp-ports: %w", err)
	}
	guard, err := endpointPolicy(cfg)
	if err != nil {
		return err
	}
	start := time.Now()
	fmt.Fprintf(cfg.Out, "berth %s starting\n", Version)

	// The data directory comes first: it holds the log every later error
	// points to.
	dir, err := openDataDir(cfg.DataDir)
	if err != nil {
		return &PhaseError{Phase: "data directory", Cause: err, LogFile: "the output above"}
	}
	defer dir.close()
	logPath := dir.file("logs", "berth.log")
	logFile, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return &PhaseError{Phase: "data directory", Cause: err, LogFile: logPath}
	}
	defer logFile.Close()
	slog.SetDefault(slog.New(slog.NewJSONHandler(logFile, &slog.HandlerOptions{Level: cfg.LogLevel})))
	slog.Info("berth starting", "version", Version, "data", dir.path, "pid", os.Getpid())

	builds := cfg.Runtime != "none" || cfg.BuildKitAddress != ""
	names := []string{"store", "event log"}
	if cfg.Runtime != "none" {
		names = append(names, "containerd")
	}
	names = append(names, "hub", "gateway", "api")
	if builds {
		names = append(names, "buildkit")
	}
	names = append(names, "worker")
	ph := newPhases(cfg.Out, logPath, names...)
	fmt.Fprintf(cfg.Out, "  ✓ %-12s %-48s\n", "data", dir.path)

	var st store.Store
	err = ph.run("store", func() (string, error) {
		openCtx, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		st, err = store.Open(openCtx, cfg.Database, dir.path)
		if err != nil {
			return "", err
		}
		if cfg.RotateSecretKey {
			if err := store.RotateSecretKey(openCtx, st); err != nil {
				return "", err
			}
		}
		if st.Dialect() == "sqlite" {
			return "sqlite " + dir.file("berth.db"), nil
		}
		return "postgres " + redactDSN(cfg.Database), nil
	})
	if err != nil {
		return fail(err)
	}
	defer st.Close()

	tokenPath := dir.file("admin-token")
	newToken, err := ensureAdminToken(ctx, st, tokenPath, cfg.ResetAdminToken)
	if err != nil {
		return fail(&PhaseError{Phase: "store", Cause: err, LogFile: logPath})
	}

	var evlog *events.Log
	_ = ph.run("event log", func() (string, error) {
		evlog = events.NewLog(st)
		return "durable, live followers over SSE and WebSocket", nil
	})

	var driver runtime.Driver
	if cfg.Runtime != "none" {
		ctrdLog := dir.file("logs", "containerd.log")
		err = ph.run("containerd", func() (string, error) {
			dc := cfg.Containerd
			dc.DataDir = dir.path
			d, err := containerd.Open(ctx, dc)
			if err != nil {
				return "", err
			}
			driver = d
			if dc.Address != "" {
				return "using " + dc.Address + "; " + d.Isolation(), nil
			}
			return "supervised, log " + ctrdLog + "; " + d.Isolation(), nil
		})
		if err != nil {
			var pe *PhaseError
			if errors.As(err, &pe) {
				pe.LogFile = ctrdLog
			}
			return fail(err)
		}
		// Containers keep running across a restart of berth, to be adopted.
		defer driver.Close()
	}

	var imageHub *hub.Hub
	err = ph.run("hub", func() (string, error) {
		imageHub, err = hub.New(ctx, hub.Config{Root: dir.file("hub"), Auth: api.HubAuthenticator(st)})
		if err != nil {
			return "", err
		}
		return "OCI registry at /v2/ on the API address, storage " + dir.file("hub"), nil
	})
	if err != nil {
		return fail(err)
	}
	defer imageHub.Close()

	// Clones and pulls are held to the endpoints' policy too.
	hosts := &worker.HostGuard{Policy: guard}
	var reconciler *worker.Reconciler
	var endpoints worker.EndpointSource
	var hints worker.HintSource
	if driver != nil {
		reconciler = worker.NewReconciler(st, driver)
		reconciler.ReadyTimeout = cfg.ReadyTimeout
		reconciler.ThirdParty.Guard = guard
		reconciler.Hosts = hosts
		defer reconciler.ThirdParty.Close()
		endpoints, hints = reconciler.Endpoints, reconciler.ListenHint
	}

	var gw *gateway.Gateway
	var gwSync *worker.GatewaySync
	var gwInfo *api.GatewayInfo
	err = ph.run("gateway", func() (string, error) {
		gw, gwSync, gwInfo, err = startGateway(ctx, cfg, dir, st, endpoints, hints)
		if err != nil {
			return "", err
		}
		return describeGateway(gw, gwInfo), nil
	})
	if err != nil {
		return fail(err)
	}
	defer gw.Close()

	runner := worker.NewRunner(st, evlog, worker.Options{Owner: ownerName(), Workers: cfg.Workers})
	tasks := worker.NewComponentTasks(st)
	tasks.StepDelay = cfg.TaskStepDelay
	tasks.Runtime = reconciler
	tasks.Register(runner)
	deletes := worker.NewDeletes(st, tasks)
	deletes.DeleteRepositories, deletes.Changed = hubRepositoryDeleter(imageHub), gwSync.Wake
	deletes.Cancel = runner.Cancel
	deletes.Register(runner)

	if cfg.Registry != "" {
		hosts.Registry, _, _ = strings.Cut(cfg.Registry, "/")
	}
	apiCfg := api.Config{
		Store: st, Log: evlog, Tasks: runner, Runtime: driver, TCPPortLow: lo, TCPPortHigh: hi, Health: ph.health,
		Mount:   map[string]http.Handler{"GET /{$}": web.Handler(), "/v2/": imageHub.Handler()},
		Gateway: gwInfo, Collectors: gw.Collectors(), Cancel: runner.Cancel, EndpointPolicy: guard,
		PlatformRegistry: hosts.Registry,
	}
	if reconciler != nil {
		apiCfg.ThirdParty, apiCfg.Addresses = reconciler.ThirdParty, reconciler.Addresses
	}
	if builds {
		// Filled in by the buildkit phase, before the worker takes tasks.
		apiCfg.Builds = &api.BuildsInfo{}
	}
	apiCfg.Hub = &api.HubInfo{} // its host is known once the API listens
	hosts.HubHost = func() string { return apiCfg.Hub.Host }
	handler := api.New(apiCfg)
	httpSrv := newAPIServer(handler)
	var ln net.Listener
	err = ph.run("api", func() (string, error) {
		ln, err = net.Listen("tcp", cfg.Listen)
		if err != nil {
			return "", err
		}
		apiCfg.Hub.Host = hubHost(ln.Addr())
		go func() {
			if err := httpSrv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
				slog.Error("api server stopped", "err", err)
			}
		}()
		return "listening on " + ln.Addr().String(), nil
	})
	if err != nil {
		return fail(err)
	}
	defer shutdownHTTP(httpSrv)
	metricsAddr := ""
	if cfg.MetricsListen != "" {
		var stopMetrics func()
		if stopMetrics, metricsAddr, err = serveMetrics(cfg.MetricsListen, handler.MetricsHandler()); err != nil {
			return fail(&PhaseError{Phase: "api", Cause: err, LogFile: logPath})
		}
		defer stopMetrics()
	}

	if builds {
		reg := imageRegistry(cfg, imageHub, hubHost(ln.Addr()))
		var stopBuildKit func()
		err = ph.run("buildkit", func() (string, error) {
			var detail string
			var builder *buildkit.Builder
			builder, stopBuildKit, detail, err = startBuildKit(ctx, cfg, dir, reg)
			if err != nil {
				return "", err
			}
			b := worker.NewBuilds(st, tasks)
			b.Builder, b.Registry, b.WorkDir, b.BaseImagesDir = builder, reg, dir.file("builds"), dir.file("baseimages")
			b.Hosts = hosts
			if cfg.BaseImagesDir != "" {
				b.BaseImagesDir = cfg.BaseImagesDir
			}
			b.Uploads = uploadAreas(dir.file("uploads"), cfg.UploadMax)
			b.MirrorPrefix, b.BuildEnv = cfg.ImageMirror, buildEnv(cfg)
			if b.CABundle, err = hostCABundle(cfg); err != nil {
				return "", err
			}
			if b.BaseImages, err = baseImageOverrides(cfg.BaseImages); err != nil {
				return "", err
			}
			if cfg.KeepVersions > 0 {
				b.KeepVersions = cfg.KeepVersions
			}
			if cfg.BuildTimeout > 0 {
				b.Timeout = cfg.BuildTimeout
			}
			b.Register(runner)
			uploadsRoot := dir.file("uploads")
			apiCfg.Builds.Forget = func(id string) {
				b.Forget(id)
				if dir, ok := componentDir(uploadsRoot, id); ok {
					_ = os.RemoveAll(dir)
				}
			}
			deletes.Forget = apiCfg.Builds.Forget
			apiCfg.Builds.Uploads, apiCfg.Builds.PrepareImages = b.Uploads, cfg.Registry == ""
			if reconciler != nil {
				reconciler.Registry = reg
			}
			return detail + ", images to " + reg.Prefix, nil
		})
		if err != nil {
			var pe *PhaseError
			if errors.As(err, &pe) && cfg.BuildKitAddress == "" {
				pe.LogFile = dir.file("logs", "buildkitd.log")
			}
			return fail(err)
		}
		defer stopBuildKit()
	}

	err = ph.run("worker", func() (string, error) {
		if reconciler != nil {
			// Adopt what kept running while berth was down before any task
			// touches it.
			if err := reconciler.Resume(ctx); err != nil {
				return "", err
			}
			go reconciler.Run(ctx)
		}
		go gwSync.Run(ctx)
		if err := runner.Start(ctx, st.Dialect() == "sqlite"); err != nil {
			return "", err
		}
		return fmt.Sprintf("%d task workers, owner %s", runner.Workers(), runner.Owner()), nil
	})
	if err != nil {
		return fail(err)
	}
	defer runner.Stop()

	url := consoleURL(ln.Addr())
	fmt.Fprintf(cfg.Out, "berth is ready in %s\n", roundDuration(time.Since(start)))
	fmt.Fprintf(cfg.Out, "  Console and API: %s\n", url)
	if newToken {
		fmt.Fprintf(cfg.Out, "  Admin token:     %s (new)\n", tokenPath)
	} else {
		fmt.Fprintf(cfg.Out, "  Admin token:     %s\n", tokenPath)
	}
	fmt.Fprintf(cfg.Out, "  Log in:          berth login %s --token \"$(cat %s)\"\n", url, tokenPath)
	fmt.Fprintf(cfg.Out, "  Server log:      %s\n", logPath)
	if metricsAddr != "" {
		fmt.Fprintf(cfg.Out, "  Metrics:         http://%s/metrics (no token)\n", metricsAddr)
	}
	slog.Info("berth ready", "listen", ln.Addr().String(), "duration", time.Since(start))

	<-ctx.Done()
	fmt.Fprintln(cfg.Out, "berth shutting down")
	slog.Info("berth shutting down")
	return nil
}

// fail logs a phase error before returning it.
func fail(err error) error {
	slog.Error("start-up failed", "err", err)
	return err
}

// The API server's timeouts (variables for tests).
var (
	apiHeaderTimeout = 10 * time.Second
	apiIdleTimeout   = 2 * time.Minute
)

// newAPIServer serves the API: a head must come within apiHeaderTimeout
// (a connection that sends nothing is closed then) and a kept-alive
// connection ends after apiIdleTimeout without a request. No ReadTimeout
// or WriteTimeout: uploads, event log follows (SSE, WebSocket) and log
// streams may take as long as they take.
func newAPIServer(h http.Handler) *http.Server {
	return &http.Server{Handler: h, ReadHeaderTimeout: apiHeaderTimeout, IdleTimeout: apiIdleTimeout}
}

func shutdownHTTP(s *http.Server) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := s.Shutdown(ctx); err != nil {
		// Event followers hold streams open; cut them rather than wait.
		s.Close()
	}
}

func ownerName() string {
	host, _ := os.Hostname()
	return fmt.Sprintf("%s-%d-%d", host, os.Getpid(), time.Now().UnixNano()%1e6)
}

// ParsePortRange reads "LO-HI".
func ParsePortRange(s string) (int, int, error) {
	if s == "" {
		return 30000, 30010, nil
	}
	a, b, ok := strings.Cut(s, "-")
	lo, err1 := strconv.Atoi(a)
	hi, err2 := strconv.Atoi(b)
	if !ok || err1 != nil || err2 != nil || lo < 1 || hi > 65535 || lo > hi {
		return 0, 0, fmt.Errorf("must be LO-HI with 1 <= LO <= HI <= 65535, e.g. 30000-30010 (got %q)", s)
	}
	return lo, hi, nil
}

func redactDSN(dsn string) string {
	if at := strings.LastIndex(dsn, "@"); at > 0 {
		if scheme := strings.Index(dsn, "://"); scheme > 0 && scheme < at {
			return dsn[:scheme+3] + "***" + dsn[at:]
		}
	}
	return dsn
}

// consoleURL is the address a user on this machine or the network opens.
func consoleURL(addr net.Addr) string {
	tcp, ok := addr.(*net.TCPAddr)
	if !ok {
		return "http://" + addr.String()
	}
	host := tcp.IP.String()
	if tcp.IP.IsUnspecified() {
		host = machineIP()
	}
	return "http://" + net.JoinHostPort(host, strconv.Itoa(tcp.Port))
}

// machineIP is the first non-loopback IPv4 address of this machine, read
// from the interfaces (no traffic is sent).
func machineIP() string {
	addrs, err := net.InterfaceAddrs()
	if err == nil {
		for _, a := range addrs {
			if n, ok := a.(*net.IPNet); ok && n.IP.To4() != nil && !n.IP.IsLoopback() && !n.IP.IsLinkLocalUnicast() {
				return n.IP.String()
			}
		}
	}
	return "127.0.0.1"
}

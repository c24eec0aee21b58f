package server

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	cr "github.com/google/go-containerregistry/pkg/name"

	"github.com/berth-platform/berth/internal/build/buildkit"
	"github.com/berth-platform/berth/internal/build/plan"
	"github.com/berth-platform/berth/internal/build/source"
	"github.com/berth-platform/berth/internal/hub"
	"github.com/berth-platform/berth/internal/runtime/containerd"
	"github.com/berth-platform/berth/internal/worker"
)

// hubHost is the address the runtime and BuildKit reach the hub at: the
// API listener, on loopback when it listens on every address.
func hubHost(addr net.Addr) string {
	tcp, ok := addr.(*net.TCPAddr)
	if !ok {
		return addr.String()
	}
	host := tcp.IP.String()
	if tcp.IP.IsUnspecified() {
		host = "127.0.0.1"
	}
	return net.JoinHostPort(host, strconv.Itoa(tcp.Port))
}

// imageRegistry is where builds push: the hub, or --registry.
func imageRegistry(cfg Config, h *hub.Hub, host string) *worker.ImageRegistry {
	if cfg.Registry != "" {
		return &worker.ImageRegistry{Prefix: strings.TrimSuffix(cfg.Registry, "/"),
			Username: os.Getenv("BERTH_REGISTRY_USERNAME"), Password: os.Getenv("BERTH_REGISTRY_PASSWORD")}
	}
	user, pass := h.InternalCredentials()
	return &worker.ImageRegistry{Prefix: host, Username: user, Password: pass, PlainHTTP: true,
		TeamPull: h.TeamPullCredentials, TeamBuild: h.TeamBuildCredentials,
		Tags: h.Tags, Delete: h.DeleteTag,
		Collect: func(ctx context.Context) error { _, err := h.GarbageCollect(ctx); return err }}
}

// registryMirrors reads HOST=MIRROR[,MIRROR] pairs (the seed's docker.io
// mirror case) into BuildKit's registry configuration.
func registryMirrors(pairs []string) ([]buildkit.RegistryConfig, error) {
	byHost := map[string][]string{}
	var hosts []string
	for _, p := range pairs {
		host, list, ok := strings.Cut(p, "=")
		if !ok || host == "" || list == "" {
			return nil, fmt.Errorf("--registry-mirror %q: want HOST=MIRROR, e.g. docker.io=mirror.example.com", p)
		}
		if _, seen := byHost[host]; !seen {
			hosts = append(hosts, host)
		}
		for m := range strings.SplitSeq(list, ",") {
			if m = strings.TrimSpace(m); m != "" {
				byHost[host] = append(byHost[host], m)
			}
		}
	}
	out := make([]buildkit.RegistryConfig, 0, len(hosts))
	for _, h := range hosts {
		out = append(out, buildkit.RegistryConfig{Host: h, Mirrors: byHost[h]})
	}
	return out, nil
}

// startBuildKit runs berth's own buildkitd, or checks the one named by
// --buildkit-address, and returns the builder and a stop function.
func startBuildKit(ctx context.Context, cfg Config, dir *dataDir, reg *worker.ImageRegistry) (*buildkit.Builder, func(), string, error) {
	var insecure []string
	var regs []buildkit.RegistryConfig
	if reg.PlainHTTP {
		insecure = append(insecure, reg.Prefix)
		regs = append(regs, buildkit.RegistryConfig{Host: reg.Prefix, PlainHTTP: true})
	}
	mirrors, err := registryMirrors(cfg.RegistryMirrors)
	if err != nil {
		return nil, nil, "", err
	}
	regs = append(regs, mirrors...)
	if cfg.BuildKitAddress != "" {
		pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		if err := buildkit.Ping(pctx, cfg.BuildKitAddress); err != nil {
			return nil, nil, "", fmt.Errorf("buildkitd at %s does not answer: %w", cfg.BuildKitAddress, err)
		}
		b := buildkit.NewBuilder(buildkit.BuilderConfig{Address: cfg.BuildKitAddress, InsecureRegistries: insecure})
		return b, func() {}, "using " + cfg.BuildKitAddress, nil
	}
	d := buildkit.NewDaemon(buildkit.DaemonConfig{Dir: dir.file("buildkit"), LogPath: dir.file("logs", "buildkitd.log"), Registries: regs,
		NetworkMode: cfg.BuildNetwork, Network: buildNetwork(cfg)})
	if err := d.Start(ctx); err != nil {
		return nil, nil, "", err
	}
	b := buildkit.NewBuilder(buildkit.BuilderConfig{Address: d.Address(), InsecureRegistries: insecure})
	return b, func() { _ = d.Stop(10 * time.Second) }, "supervised, " + d.NetworkSummary() + ", log " + dir.file("logs", "buildkitd.log"), nil
}

// buildNetwork keeps RUN steps away from berth's instance and service
// subnets (the host's own addresses are always out of their reach). The
// bridge follows the instance bridge's name, so that two berths (or two
// tests) with their own instance bridges get their own build bridges too.
func buildNetwork(cfg Config) buildkit.NetworkConfig {
	instances, services := cfg.Containerd.Subnet, cfg.Containerd.ServiceSubnet
	if instances == "" {
		instances = containerd.DefaultSubnet
	}
	if services == "" {
		services = containerd.DefaultServiceSubnet
	}
	bridge := cfg.BuildBridge
	if bridge == "" {
		bridge = cfg.Containerd.Bridge
		if bridge == "" {
			bridge = containerd.DefaultBridge
		}
		bridge = bridge[:min(len(bridge), 13)] + "bk"
	}
	return buildkit.NetworkConfig{Bridge: bridge, Subnet: cfg.BuildSubnet, Deny: []string{instances, services}}
}

// uploadAreas gives each component its own upload directory, so that an
// upload id of one component means nothing on another.
func uploadAreas(root string, maxBytes int64) func(componentID string) (*source.Uploads, error) {
	var mu sync.Mutex
	areas := map[string]*source.Uploads{}
	return func(componentID string) (*source.Uploads, error) {
		mu.Lock()
		defer mu.Unlock()
		if u, ok := areas[componentID]; ok {
			return u, nil
		}
		dir, ok := componentDir(root, componentID)
		if !ok {
			return nil, fmt.Errorf("bad component id %q", componentID)
		}
		u, err := source.NewUploads(dir, maxBytes)
		if err != nil {
			return nil, err
		}
		areas[componentID] = u
		return u, nil
	}
}

// buildEnv is what every build gets: the proxies and registries of
// berth's own environment (GOPROXY, NPM_CONFIG_REGISTRY...) and --build-env.
func buildEnv(cfg Config) map[string]string {
	env := map[string]string{}
	for _, k := range []string{"GOPROXY", "GONOSUMDB", "GOSUMDB", "GOPRIVATE", "NPM_CONFIG_REGISTRY", "PIP_INDEX_URL", "PIP_TRUSTED_HOST", "MAVEN_MIRROR_URL", "HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY"} {
		if v := os.Getenv(k); v != "" {
			env[k] = v
		}
	}
	// Tools that take their CA bundle from a variable find the host's
	// bundle where builds mount it.
	for _, k := range []string{"SSL_CERT_FILE", "NODE_EXTRA_CA_CERTS", "PIP_CERT", "REQUESTS_CA_BUNDLE", "GIT_SSL_CAINFO", "CURL_CA_BUNDLE"} {
		if os.Getenv(k) != "" {
			env[k] = "/etc/ssl/certs/ca-certificates.crt"
		}
	}
	for _, kv := range cfg.BuildEnv {
		if k, v, ok := strings.Cut(kv, "="); ok && k != "" {
			env[k] = v
		}
	}
	return env
}

// hostCABundle is what builds trust when they download: --build-ca, else
// the host's own bundle (which carries a proxy's CA when there is one).
func hostCABundle(cfg Config) ([]byte, error) {
	path := cfg.BuildCA
	if path == "" {
		path = "/etc/ssl/certs/ca-certificates.crt"
		if _, err := os.Stat(path); err != nil {
			return nil, nil
		}
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("--build-ca: %w", err)
	}
	return b, nil
}

// baseImageOverrides reads --base-image LANG=BUILDER[,RUNNER] (a RUNNER
// alone is written LANG=,RUNNER).
func baseImageOverrides(flags []string) (plan.BaseImages, error) {
	out := plan.BaseImages{}
	for _, f := range flags {
		name, refs, ok := strings.Cut(f, "=")
		lang, known := plan.ParseLanguage(name)
		if !ok || !known || lang == "" {
			return nil, fmt.Errorf("--base-image %q: want LANG=BUILDER[,RUNNER] with LANG one of %s", f, strings.Join(plan.LanguageNames(), ", "))
		}
		builder, runner, _ := strings.Cut(refs, ",")
		for _, ref := range []string{builder, runner} {
			if ref != "" {
				if _, err := cr.ParseReference(ref); err != nil {
					return nil, fmt.Errorf("--base-image %q: %q is not an image reference: %w", f, ref, err)
				}
			}
		}
		out[lang] = plan.BaseImage{Builder: builder, Runner: runner}
	}
	return out, nil
}

// componentDir is a component's directory below root; ids never hold path
// separators or dots, so a bad one cannot leave root.
func componentDir(root, componentID string) (string, bool) {
	if componentID == "" || strings.ContainsAny(componentID, "/\\.") {
		return "", false
	}
	return filepath.Join(root, componentID), true
}

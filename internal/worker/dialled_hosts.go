package worker

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"sync"
	"time"

	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/berth-platform/berth/internal/hub"
	"github.com/berth-platform/berth/internal/model"
	"github.com/berth-platform/berth/internal/netguard"
)

// The wall between tenants and the host, at use time: the API refuses a
// git repository or image registry at the host's or berth's own
// addresses when a component is saved, and these checks run again right
// before berth connects, since a name can change its answer (DNS
// rebinding) or the component was stored before the rule.

const usePull = "image registry"

// HostGuard checks the registries tenants' images come from. A nil guard
// checks nothing (tests that pull from loopback registries).
type HostGuard struct {
	Policy *netguard.Policy
	// HubHost is berth's hub (host:port); its images are the platform's
	// and always allowed.
	HubHost func() string
	// Registry is the host builds push to when it is not the hub
	// (--registry): the platform's too.
	Registry string

	// verdicts keeps each registry host's answer for verdictTTL: at
	// start-up every component is applied again, and most share a few
	// registries, so one look-up per host serves them all.
	mu       sync.Mutex
	verdicts map[string]hostVerdict
}

const verdictTTL = 10 * time.Second

type hostVerdict struct {
	err error
	at  time.Time
}

// checkHost is Policy.CheckHost for a registry host, remembered briefly.
func (g *HostGuard) checkHost(ctx context.Context, host string) error {
	g.mu.Lock()
	v, ok := g.verdicts[host]
	g.mu.Unlock()
	if ok && time.Since(v.at) < verdictTTL {
		return v.err
	}
	_, err := g.Policy.CheckHost(ctx, usePull, host, "443")
	g.mu.Lock()
	if g.verdicts == nil || len(g.verdicts) > 1024 {
		g.verdicts = map[string]hostVerdict{}
	}
	g.verdicts[host] = hostVerdict{err: err, at: time.Now()}
	g.mu.Unlock()
	return err
}

// checkImage refuses image when its registry is, or resolves to, an
// address of the host or of berth's networks. The runtime resolves the
// name again when it pulls, a moment later: the window is that of one
// look-up, not of the component's life.
func (g *HostGuard) checkImage(ctx context.Context, image string) error {
	if g == nil || image == "" || g.onHub(image) {
		return nil
	}
	host := model.ImageHost(image)
	if netguard.IsDockerHub(host) {
		return nil
	}
	err := g.checkHost(ctx, host)
	if _, ok := err.(*netguard.HostError); ok {
		return &Failure{Reason: "ImageHostNotAllowed", Err: fmt.Errorf("image %s: %w", image, err)}
	}
	return nil // a look-up failure: the pull reports it
}

// onHub: image is in berth's own registry, the hub or --registry.
func (g *HostGuard) onHub(image string) bool {
	if _, ok := hub.Repository(image, g.Registry); ok && g.Registry != "" {
		return true
	}
	if g.HubHost == nil {
		return false
	}
	_, onHub := hub.Repository(image, g.HubHost())
	return onHub
}

// transport dials a tenant-named registry only at addresses the policy
// allows, looked up right before each connection, so nothing comes
// between the check and the dial.
func (g *HostGuard) transport() http.RoundTripper {
	t := remote.DefaultTransport.(*http.Transport).Clone()
	guarded, direct := g.Policy.DialContext(usePull), (&net.Dialer{}).DialContext
	proxies := envProxies()
	t.DialContext = func(ctx context.Context, network, address string) (net.Conn, error) {
		if proxies[address] {
			// The operator's proxy (HTTPS_PROXY), on loopback often: the
			// registry's host was checked before, the proxy reaches it.
			return direct(ctx, network, address)
		}
		return guarded(ctx, network, address)
	}
	return t
}

// envProxies are the host:port of the proxies berth's environment names.
func envProxies() map[string]bool {
	out := map[string]bool{}
	for _, k := range []string{"HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy"} {
		u, err := url.Parse(os.Getenv(k))
		if err != nil || u.Host == "" {
			continue
		}
		port := u.Port()
		if port == "" {
			port = map[string]string{"https": "443"}[u.Scheme]
		}
		if port == "" {
			port = "80"
		}
		out[net.JoinHostPort(u.Hostname(), port)] = true
	}
	return out
}

// pullOptions are the options a re-tag's pull from image's registry adds.
func (g *HostGuard) pullOptions(image string) []remote.Option {
	if g == nil || g.onHub(image) || netguard.IsDockerHub(model.ImageHost(image)) {
		return nil
	}
	return []remote.Option{remote.WithTransport(g.transport())}
}

// gitPolicy is what a clone checks its hosts with; nil without a guard.
func (g *HostGuard) gitPolicy() *netguard.Policy {
	if g == nil {
		return nil
	}
	if g.Policy == nil {
		return &netguard.Policy{} // the built-in ranges and the host's addresses
	}
	return g.Policy
}

// checkDockerfile refuses a user's Dockerfile naming an image (FROM, COPY
// --from, RUN --mount from) of a registry at the host's own addresses:
// BuildKit's daemon pulls it from the host. BuildKit resolves the name
// itself, a moment later. berth's own plans name only platform images.
func (g *HostGuard) checkDockerfile(ctx context.Context, dockerfile []byte, args map[string]string) error {
	if g == nil {
		return nil
	}
	for _, img := range dockerfileImages(dockerfile, args) {
		if err := g.checkImage(ctx, img.ref); err != nil {
			return fmt.Errorf("Dockerfile line %d (%s): %w", img.line, img.instruction, err)
		}
	}
	return nil
}

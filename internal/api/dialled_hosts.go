package api

import (
	"context"
	"errors"
	"net/http"

	"github.com/berth-platform/berth/internal/build/source"
	"github.com/berth-platform/berth/internal/hub"
	"github.com/berth-platform/berth/internal/model"
	"github.com/berth-platform/berth/internal/netguard"
)

// checkDialledHosts refuses a component whose git repository or image
// registry is the host's loopback, one of its own addresses or berth's
// internal networks: berth clones and pulls from its own host, so such a
// component would make it connect to services only the host reaches. The
// endpoints' policy and allowance apply; berth's hub is the platform's
// registry and always allowed. Builds and deploys check again when they
// connect, since a name can change its answer.
func (a *API) checkDialledHosts(ctx context.Context, c *model.Component) error {
	if c.Kind == model.KindSource && c.Source != nil && c.Source.Type == model.SourceGit {
		if err := source.CheckRemoteHost(ctx, a.cfg.EndpointPolicy, c.Source.URL); err != nil {
			return errorf(http.StatusUnprocessableEntity, "source_host_not_allowed", "source.url: %v", err)
		}
	}
	if err := a.checkRegistryHost(ctx, "image", c.Image); err != nil {
		return err
	}
	if c.Kind == model.KindSource && c.Source != nil && c.Source.Type == model.SourceImage {
		return a.checkRegistryHost(ctx, "source.image", c.Source.Image)
	}
	return nil
}

func (a *API) checkRegistryHost(ctx context.Context, field, image string) error {
	if image == "" {
		return nil
	}
	for _, platform := range []string{a.hubHost(), a.cfg.PlatformRegistry} {
		if _, ours := hub.Repository(image, platform); ours {
			return nil // berth's own registry: the hub, or --registry
		}
	}
	host := model.ImageHost(image)
	if netguard.IsDockerHub(host) {
		return nil
	}
	_, err := a.cfg.EndpointPolicy.CheckHost(ctx, "image registry", host, "443")
	var he *netguard.HostError
	if errors.As(err, &he) {
		return errorf(http.StatusUnprocessableEntity, "image_host_not_allowed", "%s: the registry of %s: %v", field, image, he)
	}
	return nil
}

func (a *API) hubHost() string {
	if a.cfg.Hub == nil {
		return ""
	}
	return a.cfg.Hub.Host
}

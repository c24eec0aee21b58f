package api

import (
	"errors"
	"net/http"

	"github.com/berth-platform/berth/internal/hub"
	"github.com/berth-platform/berth/internal/model"
)

// HubInfo is what the API needs of berth's hub.
type HubInfo struct {
	// Host is the host:port the runtime and BuildKit pull from (the API
	// listener); set once it listens, before the first request.
	Host string
}

// checkHubImages refuses a component naming a hub repository its team may
// not use (another team's, or the platform's beyond its base images): the
// runtime and builds would be refused the pull anyway, since they pull
// with the team's own credential, but the user learns the rule now
// instead of from a failed deploy.
func (a *API) checkHubImages(c *model.Component) error {
	if a.cfg.Hub == nil || a.cfg.Hub.Host == "" {
		return nil
	}
	if err := a.checkHubImage(c.Team, "image", c.Image); err != nil {
		return err
	}
	if c.Kind == model.KindSource && c.Source != nil && c.Source.Type == model.SourceImage {
		return a.checkHubImage(c.Team, "source.image", c.Source.Image)
	}
	return nil
}

func (a *API) checkHubImage(team, field, image string) error {
	if image == "" {
		return nil
	}
	var rule *hub.ImageRuleError
	if err := hub.CheckImage(team, image, a.cfg.Hub.Host); errors.As(err, &rule) {
		return errorf(http.StatusUnprocessableEntity, "image_not_allowed", "%s: %s", field, rule.Error())
	}
	return nil
}

package api

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/berth-platform/berth/internal/model"
	"github.com/berth-platform/berth/internal/netguard"
)

// newEndpointKey makes the key a thirdparty service registers its
// endpoints with.
func newEndpointKey() string {
	b := make([]byte, 24)
	_, _ = rand.Read(b)
	return "bek_" + base64.RawURLEncoding.EncodeToString(b)
}

// checkEndpoints refuses endpoints at the host's or berth's internal
// addresses: berth dials them from the host, so a tenant could publish
// what only the host reaches.
func (a *API) checkEndpoints(ctx context.Context, field string, eps []string) error {
	for i, ep := range eps {
		err := a.cfg.EndpointPolicy.Check(ctx, ep)
		var ge *netguard.Error
		if errors.As(err, &ge) {
			return errorf(http.StatusUnprocessableEntity, "endpoint_not_allowed", "%s[%d]: %s", field, i, ge.Error())
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// listEndpoints shows a thirdparty component's endpoints with their health.
func (a *API) listEndpoints(w http.ResponseWriter, r *http.Request) error {
	c, err := a.componentAccess(r, model.RoleViewer)
	if err != nil {
		return err
	}
	if c.Kind != model.KindThirdParty {
		return invalidField("component", "%s is a %s component; only thirdparty components have endpoints", c.Alias, c.Kind)
	}
	instances, err := a.instancesOf(r.Context(), c)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]any{
		"static": nonNil(c.Endpoints), "registered": nonNil(c.RegisteredEndpoints), "items": nonNil(instances),
	})
	return nil
}

// registerEndpoints replaces the endpoints a thirdparty service registered
// for itself. It authenticates with the component's endpoint key, not a
// team token, so that the service holds no power over anything else.
func (a *API) registerEndpoints(w http.ResponseWriter, r *http.Request) {
	if err := a.doRegisterEndpoints(w, r); err != nil {
		writeError(w, r, err)
	}
}

func (a *API) doRegisterEndpoints(w http.ResponseWriter, r *http.Request) error {
	key := r.Header.Get("X-Endpoint-Key")
	if bearer, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer "); ok && key == "" {
		key = bearer
	}
	if key == "" {
		return errorf(http.StatusUnauthorized, "unauthorized", "send the component's endpoint key in X-Endpoint-Key (or Authorization: Bearer KEY); it is shown as endpoint_key on the component")
	}
	team, app, alias := r.PathValue("team"), r.PathValue("app"), r.PathValue("component")
	c, err := a.store.GetComponent(r.Context(), team, app, alias)
	// An unknown component and a wrong key answer alike, so the key
	// endpoint tells nothing about what exists.
	if err != nil || c.Kind != model.KindThirdParty || c.EndpointKey == "" ||
		subtle.ConstantTimeCompare([]byte(key), []byte(c.EndpointKey)) != 1 {
		return errorf(http.StatusUnauthorized, "unauthorized", "the endpoint key does not match this component (or the component does not exist)")
	}
	var in struct {
		Endpoints []string `json:"endpoints"`
	}
	if err := decode(w, r, &in); err != nil {
		return err
	}
	if len(in.Endpoints) > 100 {
		return invalidField("endpoints", "at most 100 endpoints (got %d)", len(in.Endpoints))
	}
	for i, ep := range in.Endpoints {
		if err := model.ValidateEndpoint(fmt.Sprintf("endpoints[%d]", i), ep); err != nil {
			return err
		}
	}
	if err := a.checkEndpoints(r.Context(), "endpoints", in.Endpoints); err != nil {
		return err
	}
	for attempt := 0; ; attempt++ {
		c.RegisteredEndpoints = in.Endpoints
		err = a.store.UpdateComponent(r.Context(), c)
		if !errors.Is(err, model.ErrStale) || attempt >= 10 {
			break
		}
		if c, err = a.store.GetComponent(r.Context(), team, app, alias); err != nil {
			return err
		}
	}
	if err != nil {
		return err
	}
	if a.cfg.ThirdParty != nil {
		a.cfg.ThirdParty.Apply(r.Context(), c)
	}
	writeJSON(w, http.StatusOK, map[string]any{"registered": nonNil(c.RegisteredEndpoints)})
	return nil
}

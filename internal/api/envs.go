package api

import (
	"net/http"

	"github.com/berth-platform/berth/internal/model"
	"github.com/berth-platform/berth/internal/worker"
)

func (a *API) listEnvs(w http.ResponseWriter, r *http.Request) error {
	c, err := a.componentAccess(r, model.RoleViewer)
	if err != nil {
		return err
	}
	if r.URL.Query().Get("effective") == "" || r.URL.Query().Get("effective") == "0" {
		writeJSON(w, http.StatusOK, items(redactEnvs(c.Envs)))
		return nil
	}
	// What the next start of the container will see: its own variables
	// over its dependencies' connection info, references expanded.
	injected, err := worker.ConnectionEnv(r.Context(), a.store, a.cfg.Addresses, c)
	if err != nil {
		return err
	}
	vars := worker.EffectiveEnv(c, injected)
	for i := range vars {
		if vars[i].Secret {
			vars[i].Value = secretMask
		}
	}
	out := map[string]any{"items": vars}
	if c.RestartPending != "" {
		out["restart_pending"] = c.RestartPending
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

func redactEnv(e model.Env) model.Env { return redactEnvs([]model.Env{e})[0] }

// createEnv sets a variable; an existing one of the same name is replaced,
// which is what "set" means to users of every platform.
func (a *API) createEnv(w http.ResponseWriter, r *http.Request) error {
	var in model.Env
	if err := decode(w, r, &in); err != nil {
		return err
	}
	if in.Scope == "" {
		in.Scope = model.ScopeInner
	}
	status := http.StatusCreated
	_, err := a.changeComponent(r, func(c *model.Component) error {
		for i, e := range c.Envs {
			if e.Name == in.Name {
				keepSecrets([]model.Env{in}, c.Envs)
				c.Envs[i] = in
				status = http.StatusOK
				return nil
			}
		}
		c.Envs = append(c.Envs, in)
		return nil
	})
	if err != nil {
		return err
	}
	writeJSON(w, status, redactEnv(in))
	return nil
}

func envIndex(r *http.Request, c *model.Component) (int, error) {
	name := r.PathValue("name")
	for i, e := range c.Envs {
		if e.Name == name {
			return i, nil
		}
	}
	return 0, notFound("variable %q not found on component %s", name, c.Alias)
}

func (a *API) updateEnv(w http.ResponseWriter, r *http.Request) error {
	var in struct {
		Value  *string         `json:"value"`
		Scope  *model.EnvScope `json:"scope"`
		Secret *bool           `json:"secret"`
	}
	if err := decode(w, r, &in); err != nil {
		return err
	}
	var out model.Env
	_, err := a.changeComponent(r, func(c *model.Component) error {
		i, err := envIndex(r, c)
		if err != nil {
			return err
		}
		e := &c.Envs[i]
		if in.Value != nil && !(*in.Value == secretMask && e.Secret) {
			e.Value = *in.Value
		}
		if in.Scope != nil {
			e.Scope = *in.Scope
		}
		if in.Secret != nil {
			e.Secret = *in.Secret
		}
		out = *e
		return nil
	})
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, redactEnv(out))
	return nil
}

func (a *API) deleteEnv(w http.ResponseWriter, r *http.Request) error {
	_, err := a.changeComponent(r, func(c *model.Component) error {
		i, err := envIndex(r, c)
		if err != nil {
			return err
		}
		c.Envs = append(c.Envs[:i], c.Envs[i+1:]...)
		return nil
	})
	if err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

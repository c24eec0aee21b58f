package api

import (
	"net/http"
	"strconv"

	"github.com/berth-platform/berth/internal/model"
)

func (a *API) listPorts(w http.ResponseWriter, r *http.Request) error {
	c, err := a.componentAccess(r, model.RoleViewer)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, items(c.Ports))
	return nil
}

func (a *API) createPort(w http.ResponseWriter, r *http.Request) error {
	var in model.Port
	if err := decode(w, r, &in); err != nil {
		return err
	}
	c, err := a.changeComponent(r, func(c *model.Component) error {
		for _, p := range c.Ports {
			if p.Port == in.Port {
				return conflict("port %d exists already on %s; change it with PATCH", in.Port, c.Alias)
			}
		}
		// Defaults (protocol, a distinct env prefix) come from the component.
		c.Ports = append(c.Ports, in)
		return nil
	})
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusCreated, c.Ports[len(c.Ports)-1])
	return nil
}

// portIndex finds the port of the path in c.
func portIndex(r *http.Request, c *model.Component) (int, error) {
	n, err := strconv.Atoi(r.PathValue("port"))
	if err != nil {
		return 0, badRequest("port must be a number (got %q)", r.PathValue("port"))
	}
	for i, p := range c.Ports {
		if p.Port == n {
			return i, nil
		}
	}
	return 0, notFound("port %d not found on component %s", n, c.Alias)
}

func (a *API) updatePort(w http.ResponseWriter, r *http.Request) error {
	var in struct {
		Protocol *model.Protocol `json:"protocol"`
		Alias    *string         `json:"alias"`
		Inner    *bool           `json:"inner"`
		Outer    *bool           `json:"outer"`
	}
	if err := decode(w, r, &in); err != nil {
		return err
	}
	var out model.Port
	_, err := a.changeComponent(r, func(c *model.Component) error {
		i, err := portIndex(r, c)
		if err != nil {
			return err
		}
		p := &c.Ports[i]
		if in.Protocol != nil {
			p.Protocol = *in.Protocol
		}
		if in.Alias != nil {
			p.Alias = *in.Alias
		}
		if in.Inner != nil {
			p.Inner = *in.Inner
		}
		if in.Outer != nil {
			p.Outer = *in.Outer
		}
		out = *p
		return nil
	})
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

func (a *API) deletePort(w http.ResponseWriter, r *http.Request) error {
	_, err := a.changeComponent(r, func(c *model.Component) error {
		i, err := portIndex(r, c)
		if err != nil {
			return err
		}
		c.Ports = append(c.Ports[:i], c.Ports[i+1:]...)
		return nil
	})
	if err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

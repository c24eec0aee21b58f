package api

import (
	"net/http"

	"github.com/berth-platform/berth/internal/model"
)

func (a *API) listVolumes(w http.ResponseWriter, r *http.Request) error {
	c, err := a.componentAccess(r, model.RoleViewer)
	if err != nil {
		return err
	}
	out := []volumeIO{}
	for _, v := range c.Volumes {
		out = append(out, volumeView(v))
	}
	writeJSON(w, http.StatusOK, items(out))
	return nil
}

func (a *API) createVolume(w http.ResponseWriter, r *http.Request) error {
	var in volumeIO
	if err := decode(w, r, &in); err != nil {
		return err
	}
	vol, err := in.toModel("volume")
	if err != nil {
		return err
	}
	_, err = a.changeComponent(r, func(c *model.Component) error {
		vol.Normalize(len(c.Volumes))
		for _, v := range c.Volumes {
			if v.Path == vol.Path || v.Name == vol.Name {
				return conflict("component %s has a volume named %q at %s already", c.Alias, v.Name, v.Path)
			}
		}
		c.Volumes = append(c.Volumes, vol)
		return nil
	})
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusCreated, volumeView(vol))
	return nil
}

func (a *API) deleteVolume(w http.ResponseWriter, r *http.Request) error {
	name := r.PathValue("name")
	_, err := a.changeComponent(r, func(c *model.Component) error {
		for i, v := range c.Volumes {
			if v.Name == name {
				c.Volumes = append(c.Volumes[:i], c.Volumes[i+1:]...)
				return nil
			}
		}
		return notFound("volume %q not found on component %s", name, c.Alias)
	})
	if err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

package api

import (
	"errors"
	"net/http"
	"time"

	"github.com/berth-platform/berth/internal/model"
)

func (a *API) listCertificates(w http.ResponseWriter, r *http.Request) error {
	team, err := a.teamAccess(r, model.RoleViewer)
	if err != nil {
		return err
	}
	certs, err := a.store.ListCertificates(r.Context(), team.Name)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, items(certs))
	return nil
}

func (a *API) createCertificate(w http.ResponseWriter, r *http.Request) error {
	team, err := a.teamAccess(r, model.RoleDeveloper)
	if err != nil {
		return err
	}
	var in struct {
		Name        string `json:"name"`
		Certificate string `json:"certificate"`
		Key         string `json:"key"`
	}
	if err := decode(w, r, &in); err != nil {
		return err
	}
	if err := model.ValidateName("name", in.Name); err != nil {
		return err
	}
	now := time.Now().UTC()
	cert := &model.Certificate{ID: model.NewID("cert"), Team: team.Name, Name: in.Name, CertPEM: in.Certificate, KeyPEM: in.Key, CreatedAt: now}
	if err := cert.CheckCertificate(now); err != nil {
		return err
	}
	// A certificate for another team's domain would be served for it.
	if err := a.claimDomains(r.Context(), "certificate", team.Name, cert.Domains); err != nil {
		return err
	}
	if err := a.store.CreateCertificate(r.Context(), cert); err != nil {
		if errors.Is(err, model.ErrConflict) {
			return conflict("certificate %q exists already in team %q", in.Name, team.Name)
		}
		return err
	}
	writeJSON(w, http.StatusCreated, cert)
	return nil
}

func (a *API) certificateInPath(r *http.Request, min model.Role) (*model.Certificate, error) {
	team, err := a.teamAccess(r, min)
	if err != nil {
		return nil, err
	}
	name := r.PathValue("name")
	cert, err := a.store.GetCertificate(r.Context(), team.Name, name)
	if errors.Is(err, model.ErrNotFound) {
		return nil, notFound("certificate %q not found in team %q", name, team.Name)
	}
	return cert, err
}

func (a *API) getCertificate(w http.ResponseWriter, r *http.Request) error {
	cert, err := a.certificateInPath(r, model.RoleViewer)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, cert)
	return nil
}

func (a *API) deleteCertificate(w http.ResponseWriter, r *http.Request) error {
	cert, err := a.certificateInPath(r, model.RoleDeveloper)
	if err != nil {
		return err
	}
	rules, err := a.store.ListHTTPRules(r.Context(), cert.Team)
	if err != nil {
		return err
	}
	for _, rule := range rules {
		if rule.Certificate == cert.Name {
			return conflict("certificate %q is used by the HTTP rule for %s%s; change that rule first", cert.Name, rule.Domain, rule.Path)
		}
	}
	if err := a.store.DeleteCertificate(r.Context(), cert.Team, cert.Name); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

package worker

import (
	"context"
	"crypto/x509"
	"encoding/pem"
	"log/slog"
	"strings"
	"time"

	"github.com/berth-platform/berth/internal/gateway/acme"
	"github.com/berth-platform/berth/internal/model"
	"github.com/berth-platform/berth/internal/store"
)

// ACMECertificates keeps a certificate for every HTTP rule with auto_tls:
// it tells the issuer which domains need one (or a renewal) and stores
// what it issues as the team's certificate "acme-<domain>".
type ACMECertificates struct {
	store   store.Store
	issuer  *acme.Issuer
	changed func() // the gateway resyncs
}

// NewACMECertificates returns the bridge between the store and issuer.
func NewACMECertificates(st store.Store, issuer *acme.Issuer, changed func()) *ACMECertificates {
	return &ACMECertificates{store: st, issuer: issuer, changed: changed}
}

// Run obtains and renews until ctx ends; Trigger asks for a pass now.
func (a *ACMECertificates) Run(ctx context.Context) {
	a.issuer.Run(ctx, func() []acme.Managed { return a.list(ctx) }, a.save, time.Hour)
}

// Trigger runs a pass at once (after a rule changed).
func (a *ACMECertificates) Trigger() { a.issuer.Trigger() }

// ACMECertificateName is the name an issued certificate has in its team.
func ACMECertificateName(domain string) string { return "acme-" + domain }

func (a *ACMECertificates) list(ctx context.Context) []acme.Managed {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	rules, err := a.store.ListAllHTTPRules(ctx)
	if err != nil {
		slog.Warn("acme: list rules", "err", err)
		return nil
	}
	certs, err := a.store.ListAllCertificates(ctx)
	if err != nil {
		slog.Warn("acme: list certificates", "err", err)
		return nil
	}
	have := map[string]model.Certificate{}
	for _, c := range certs {
		have[c.Team+"/"+c.Name] = c
	}
	list, err := a.store.ListDomainClaims(ctx)
	if err != nil {
		slog.Warn("acme: list domain claims", "err", err)
		return nil
	}
	claims := map[string]string{}
	for _, c := range list {
		claims[c.Domain] = c.Team
	}
	var out []acme.Managed
	seen := map[string]bool{}
	for _, r := range rules {
		key := r.Team + "/" + r.Domain
		if !r.AutoTLS || seen[key] {
			continue
		}
		// No certificate for a team that does not own the domain (it was
		// given to another team since the rule was made).
		if model.DomainConflict(claims, r.Team, r.Domain) != "" {
			continue
		}
		seen[key] = true
		m := acme.Managed{Key: key, Domains: []string{r.Domain}}
		if c, ok := have[r.Team+"/"+ACMECertificateName(r.Domain)]; ok {
			m.NotBefore, m.NotAfter = notBefore(c.CertPEM), c.NotAfter
		}
		out = append(out, m)
	}
	return out
}

func notBefore(certPEM string) time.Time {
	block, _ := pem.Decode([]byte(certPEM))
	if block == nil {
		return time.Time{}
	}
	c, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		return time.Time{}
	}
	return c.NotBefore
}

func (a *ACMECertificates) save(m acme.Managed, certPEM, keyPEM []byte, notAfter time.Time) error {
	team, domain, _ := strings.Cut(m.Key, "/")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	err := a.store.ReplaceCertificate(ctx, &model.Certificate{
		ID: model.NewID("cert"), Team: team, Name: ACMECertificateName(domain), CertPEM: string(certPEM), KeyPEM: string(keyPEM),
		Domains: m.Domains, NotAfter: notAfter, Source: model.CertACME, CreatedAt: time.Now().UTC(),
	})
	if err != nil {
		return err
	}
	slog.Info("acme certificate stored", "team", team, "domain", domain, "not_after", notAfter)
	if a.changed != nil {
		a.changed()
	}
	return nil
}

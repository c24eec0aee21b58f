package model

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"strings"
	"time"
)

// CheckCertificate parses a PEM certificate chain and key and fills the
// certificate's domains and expiry. It says which part is wrong: an
// unreadable certificate or key, a key of another certificate, or a
// certificate that is expired or not yet valid.
func (c *Certificate) CheckCertificate(now time.Time) error {
	block, _ := pem.Decode([]byte(c.CertPEM))
	if block == nil || block.Type != "CERTIFICATE" {
		return invalid("certificate", "is not a PEM certificate (expected a -----BEGIN CERTIFICATE----- block)")
	}
	leaf, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		return invalid("certificate", "cannot be parsed: %v", err)
	}
	if kb, _ := pem.Decode([]byte(c.KeyPEM)); kb == nil || !strings.Contains(kb.Type, "PRIVATE KEY") {
		return invalid("key", "is not a PEM private key (expected a -----BEGIN ... PRIVATE KEY----- block)")
	}
	if _, err := tls.X509KeyPair([]byte(c.CertPEM), []byte(c.KeyPEM)); err != nil {
		if strings.Contains(err.Error(), "does not match") {
			return invalid("key", "does not match the certificate: upload the key the certificate was issued for")
		}
		return invalid("key", "cannot be used with the certificate: %v", err)
	}
	if now.After(leaf.NotAfter) {
		return invalid("certificate", "expired on %s; renew it, or let berth issue one over ACME", leaf.NotAfter.UTC().Format(time.RFC3339))
	}
	if now.Before(leaf.NotBefore) {
		return invalid("certificate", "is not valid before %s; check the clock or the certificate", leaf.NotBefore.UTC().Format(time.RFC3339))
	}
	c.Domains = append([]string{}, leaf.DNSNames...)
	if len(c.Domains) == 0 && leaf.Subject.CommonName != "" {
		c.Domains = []string{leaf.Subject.CommonName}
	}
	c.NotAfter = leaf.NotAfter.UTC()
	return nil
}

// Covers reports whether the certificate names domain, wildcards included.
func (c *Certificate) Covers(domain string) bool {
	for _, d := range c.Domains {
		if d == domain {
			return true
		}
		if rest, ok := strings.CutPrefix(d, "*."); ok {
			if _, parent, found := strings.Cut(domain, "."); found && parent == rest {
				return true
			}
		}
	}
	return false
}

package gateway

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"fmt"
	"math/big"
	"strings"
	"sync/atomic"
	"time"
)

// certStore picks a certificate by SNI. The gateway swaps whole maps, so a
// certificate change needs no restart and never races a handshake.
type certStore struct {
	byName   atomic.Pointer[map[string]*tls.Certificate]
	fallback *tls.Certificate
}

func newCertStore() (*certStore, error) {
	fb, err := selfSigned("berth gateway")
	if err != nil {
		return nil, fmt.Errorf("make the fallback certificate: %w", err)
	}
	s := &certStore{fallback: fb}
	s.byName.Store(&map[string]*tls.Certificate{})
	return s, nil
}

// set replaces every certificate. When two cover the same name, the one
// that expires last wins.
func (s *certStore) set(certs []*tls.Certificate) {
	m := map[string]*tls.Certificate{}
	for _, c := range certs {
		if c.Leaf == nil {
			continue
		}
		for _, name := range c.Leaf.DNSNames {
			name = strings.ToLower(name)
			if old, ok := m[name]; ok && old.Leaf.NotAfter.After(c.Leaf.NotAfter) {
				continue
			}
			m[name] = c
		}
	}
	s.byName.Store(&m)
}

// get answers a TLS handshake. A name no certificate covers still gets one
// (self-signed), so the browser shows a certificate warning instead of a
// connection error, and the page behind it can say what is missing.
func (s *certStore) get(hello *tls.ClientHelloInfo) (*tls.Certificate, error) {
	m := *s.byName.Load()
	name := strings.ToLower(strings.TrimSuffix(hello.ServerName, "."))
	if c, ok := m[name]; ok {
		return c, nil
	}
	if _, parent, ok := strings.Cut(name, "."); ok {
		if c, ok := m["*."+parent]; ok {
			return c, nil
		}
	}
	return s.fallback, nil
}

// has reports whether a real certificate covers name.
func (s *certStore) has(name string) bool {
	c, _ := s.get(&tls.ClientHelloInfo{ServerName: name})
	return c != s.fallback
}

func selfSigned(cn string, dnsNames ...string) (*tls.Certificate, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 62))
	if err != nil {
		return nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: cn},
		DNSNames:     dnsNames,
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().AddDate(10, 0, 0),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, err
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, err
	}
	return &tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}, nil
}

// ParseCertificate turns PEM into a certificate the gateway can serve.
func ParseCertificate(certPEM, keyPEM []byte) (*tls.Certificate, error) {
	c, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return nil, err
	}
	if c.Leaf == nil {
		if c.Leaf, err = x509.ParseCertificate(c.Certificate[0]); err != nil {
			return nil, err
		}
	}
	return &c, nil
}

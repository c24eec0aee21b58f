package acme

import (
	"crypto/x509"
	"encoding/pem"
	"errors"
	"os"
	"testing"

	"github.com/berth-platform/berth/internal/gateway/acme/pebbletest"
)

// startPebble runs Pebble with the harness's own challenge server; route it
// to an issuer with p.ServeChallenges.
func startPebble(t *testing.T) *pebbletest.Pebble {
	t.Helper()
	return pebbletest.Start(t, pebbletest.Options{})
}

// pebbleIssuer is an Issuer for p's directory, trusting p's HTTPS.
func pebbleIssuer(t *testing.T, p *pebbletest.Pebble, storage, email string) *Issuer {
	t.Helper()
	iss, err := New(Config{DirectoryURL: p.DirURL, Email: email, StorageDir: storage, ExtraRootsPEM: p.CAPEM})
	if err != nil {
		t.Fatal(err)
	}
	return iss
}

func freePort(t *testing.T) string { return pebbletest.FreeAddr(t) }

func writeFile(t *testing.T, path string, data []byte) {
	t.Helper()
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
}

// parseChain splits a PEM bundle into certificates, leaf first.
func parseChain(t *testing.T, chainPEM []byte) []*x509.Certificate {
	t.Helper()
	var certs []*x509.Certificate
	for rest := chainPEM; ; {
		var block *pem.Block
		block, rest = pem.Decode(rest)
		if block == nil {
			break
		}
		c, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			t.Fatal(err)
		}
		certs = append(certs, c)
	}
	if len(certs) == 0 {
		t.Fatalf("no certificates in %q", chainPEM)
	}
	return certs
}

var errTest = errors.New("test failure")

package hub

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/distribution/distribution/v3/registry/auth/token"
	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
)

// signingAlgorithm is the only JWS algorithm the hub signs with and the
// registry accepts.
const signingAlgorithm = jose.ES256

// tokenIssuer signs registry tokens with the hub's persistent key.
type tokenIssuer struct {
	signer   jose.Signer
	public   *ecdsa.PublicKey
	certPath string
	issuer   string
	service  string
	ttl      time.Duration
}

// loadTokenIssuer reads auth/signing.key and auth/signing.crt, creating
// whichever is missing. The key is what must survive restarts (tokens
// already handed out stay valid); the certificate is derived from it and
// rewritten if it no longer matches.
func loadTokenIssuer(dir, issuer, service string, ttl time.Duration) (*tokenIssuer, error) {
	keyPath := filepath.Join(dir, "signing.key")
	certPath := filepath.Join(dir, "signing.crt")

	key, err := loadKey(keyPath)
	if errors.Is(err, os.ErrNotExist) {
		key, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			return nil, fmt.Errorf("generating key: %w", err)
		}
		der, err := x509.MarshalPKCS8PrivateKey(key)
		if err != nil {
			return nil, fmt.Errorf("encoding key: %w", err)
		}
		if err := writeFileAtomic(keyPath, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})); err != nil {
			return nil, err
		}
	} else if err != nil {
		return nil, err
	}

	if !certMatches(certPath, key) {
		der, err := selfSign(key)
		if err != nil {
			return nil, err
		}
		if err := writeFileAtomic(certPath, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})); err != nil {
			return nil, err
		}
	}

	// The registry's token controller trusts the JWK thumbprint of every
	// root certificate's key as a "kid", so a kid header is all a token
	// needs; no x5c chain.
	kid := token.GetJWKThumbprint(key.Public())
	if kid == "" {
		return nil, errors.New("cannot compute key id")
	}
	signer, err := jose.NewSigner(
		jose.SigningKey{Algorithm: signingAlgorithm, Key: key},
		(&jose.SignerOptions{}).WithType("JWT").WithHeader("kid", kid),
	)
	if err != nil {
		return nil, fmt.Errorf("creating signer: %w", err)
	}
	return &tokenIssuer{signer: signer, public: &key.PublicKey, certPath: certPath, issuer: issuer, service: service, ttl: ttl}, nil
}

func loadKey(path string) (*ecdsa.PrivateKey, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading key: %w", err)
	}
	block, _ := pem.Decode(data)
	if block == nil {
		return nil, fmt.Errorf("%s: no PEM block", path)
	}
	parsed, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	key, ok := parsed.(*ecdsa.PrivateKey)
	if !ok || key.Curve != elliptic.P256() {
		return nil, fmt.Errorf("%s: not an ECDSA P-256 key", path)
	}
	return key, nil
}

// certMatches reports whether path holds a certificate for key.
func certMatches(path string, key *ecdsa.PrivateKey) bool {
	data, err := os.ReadFile(path)
	if err != nil {
		return false
	}
	block, _ := pem.Decode(data)
	if block == nil || block.Type != "CERTIFICATE" {
		return false
	}
	cert, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		return false
	}
	pub, ok := cert.PublicKey.(*ecdsa.PublicKey)
	return ok && pub.Equal(key.Public())
}

func selfSign(key *ecdsa.PrivateKey) ([]byte, error) {
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return nil, fmt.Errorf("serial: %w", err)
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: "berth hub token signer"},
		NotBefore:    now.Add(-time.Hour),
		// Validity is never checked on the kid path; a long one just keeps
		// tools that inspect the file quiet.
		NotAfter:              now.AddDate(30, 0, 0),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		return nil, fmt.Errorf("self-signing: %w", err)
	}
	return der, nil
}

// issue signs a token for subject carrying the granted access.
func (t *tokenIssuer) issue(subject string, granted []access, now time.Time) (string, error) {
	var jti [16]byte
	if _, err := rand.Read(jti[:]); err != nil {
		return "", fmt.Errorf("token id: %w", err)
	}
	claims := token.ClaimSet{
		Issuer:     t.issuer,
		Subject:    subject,
		Audience:   token.AudienceList{t.service},
		Expiration: now.Add(t.ttl).Unix(),
		// A little slack for clocks of other berth nodes; the verifier adds
		// its own leeway too.
		NotBefore: now.Add(-10 * time.Second).Unix(),
		IssuedAt:  now.Unix(),
		JWTID:     hex.EncodeToString(jti[:]),
		Access:    make([]*token.ResourceActions, 0, len(granted)),
	}
	for _, a := range granted {
		claims.Access = append(claims.Access, &token.ResourceActions{
			Type: a.Type, Class: a.Class, Name: a.Name, Actions: a.Actions,
		})
	}
	raw, err := jwt.Signed(t.signer).Claims(claims).Serialize()
	if err != nil {
		return "", fmt.Errorf("signing: %w", err)
	}
	return raw, nil
}

// verify checks a bearer token the issuer signed (signature, issuer,
// audience, validity window) and returns its claims. The hub serves a few
// routes itself (the catalog, referrers) and checks their tokens here.
func (t *tokenIssuer) verify(raw string, now time.Time) (*token.ClaimSet, error) {
	parsed, err := jwt.ParseSigned(raw, []jose.SignatureAlgorithm{signingAlgorithm})
	if err != nil {
		return nil, fmt.Errorf("parsing token: %w", err)
	}
	var claims token.ClaimSet
	if err := parsed.Claims(t.public, &claims); err != nil {
		return nil, fmt.Errorf("token signature: %w", err)
	}
	const leeway = 60 // seconds, as distribution's verifier allows
	switch {
	case claims.Issuer != t.issuer:
		return nil, errors.New("token from another issuer")
	case !slices.Contains(claims.Audience, t.service):
		return nil, errors.New("token for another service")
	case now.Unix() > claims.Expiration+leeway:
		return nil, errors.New("token expired")
	case now.Unix() < claims.NotBefore-leeway:
		return nil, errors.New("token not valid yet")
	}
	return &claims, nil
}

// loadOrCreateSecret returns the secret stored in path, creating a random
// one on first use.
func loadOrCreateSecret(path string) (string, error) {
	data, err := os.ReadFile(path)
	if err == nil {
		if s := strings.TrimSpace(string(data)); s != "" {
			return s, nil
		}
	} else if !errors.Is(err, os.ErrNotExist) {
		return "", fmt.Errorf("reading secret: %w", err)
	}
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("generating secret: %w", err)
	}
	s := base64.RawURLEncoding.EncodeToString(b[:])
	if err := writeFileAtomic(path, []byte(s+"\n")); err != nil {
		return "", err
	}
	return s, nil
}

// writeFileAtomic writes a private file so that a crash leaves either the
// old content or the new, never a torn key.
func writeFileAtomic(path string, data []byte) error {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	tmp := f.Name()
	defer os.Remove(tmp) // no-op after a successful rename
	if err := f.Chmod(0o600); err != nil {
		f.Close()
		return fmt.Errorf("writing %s: %w", path, err)
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return fmt.Errorf("writing %s: %w", path, err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("writing %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	return nil
}

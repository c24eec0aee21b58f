// Package acme obtains and renews TLS certificates for the gateway from an
// ACME certificate authority (Let's Encrypt by default) over HTTP-01.
//
// The gateway keeps its own plain-HTTP listener, so challenges are answered
// from memory by ChallengeHandler / ServeChallenge rather than by a port the
// ACME client opens itself. Certificates are handed back as PEM; where they
// are kept is the caller's business (see Run).
package acme

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	legoacme "github.com/go-acme/lego/v4/acme"
	"github.com/go-acme/lego/v4/acme/api"
	"github.com/go-acme/lego/v4/certcrypto"
	"github.com/go-acme/lego/v4/certificate"
	"github.com/go-acme/lego/v4/challenge/resolver"
	"github.com/go-acme/lego/v4/registration"
)

// Well-known ACME directories.
const (
	LetsEncryptProduction = "https://acme-v02.api.letsencrypt.org/directory"
	LetsEncryptStaging    = "https://acme-staging-v02.api.letsencrypt.org/directory"
)

const userAgent = "berth-gateway-acme"

// Config configures an Issuer.
type Config struct {
	// DirectoryURL is the ACME server's directory; LetsEncryptProduction
	// when empty.
	DirectoryURL string
	// Email is the account's contact address (expiry notices); may be empty.
	Email string
	// StorageDir holds the ACME account key and registration so a restart
	// reuses the account instead of registering a new one each time (CAs
	// rate-limit new accounts). Required.
	StorageDir string
	// ExtraRootsPEM are CA certificates trusted for the ACME server's own
	// HTTPS on top of the system roots: a test CA such as Pebble serves its
	// directory with a certificate no system trusts.
	ExtraRootsPEM []byte
	// Logger receives the issuer's logs; slog.Default() when nil.
	Logger *slog.Logger
}

// Classes of failure, for errors.Is on what Obtain returns.
var (
	// ErrDirectory: the ACME directory could not be fetched (server down,
	// DNS, TLS trust, not an ACME server).
	ErrDirectory = errors.New("ACME directory unreachable")
	// ErrAccount: registering or updating the ACME account failed.
	ErrAccount = errors.New("ACME account registration failed")
	// ErrChallenge: the CA could not validate the HTTP-01 challenge, usually
	// because the name does not point at this gateway or port 80 is not
	// reaching it.
	ErrChallenge = errors.New("ACME HTTP-01 challenge failed")
	// ErrRateLimited: the CA refused the request for exceeding a rate limit.
	ErrRateLimited = errors.New("ACME server rate limited the request")
	// ErrIssuance: the order could not be created or finalized for another
	// reason (policy rejected the name, CSR refused, timeout waiting...).
	ErrIssuance = errors.New("ACME certificate issuance failed")
)

// Error is what Obtain returns on failure. Kind is one of the Err* classes
// above (or a context error); Detail is the ACME server's problem detail
// when it gave one, so logs and the UI can show why the CA said no.
type Error struct {
	Kind    error
	Domains []string
	Detail  string
	// RetryAfter is the CA's Retry-After on a rate-limit refusal, 0 if none.
	RetryAfter time.Duration
	Err        error
}

func (e *Error) Error() string {
	msg := fmt.Sprintf("acme: %v", e.Kind)
	if len(e.Domains) > 0 {
		msg = fmt.Sprintf("acme: certificate for %s: %v", strings.Join(e.Domains, ", "), e.Kind)
	}
	if e.Detail != "" {
		msg += ": " + e.Detail
	}
	return msg
}

// Unwrap exposes both the class and lego's original error, so errors.Is
// works on the class and errors.As can still reach lego's problem details.
func (e *Error) Unwrap() []error { return []error{e.Kind, e.Err} }

// Issuer obtains certificates from one ACME directory with one account.
// It is safe for concurrent use.
type Issuer struct {
	dirURL    string
	email     string
	store     string // per-directory account folder under StorageDir
	log       *slog.Logger
	transport *http.Transport

	challenges *challengeStore
	wake       chan struct{}

	mu  sync.Mutex // guards key and reg; held across registration
	key crypto.Signer
	reg *accountRecord
}

// accountRecord is registration.json. Email is kept to notice a changed
// contact address; Directory to catch a folder copied between CAs.
type accountRecord struct {
	Directory    string                 `json:"directory"`
	Email        string                 `json:"email"`
	Registration *registration.Resource `json:"registration"`
}

var legoLogOnce sync.Once

// New prepares an Issuer and loads (or creates) its account key. It does not
// contact the ACME server, so the gateway can start while the CA is
// unreachable; the account is registered on first use.
func New(cfg Config) (*Issuer, error) {
	legoLogOnce.Do(routeLegoLogs)

	dir := cfg.DirectoryURL
	if dir == "" {
		dir = LetsEncryptProduction
	}
	u, err := url.Parse(dir)
	if err != nil || u.Scheme != "https" || u.Host == "" {
		return nil, fmt.Errorf("acme: directory URL %q must be an https URL", dir)
	}
	if cfg.StorageDir == "" {
		return nil, errors.New("acme: a storage dir for the account is required")
	}

	pool, err := x509.SystemCertPool()
	if err != nil || pool == nil {
		pool = x509.NewCertPool()
	}
	if len(cfg.ExtraRootsPEM) > 0 && !pool.AppendCertsFromPEM(cfg.ExtraRootsPEM) {
		return nil, errors.New("acme: ExtraRootsPEM holds no usable certificate")
	}

	logger := cfg.Logger
	if logger == nil {
		logger = slog.Default()
	}
	i := &Issuer{
		dirURL: dir,
		email:  cfg.Email,
		store:  filepath.Join(cfg.StorageDir, accountFolder(u, dir)),
		log:    logger.With("component", "acme", "directory", dir),
		transport: &http.Transport{
			Proxy:                 http.ProxyFromEnvironment,
			DialContext:           (&net.Dialer{Timeout: 30 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
			TLSHandshakeTimeout:   15 * time.Second,
			ResponseHeaderTimeout: 30 * time.Second,
			ExpectContinueTimeout: time.Second,
			TLSClientConfig:       &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12},
		},
		challenges: newChallengeStore(),
		wake:       make(chan struct{}, 1),
	}
	if err := i.loadAccount(); err != nil {
		return nil, err
	}
	return i, nil
}

// accountFolder names the account folder after the directory: an account
// exists on one CA only, so switching from staging to production (or to a
// test CA) must not reuse the key's registration.
func accountFolder(u *url.URL, dir string) string {
	sum := sha256.Sum256([]byte(dir))
	host := strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '.' || r == '-' {
			return r
		}
		return '_'
	}, u.Host)
	return host + "-" + hex.EncodeToString(sum[:4])
}

func (i *Issuer) keyPath() string { return filepath.Join(i.store, "account.key") }
func (i *Issuer) regPath() string { return filepath.Join(i.store, "registration.json") }

func (i *Issuer) loadAccount() error {
	if err := os.MkdirAll(i.store, 0o700); err != nil {
		return fmt.Errorf("acme: account storage: %w", err)
	}
	raw, err := os.ReadFile(i.keyPath())
	switch {
	case errors.Is(err, os.ErrNotExist):
		key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			return fmt.Errorf("acme: generate account key: %w", err)
		}
		der, err := x509.MarshalPKCS8PrivateKey(key)
		if err != nil {
			return fmt.Errorf("acme: encode account key: %w", err)
		}
		if err := writeFileAtomic(i.keyPath(), pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})); err != nil {
			return fmt.Errorf("acme: save account key: %w", err)
		}
		i.key = key
	case err != nil:
		return fmt.Errorf("acme: read account key: %w", err)
	default:
		// A corrupt key is an error rather than a reason to make a new one:
		// silently switching accounts would lose the old one's history.
		block, _ := pem.Decode(raw)
		if block == nil {
			return fmt.Errorf("acme: account key %s is not PEM", i.keyPath())
		}
		k, err := x509.ParsePKCS8PrivateKey(block.Bytes)
		if err != nil {
			return fmt.Errorf("acme: parse account key %s: %w", i.keyPath(), err)
		}
		signer, ok := k.(crypto.Signer)
		if !ok {
			return fmt.Errorf("acme: account key %s is not a signing key", i.keyPath())
		}
		i.key = signer
	}

	raw, err = os.ReadFile(i.regPath())
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("acme: read account registration: %w", err)
	}
	var rec accountRecord
	if err := json.Unmarshal(raw, &rec); err != nil {
		// Registering again with the same key returns the same account, so a
		// damaged record costs one request, not the account.
		i.log.Warn("acme: ignoring unreadable account registration", "path", i.regPath(), "err", err)
		return nil
	}
	if rec.Registration != nil && rec.Registration.URI != "" && rec.Directory == i.dirURL {
		i.reg = &rec
	}
	return nil
}

func writeFileAtomic(path string, data []byte) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), ".tmp-"+filepath.Base(path))
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if err := tmp.Chmod(0o600); err != nil {
		tmp.Close()
		return err
	}
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}

// AccountURI is the ACME account URL, or "" before the first registration.
func (i *Issuer) AccountURI() string {
	i.mu.Lock()
	defer i.mu.Unlock()
	if i.reg == nil {
		return ""
	}
	return i.reg.Registration.URI
}

// EnsureAccount registers the account if it is not registered yet (or
// updates its contact if Email changed) and returns its URL. Obtain calls it
// itself; calling it at start-up just surfaces account problems early.
func (i *Issuer) EnsureAccount(ctx context.Context) (string, error) {
	_, uri, err := i.session(ctx)
	return uri, err
}

// session fetches the directory and makes sure the account exists, giving a
// lego core that signs with the account's key ID. The lock is held across
// both so that two first calls do not both register, and so no core is made
// with a key ID that is about to change (lego's core takes the key ID only
// when made, or from a registration made through it).
func (i *Issuer) session(ctx context.Context) (*api.Core, string, error) {
	i.mu.Lock()
	defer i.mu.Unlock()

	kid := ""
	if i.reg != nil {
		kid = i.reg.Registration.URI
	}
	core, err := i.newCore(ctx, kid)
	if err != nil {
		return nil, "", err
	}
	uri, err := i.ensureAccount(core)
	if err != nil {
		var e *Error
		if ctx.Err() != nil && errors.As(err, &e) {
			e.Kind = ctx.Err()
		}
		return nil, "", err
	}
	return core, uri, nil
}

// ensureAccount runs with i.mu held.
func (i *Issuer) ensureAccount(core *api.Core) (string, error) {
	user := &acmeUser{email: i.email, key: i.key}
	if i.reg != nil {
		if i.reg.Email == i.email {
			return i.reg.Registration.URI, nil
		}
		user.reg = i.reg.Registration
		res, err := registration.NewRegistrar(core, user).UpdateRegistration(registration.RegisterOptions{TermsOfServiceAgreed: true})
		if err != nil {
			return "", &Error{Kind: ErrAccount, Detail: "updating contact: " + problemSummary(err), Err: err}
		}
		i.log.Info("acme: account contact updated", "account", res.URI, "email", i.email)
		return i.saveRegistration(res)
	}

	// Registering an existing key returns its existing account, which is
	// what makes a lost registration.json harmless.
	res, err := registration.NewRegistrar(core, user).Register(registration.RegisterOptions{TermsOfServiceAgreed: true})
	if err != nil {
		return "", &Error{Kind: ErrAccount, Detail: problemSummary(err), Err: err}
	}
	// lego has set the core's key ID from the reply's Location header.
	if res.URI == "" {
		return "", &Error{Kind: ErrAccount, Detail: "server returned no account URL"}
	}
	i.log.Info("acme: account ready", "account", res.URI, "email", i.email)
	return i.saveRegistration(res)
}

func (i *Issuer) saveRegistration(res *registration.Resource) (string, error) {
	rec := &accountRecord{Directory: i.dirURL, Email: i.email, Registration: res}
	data, err := json.MarshalIndent(rec, "", "  ")
	if err != nil {
		return "", fmt.Errorf("acme: encode account registration: %w", err)
	}
	if err := writeFileAtomic(i.regPath(), data); err != nil {
		// Still usable this run; next start re-registers the same key.
		i.log.Warn("acme: could not save account registration", "path", i.regPath(), "err", err)
	}
	i.reg = rec
	return res.URI, nil
}

// acmeUser adapts the account to lego's registration.User.
type acmeUser struct {
	email string
	key   crypto.PrivateKey
	reg   *registration.Resource
}

func (u *acmeUser) GetEmail() string                        { return u.email }
func (u *acmeUser) GetRegistration() *registration.Resource { return u.reg }
func (u *acmeUser) GetPrivateKey() crypto.PrivateKey        { return u.key }

// newCore fetches the directory with an HTTP client bound to ctx. lego has
// no context support, so cancelling ctx aborts its requests instead; a fresh
// core per call is what lets each call carry its own ctx.
func (i *Issuer) newCore(ctx context.Context, kid string) (*api.Core, error) {
	if err := ctx.Err(); err != nil {
		return nil, &Error{Kind: err, Err: err}
	}
	client := &http.Client{
		Timeout:   2 * time.Minute,
		Transport: &ctxTransport{ctx: ctx, base: i.transport},
	}
	core, err := api.New(client, userAgent, i.dirURL, kid, i.key)
	if err != nil {
		if ctx.Err() != nil {
			return nil, &Error{Kind: ctx.Err(), Detail: err.Error(), Err: err}
		}
		return nil, &Error{Kind: ErrDirectory, Detail: fmt.Sprintf("%s: %v", i.dirURL, unwrapURLError(err)), Err: err}
	}
	return core, nil
}

// unwrapURLError drops lego's and net/http's repetition of the URL, which
// the caller already names.
func unwrapURLError(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}

// Obtain gets a new certificate covering domains (the first becomes the
// subject CN) and returns the PEM chain (leaf first, then intermediates),
// the PEM private key and the leaf's NotAfter. Every domain must resolve to
// this gateway and reach its plain-HTTP listener on port 80, which must
// route /.well-known/acme-challenge/ to this Issuer.
//
// Errors are *Error; errors.Is tells the class (ErrDirectory, ErrAccount,
// ErrChallenge, ErrRateLimited, ErrIssuance, or ctx's error).
func (i *Issuer) Obtain(ctx context.Context, domains []string) (certPEM, keyPEM []byte, notAfter time.Time, err error) {
	names, err := normalizeDomains(domains)
	if err != nil {
		return nil, nil, time.Time{}, err
	}
	start := time.Now()
	certPEM, keyPEM, notAfter, err = i.obtain(ctx, names)
	if err != nil && i.forgetStaleAccount(err) {
		// The CA lost the account (a restarted test CA, a deactivated
		// account): register the key again and retry once.
		i.log.Warn("acme: the CA does not know the stored account; registering again", "err", err)
		certPEM, keyPEM, notAfter, err = i.obtain(ctx, names)
	}
	if err != nil {
		return nil, nil, time.Time{}, err
	}
	i.log.Info("acme: certificate obtained", "domains", names, "not_after", notAfter, "duration", time.Since(start).Round(time.Millisecond))
	return certPEM, keyPEM, notAfter, nil
}

// forgetStaleAccount drops the stored registration if err says the CA does
// not know it, and reports whether it did.
func (i *Issuer) forgetStaleAccount(err error) bool {
	var pd *legoacme.ProblemDetails
	if !errors.As(err, &pd) || pd.Type != accountDoesNotExist {
		return false
	}
	i.mu.Lock()
	defer i.mu.Unlock()
	if i.reg == nil {
		return false
	}
	i.reg = nil
	if err := os.Remove(i.regPath()); err != nil && !errors.Is(err, os.ErrNotExist) {
		i.log.Warn("acme: could not remove stale account registration", "path", i.regPath(), "err", err)
	}
	return true
}

const accountDoesNotExist = "urn:ietf:params:acme:error:accountDoesNotExist"

func (i *Issuer) obtain(ctx context.Context, names []string) (certPEM, keyPEM []byte, notAfter time.Time, err error) {
	core, _, err := i.session(ctx)
	if err != nil {
		return nil, nil, time.Time{}, withDomains(err, names)
	}

	solvers := resolver.NewSolversManager(core)
	if err := solvers.SetHTTP01Provider(i.challenges); err != nil {
		return nil, nil, time.Time{}, fmt.Errorf("acme: set HTTP-01 provider: %w", err)
	}
	certifier := certificate.NewCertifier(core, challengeStage{resolver.NewProber(solvers)}, certificate.CertifierOptions{
		KeyType: certcrypto.EC256,
		// How long to wait for the CA to finish an order once validated.
		Timeout: time.Minute,
	})

	type result struct {
		res *certificate.Resource
		err error
	}
	done := make(chan result, 1)
	go func() {
		res, err := certifier.Obtain(certificate.ObtainRequest{Domains: names, Bundle: true})
		done <- result{res, err}
	}()
	var r result
	select {
	case r = <-done:
	case <-ctx.Done():
		// lego's sleeps between polls ignore ctx; its next request fails
		// (the transport is bound to ctx) and the goroutine ends then.
		return nil, nil, time.Time{}, &Error{Kind: ctx.Err(), Domains: names, Err: ctx.Err()}
	}
	if r.err != nil {
		return nil, nil, time.Time{}, classify(ctx, names, r.err)
	}

	notAfter, err = leafNotAfter(r.res.Certificate)
	if err != nil {
		return nil, nil, time.Time{}, &Error{Kind: ErrIssuance, Domains: names, Detail: "unusable certificate from CA: " + err.Error(), Err: err}
	}
	return r.res.Certificate, r.res.PrivateKey, notAfter, nil
}

func withDomains(err error, names []string) error {
	var e *Error
	if errors.As(err, &e) && e.Domains == nil {
		e.Domains = names
	}
	return err
}

// normalizeDomains lowercases and dedupes, and refuses what HTTP-01 can
// never validate so the CA's failed-validation limit is not spent on it.
func normalizeDomains(domains []string) ([]string, error) {
	var names []string
	for _, d := range domains {
		d = strings.TrimSuffix(strings.ToLower(strings.TrimSpace(d)), ".")
		switch {
		case d == "":
			continue
		case strings.Contains(d, "*"):
			return nil, fmt.Errorf("acme: %q: wildcard names need DNS-01, which berth does not do", d)
		case strings.ContainsAny(d, "/: "):
			return nil, fmt.Errorf("acme: %q is not a domain name", d)
		}
		if !slices.Contains(names, d) {
			names = append(names, d)
		}
	}
	if len(names) == 0 {
		return nil, errors.New("acme: no domains to obtain a certificate for")
	}
	return names, nil
}

// challengeStage marks errors raised while solving authorizations, so that
// classify can tell a failed validation from a failed order or finalization
// without parsing lego's messages.
type challengeStage struct{ inner *resolver.Prober }

type challengeError struct{ err error }

func (e *challengeError) Error() string { return e.err.Error() }
func (e *challengeError) Unwrap() error { return e.err }

func (s challengeStage) Solve(authz []legoacme.Authorization) error {
	if err := s.inner.Solve(authz); err != nil {
		return &challengeError{err}
	}
	return nil
}

func classify(ctx context.Context, names []string, err error) error {
	e := &Error{Domains: names, Detail: problemSummary(err), Err: err}
	var rl *legoacme.RateLimitedError
	var ce *challengeError
	var pd *legoacme.ProblemDetails
	switch {
	case ctx.Err() != nil:
		e.Kind = ctx.Err()
	case errors.As(err, &rl):
		e.Kind = ErrRateLimited
		e.RetryAfter, _ = api.ParseRetryAfter(rl.RetryAfter)
	case errors.As(err, &pd) && pd.Type == legoacme.RateLimitedErr:
		e.Kind = ErrRateLimited
	case errors.As(err, &pd) && pd.Type == accountDoesNotExist:
		e.Kind = ErrAccount
	case errors.As(err, &ce):
		e.Kind = ErrChallenge
	default:
		e.Kind = ErrIssuance
	}
	return e
}

// problemSummary renders the ACME problem documents inside err as
// "type: detail" (several for multi-domain orders), falling back to err's
// text. lego's own messages repeat method, URL and status, which say nothing
// to an operator.
func problemSummary(err error) string {
	var parts []string
	var walk func(error)
	walk = func(err error) {
		if err == nil {
			return
		}
		if pd, ok := err.(*legoacme.ProblemDetails); ok {
			s := strings.TrimPrefix(pd.Type, "urn:ietf:params:acme:error:")
			if pd.Detail != "" {
				s += ": " + pd.Detail
			}
			for _, sub := range pd.SubProblems {
				s += fmt.Sprintf("; %s: %s: %s", sub.Identifier.Value, strings.TrimPrefix(sub.Type, "urn:ietf:params:acme:error:"), sub.Detail)
			}
			if !slices.Contains(parts, s) {
				parts = append(parts, s)
			}
			return
		}
		switch u := err.(type) {
		case interface{ Unwrap() []error }:
			for _, e := range u.Unwrap() {
				walk(e)
			}
		case interface{ Unwrap() error }:
			walk(u.Unwrap())
		}
	}
	walk(err)
	slices.Sort(parts) // lego collects per-domain errors in a map
	if len(parts) == 0 {
		return strings.Join(strings.Fields(err.Error()), " ")
	}
	return strings.Join(parts, " | ")
}

func leafNotAfter(chainPEM []byte) (time.Time, error) {
	block, _ := pem.Decode(chainPEM)
	if block == nil || block.Type != "CERTIFICATE" {
		return time.Time{}, errors.New("no PEM certificate")
	}
	leaf, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		return time.Time{}, fmt.Errorf("parse leaf certificate: %w", err)
	}
	return leaf.NotAfter, nil
}

package acme

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	legoacme "github.com/go-acme/lego/v4/acme"
)

func TestObtainFromPebble(t *testing.T) {
	p := startPebble(t)
	iss := pebbleIssuer(t, p, t.TempDir(), "ops@berth.test")
	p.ServeChallenges(iss.ChallengeHandler())

	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	start := time.Now()
	certPEM, keyPEM, notAfter, err := iss.Obtain(ctx, []string{"App.Berth.Test"})
	if err != nil {
		t.Fatalf("Obtain: %v", err)
	}
	t.Logf("obtained in %v", time.Since(start).Round(time.Millisecond))

	if _, err := tls.X509KeyPair(certPEM, keyPEM); err != nil {
		t.Fatalf("certificate and key do not pair: %v", err)
	}
	chain := parseChain(t, certPEM)
	leaf := chain[0]
	if !slices.Contains(leaf.DNSNames, "app.berth.test") {
		t.Errorf("leaf names %v, want app.berth.test", leaf.DNSNames)
	}
	if !notAfter.Equal(leaf.NotAfter) {
		t.Errorf("notAfter %v, leaf says %v", notAfter, leaf.NotAfter)
	}
	if lifetime := leaf.NotAfter.Sub(leaf.NotBefore); lifetime < 80*24*time.Hour {
		t.Errorf("lifetime %v, Pebble's default is 90 days", lifetime)
	}

	roots := x509.NewCertPool()
	roots.AddCert(p.Root(t))
	inter := x509.NewCertPool()
	for _, c := range chain[1:] {
		inter.AddCert(c)
	}
	if _, err := leaf.Verify(x509.VerifyOptions{DNSName: "app.berth.test", Roots: roots, Intermediates: inter}); err != nil {
		t.Fatalf("certificate does not chain to Pebble's root: %v", err)
	}
	if n := iss.challenges.pending(); n != 0 {
		t.Errorf("%d challenges left pending after success", n)
	}
}

func TestObtainChallengeFailureNamesProblem(t *testing.T) {
	p := startPebble(t)
	iss := pebbleIssuer(t, p, t.TempDir(), "")
	// The name "resolves" here, but nothing answers the challenge.
	p.ServeChallenges(http.NotFoundHandler())

	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	_, _, _, err := iss.Obtain(ctx, []string{"fail.berth.test"})
	if err == nil {
		t.Fatal("Obtain succeeded with a challenge server that 404s")
	}
	t.Logf("error: %v", err)
	if !errors.Is(err, ErrChallenge) {
		t.Errorf("error is not ErrChallenge: %v", err)
	}
	var pd *legoacme.ProblemDetails
	if !errors.As(err, &pd) {
		t.Errorf("lego's problem document not reachable through the error")
	}
	for _, want := range []string{"fail.berth.test", "challenge failed", "unauthorized", "404"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %q", err, want)
		}
	}
	if strings.Contains(err.Error(), "\n") {
		t.Errorf("error spans lines: %q", err)
	}
	if n := iss.challenges.pending(); n != 0 {
		t.Errorf("%d challenges left pending after failure", n)
	}
}

func TestAccountReusedAcrossIssuers(t *testing.T) {
	p := startPebble(t)
	storage := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()

	a := pebbleIssuer(t, p, storage, "first@berth.test")
	if a.AccountURI() != "" {
		t.Fatalf("fresh storage already has account %q", a.AccountURI())
	}
	uri, err := a.EnsureAccount(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if uri == "" || a.AccountURI() != uri {
		t.Fatalf("EnsureAccount = %q, AccountURI = %q", uri, a.AccountURI())
	}

	// A restart: the account comes from disk before any request is made,
	// and the CA accepts it for an order.
	b := pebbleIssuer(t, p, storage, "first@berth.test")
	if b.AccountURI() != uri {
		t.Fatalf("second issuer's account %q, want %q", b.AccountURI(), uri)
	}
	p.ServeChallenges(b.ChallengeHandler())
	if _, _, _, err := b.Obtain(ctx, []string{"reuse.berth.test"}); err != nil {
		t.Fatalf("Obtain with the reused account: %v", err)
	}

	key, err := os.Stat(filepath.Join(b.store, "account.key"))
	if err != nil {
		t.Fatal(err)
	}
	if key.Mode().Perm() != 0o600 {
		t.Errorf("account key mode %v, want 0600", key.Mode().Perm())
	}

	// A changed contact updates the same account rather than making one.
	c := pebbleIssuer(t, p, storage, "second@berth.test")
	if got, err := c.EnsureAccount(ctx); err != nil || got != uri {
		t.Fatalf("after email change: account %q, %v; want %q", got, err, uri)
	}
	var rec accountRecord
	raw, _ := os.ReadFile(filepath.Join(c.store, "registration.json"))
	if err := json.Unmarshal(raw, &rec); err != nil {
		t.Fatal(err)
	}
	if rec.Email != "second@berth.test" || !slices.Contains(rec.Registration.Body.Contact, "mailto:second@berth.test") {
		t.Errorf("stored record not updated: email %q, contact %v", rec.Email, rec.Registration.Body.Contact)
	}

	// Losing registration.json but keeping the key finds the same account.
	if err := os.Remove(filepath.Join(c.store, "registration.json")); err != nil {
		t.Fatal(err)
	}
	d := pebbleIssuer(t, p, storage, "second@berth.test")
	if got, err := d.EnsureAccount(ctx); err != nil || got != uri {
		t.Fatalf("after losing registration.json: account %q, %v; want %q", got, err, uri)
	}

	// A registration the CA does not know (a restarted Pebble, a
	// deactivated account) is dropped and the key registered again.
	rec.Registration.URI = strings.TrimSuffix(uri, "/") + "-gone"
	raw, _ = json.Marshal(rec)
	writeFile(t, filepath.Join(c.store, "registration.json"), raw)
	stale := pebbleIssuer(t, p, storage, "second@berth.test")
	if stale.AccountURI() != rec.Registration.URI {
		t.Fatalf("tampered registration not loaded: %q", stale.AccountURI())
	}
	p.ServeChallenges(stale.ChallengeHandler())
	if _, _, _, err := stale.Obtain(ctx, []string{"stale.berth.test"}); err != nil {
		t.Fatalf("Obtain with a stale registration: %v", err)
	}
	if stale.AccountURI() != uri {
		t.Errorf("after recovery: account %q, want %q", stale.AccountURI(), uri)
	}

	// Other storage is another account.
	e := pebbleIssuer(t, p, t.TempDir(), "first@berth.test")
	if other, err := e.EnsureAccount(ctx); err != nil || other == uri {
		t.Fatalf("separate storage: account %q, %v; want a new one", other, err)
	}
}

func TestObtainDirectoryUnreachable(t *testing.T) {
	addr := freePort(t) // closed again: connection refused
	iss, err := New(Config{DirectoryURL: "https://" + addr + "/dir", StorageDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_, _, _, err = iss.Obtain(ctx, []string{"app.berth.test"})
	if !errors.Is(err, ErrDirectory) {
		t.Fatalf("err = %v, want ErrDirectory", err)
	}
	if !strings.Contains(err.Error(), "directory unreachable") || !strings.Contains(err.Error(), "connection refused") {
		t.Errorf("error does not say what failed: %v", err)
	}
}

func TestObtainDirectoryUntrusted(t *testing.T) {
	srv := httptest.NewUnstartedServer(http.NotFoundHandler())
	srv.Config.ErrorLog = log.New(io.Discard, "", 0) // the expected handshake failure
	srv.StartTLS()
	defer srv.Close()
	iss, err := New(Config{DirectoryURL: srv.URL + "/dir", StorageDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	_, err = iss.EnsureAccount(context.Background())
	if !errors.Is(err, ErrDirectory) {
		t.Fatalf("err = %v, want ErrDirectory", err)
	}
	if !strings.Contains(err.Error(), "certificate") {
		t.Errorf("error does not mention the TLS trust failure: %v", err)
	}
}

func TestObtainHonoursContext(t *testing.T) {
	// A server that accepts and never answers: only ctx can end the call.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	var mu sync.Mutex
	var conns []net.Conn
	defer func() {
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			c.Close()
		}
	}()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
		}
	}()
	iss, err := New(Config{DirectoryURL: "https://" + ln.Addr().String() + "/dir", StorageDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, _, _, err = iss.Obtain(ctx, []string{"app.berth.test"})
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v, want context.DeadlineExceeded", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("Obtain took %v after its context ended", d)
	}
}

func TestObtainRejectsNamesHTTP01CannotValidate(t *testing.T) {
	iss, err := New(Config{DirectoryURL: "https://127.0.0.1:1/dir", StorageDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	for _, domains := range [][]string{nil, {""}, {"*.berth.test"}, {"app.berth.test:443"}} {
		if _, _, _, err := iss.Obtain(context.Background(), domains); err == nil || errors.Is(err, ErrDirectory) {
			t.Errorf("Obtain(%q) = %v, want a refusal before contacting the CA", domains, err)
		}
	}
}

func TestNewValidatesConfig(t *testing.T) {
	if _, err := New(Config{DirectoryURL: "http://insecure.example/dir", StorageDir: t.TempDir()}); err == nil {
		t.Error("accepted a plain-HTTP directory")
	}
	if _, err := New(Config{}); err == nil {
		t.Error("accepted a config without storage")
	}
	if _, err := New(Config{StorageDir: t.TempDir(), ExtraRootsPEM: []byte("junk")}); err == nil {
		t.Error("accepted ExtraRootsPEM without a certificate")
	}
	iss, err := New(Config{StorageDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	if iss.dirURL != LetsEncryptProduction {
		t.Errorf("default directory %q", iss.dirURL)
	}

	// A damaged key is an error, not a silent new account.
	storage := t.TempDir()
	first, err := New(Config{DirectoryURL: "https://ca.berth.test/dir", StorageDir: storage})
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, first.keyPath(), []byte("not a key"))
	if _, err := New(Config{DirectoryURL: "https://ca.berth.test/dir", StorageDir: storage}); err == nil {
		t.Error("accepted a corrupt account key")
	}
}

func TestClassify(t *testing.T) {
	ctx := context.Background()
	names := []string{"app.berth.test"}

	rl := &legoacme.RateLimitedError{
		ProblemDetails: &legoacme.ProblemDetails{Type: legoacme.RateLimitedErr, Detail: "too many certificates already issued", HTTPStatus: 429},
		RetryAfter:     "3600",
	}
	err := classify(ctx, names, rl)
	var e *Error
	if !errors.Is(err, ErrRateLimited) || !errors.As(err, &e) || e.RetryAfter != time.Hour {
		t.Errorf("rate limit: %v (retry after %v)", err, e.RetryAfter)
	}
	if !strings.Contains(err.Error(), "too many certificates already issued") {
		t.Errorf("rate limit detail lost: %v", err)
	}

	ch := &challengeError{errors.Join(&legoacme.ProblemDetails{Type: "urn:ietf:params:acme:error:connection", Detail: "Connection refused"})}
	if err := classify(ctx, names, ch); !errors.Is(err, ErrChallenge) || !strings.Contains(err.Error(), "connection: Connection refused") {
		t.Errorf("challenge: %v", err)
	}

	rej := &legoacme.ProblemDetails{Type: "urn:ietf:params:acme:error:rejectedIdentifier", Detail: "policy forbids"}
	if err := classify(ctx, names, rej); !errors.Is(err, ErrIssuance) || !strings.Contains(err.Error(), "rejectedIdentifier: policy forbids") {
		t.Errorf("order: %v", err)
	}

	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if err := classify(cctx, names, errTest); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled: %v", err)
	}
}

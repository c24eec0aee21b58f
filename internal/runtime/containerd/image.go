package containerd

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"sort"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/containerd/containerd/v2/client"
	"github.com/containerd/containerd/v2/core/images"
	"github.com/containerd/containerd/v2/core/remotes/docker"
	remoteerrors "github.com/containerd/containerd/v2/core/remotes/errors"
	"github.com/containerd/errdefs"
	"github.com/distribution/reference"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	rt "github.com/berth-platform/berth/internal/runtime"
)

// Pull errors. A *PullError wraps exactly one of them (or none when the
// cause is not recognised), so callers test with errors.Is and map them to
// instance reasons without parsing messages.
var (
	// ErrImageNotFound: the registry answered but has no such repository
	// or tag (404 / MANIFEST_UNKNOWN / NAME_UNKNOWN).
	ErrImageNotFound = errors.New("image not found")
	// ErrUnauthorized: the registry refused the request (401/403), wrong
	// or missing credentials.
	ErrUnauthorized = errors.New("registry denied access")
	// ErrRegistryUnreachable: no HTTP answer at all (connection refused,
	// DNS failure, timeout, a plain-HTTP registry spoken to over HTTPS).
	ErrRegistryUnreachable = errors.New("registry unreachable")
	// ErrUntrustedCertificate: TLS verification of the registry failed.
	ErrUntrustedCertificate = errors.New("registry certificate not trusted")
)

// PullError is a failed pull with a cause category, the underlying error
// and advice for the person reading it.
type PullError struct {
	Ref    string
	Kind   error // one of the Err* sentinels above, nil if unclassified
	Advice string
	Err    error
}

func (e *PullError) Error() string {
	kind := "pull failed"
	if e.Kind != nil {
		kind = e.Kind.Error()
	}
	msg := fmt.Sprintf("pull %s: %s: %v", e.Ref, kind, e.Err)
	if e.Advice != "" {
		msg += "; " + e.Advice
	}
	return msg
}

// Unwrap exposes both the category and the cause to errors.Is/As.
func (e *PullError) Unwrap() []error {
	if e.Kind == nil {
		return []error{e.Err}
	}
	return []error{e.Kind, e.Err}
}

// Reason is a Kubernetes-style reason for instance status.
func (e *PullError) Reason() string {
	switch e.Kind {
	case ErrImageNotFound:
		return "ImageNotFound"
	case ErrUnauthorized:
		return "RegistryUnauthorized"
	case ErrRegistryUnreachable:
		return "RegistryUnavailable"
	case ErrUntrustedCertificate:
		return "RegistryCertificateUntrusted"
	}
	return "ErrImagePull"
}

// NormalizeRef turns a short reference into the canonical name containerd
// stores images under ("busybox" -> "docker.io/library/busybox:latest").
func NormalizeRef(ref string) (string, error) {
	named, err := reference.ParseDockerRef(ref)
	if err != nil {
		return "", fmt.Errorf("invalid image reference %q: %w", ref, err)
	}
	return named.String(), nil
}

// HasImage reports whether ref is pulled and unpacked for the engine's
// snapshotter.
func (e *Engine) HasImage(ctx context.Context, ref string) (bool, error) {
	name, err := NormalizeRef(ref)
	if err != nil {
		return false, err
	}
	ctx = e.ctx(ctx)
	img, err := e.client.GetImage(ctx, name)
	if errdefs.IsNotFound(err) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	return img.IsUnpacked(ctx, e.snapshotter)
}

// Pull fetches ref and unpacks it for the engine's snapshotter. progress
// (may be nil) gets a line per active download about once a second, like
// "pulling sha256:0123456789ab 12.3MiB/40.0MiB", and a final "pulled" line.
// Failures are *PullError.
func (e *Engine) Pull(ctx context.Context, ref string, auth *rt.RegistryAuth, progress func(string)) error {
	name, err := NormalizeRef(ref)
	if err != nil {
		return &PullError{Ref: ref, Kind: ErrImageNotFound, Err: err, Advice: "fix the image name"}
	}
	if progress == nil {
		progress = func(string) {}
	}
	ctx = e.ctx(ctx)
	host := reference.Domain(mustParse(name))

	tracker := &pullTracker{sizes: map[string]int64{}}
	pctx, stopProgress := context.WithCancel(ctx)
	progressDone := make(chan struct{})
	go func() {
		defer close(progressDone)
		e.reportProgress(pctx, tracker, progress)
	}()
	start := time.Now()
	img, err := e.client.Pull(ctx, name,
		client.WithResolver(docker.NewResolver(docker.ResolverOptions{Hosts: registryHosts(auth)})),
		client.WithPullUnpack,
		client.WithPullSnapshotter(e.snapshotter),
		client.WithImageHandler(images.HandlerFunc(func(_ context.Context, desc ocispec.Descriptor) ([]ocispec.Descriptor, error) {
			tracker.add(desc)
			return nil, nil
		})),
	)
	stopProgress()
	<-progressDone
	if err != nil {
		if ctx.Err() != nil {
			return fmt.Errorf("pull %s: %w", name, ctx.Err())
		}
		return classifyPullError(name, host, auth, err)
	}
	size, _ := img.Size(ctx)
	progress(fmt.Sprintf("pulled %s (%s, %s) in %s", name, shortDigest(img.Target().Digest.String()), mib(size), time.Since(start).Round(100*time.Millisecond)))
	return nil
}

func mustParse(name string) reference.Named {
	n, _ := reference.ParseNormalizedNamed(name)
	return n
}

// registryHosts builds the resolver's view of a registry from berth's
// RegistryAuth: basic or token credentials, plain HTTP when asked, and
// skip-verify for self-signed certificates. Loopback registries (where a
// developer's or a test's registry usually listens) try HTTPS first and
// fall back to plain HTTP when the server answers in HTTP, so both kinds
// work without configuration and a TLS registry there still gets its
// certificate checked.
func registryHosts(auth *rt.RegistryAuth) docker.RegistryHosts {
	return func(host string) ([]docker.RegistryHost, error) {
		tlsConfig := &tls.Config{MinVersion: tls.VersionTLS12}
		if auth != nil && auth.SkipVerify {
			tlsConfig.InsecureSkipVerify = true
		}
		transport := &http.Transport{
			Proxy:                 http.ProxyFromEnvironment,
			DialContext:           (&net.Dialer{Timeout: 15 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
			TLSClientConfig:       tlsConfig,
			TLSHandshakeTimeout:   15 * time.Second,
			ResponseHeaderTimeout: 60 * time.Second,
			IdleConnTimeout:       30 * time.Second,
			MaxIdleConns:          10,
			ExpectContinueTimeout: 5 * time.Second,
		}
		scheme := "https"
		var roundTripper http.RoundTripper = transport
		switch {
		case auth != nil && auth.PlainHTTP:
			scheme = "http"
		case docker.IsLocalhost(host):
			roundTripper = docker.NewHTTPFallback(transport)
		}
		httpClient := &http.Client{Transport: roundTripper}
		authorizer := docker.NewDockerAuthorizer(
			docker.WithAuthClient(httpClient),
			docker.WithAuthCreds(func(string) (string, string, error) {
				if auth == nil {
					return "", "", nil
				}
				return auth.Username, auth.Password, nil
			}),
		)
		apiHost := host
		if host == "docker.io" {
			apiHost = "registry-1.docker.io"
		}
		return []docker.RegistryHost{{
			Client:       httpClient,
			Authorizer:   authorizer,
			Host:         apiHost,
			Scheme:       scheme,
			Path:         "/v2",
			Capabilities: docker.HostCapabilityPull | docker.HostCapabilityResolve,
		}}, nil
	}
}

// classifyPullError maps the resolver's and fetcher's errors onto the
// sentinels. Order matters: a TLS failure is also a "failed to do request"
// transport error, and an auth failure may end in a 404-looking retry.
func classifyPullError(ref, host string, auth *rt.RegistryAuth, err error) error {
	pe := &PullError{Ref: ref, Err: err}
	var (
		unknownCA   x509.UnknownAuthorityError
		hostnameErr x509.HostnameError
		invalidCert x509.CertificateInvalidError
		verifyErr   *tls.CertificateVerificationError
		recordErr   tls.RecordHeaderError
		status      remoteerrors.ErrUnexpectedStatus
		dnsErr      *net.DNSError
		opErr       *net.OpError
		netErr      net.Error
	)
	msg := err.Error()
	switch {
	case errors.As(err, &unknownCA) || errors.As(err, &hostnameErr) || errors.As(err, &invalidCert) ||
		errors.As(err, &verifyErr) || strings.Contains(msg, "x509: "):
		pe.Kind = ErrUntrustedCertificate
		pe.Advice = fmt.Sprintf("the TLS certificate of %s could not be verified; install its CA on this machine, or enable \"skip TLS verification\" for this registry if you trust it", host)
	case errors.As(err, &recordErr):
		pe.Kind = ErrRegistryUnreachable
		pe.Advice = fmt.Sprintf("%s does not speak HTTPS; enable plain HTTP for this registry", host)
	case errors.Is(err, docker.ErrInvalidAuthorization) ||
		(errors.As(err, &status) && (status.StatusCode == http.StatusUnauthorized || status.StatusCode == http.StatusForbidden)):
		pe.Kind = ErrUnauthorized
		if auth == nil || auth.Username == "" {
			pe.Advice = fmt.Sprintf("%s requires credentials; add a username and password (or token) for it", host)
		} else {
			pe.Advice = fmt.Sprintf("check the username and password for %s and that the account may pull this repository", host)
		}
	case errdefs.IsNotFound(err) || (errors.As(err, &status) && status.StatusCode == http.StatusNotFound):
		pe.Kind = ErrImageNotFound
		pe.Advice = "check the image name and tag, and that it was pushed to this registry"
	case errors.As(err, &dnsErr) || errors.As(err, &opErr) || errors.Is(err, syscall.ECONNREFUSED) ||
		errors.Is(err, syscall.EHOSTUNREACH) || errors.Is(err, syscall.ENETUNREACH) ||
		(errors.As(err, &netErr) && netErr.Timeout()) || errors.Is(err, io.ErrUnexpectedEOF) ||
		strings.Contains(msg, "connection refused") || strings.Contains(msg, "no such host"):
		pe.Kind = ErrRegistryUnreachable
		pe.Advice = fmt.Sprintf("check that the registry %s is running and reachable from this machine (address, port, firewall, proxy)", host)
	case errors.As(err, &status) && status.StatusCode >= 500:
		pe.Kind = ErrRegistryUnreachable
		pe.Advice = fmt.Sprintf("the registry %s has a server error; try again later", host)
	}
	return pe
}

// pullTracker remembers the blobs of the image being pulled so progress
// shows only this pull's downloads.
type pullTracker struct {
	mu    sync.Mutex
	sizes map[string]int64 // digest -> size
}

func (t *pullTracker) add(desc ocispec.Descriptor) {
	t.mu.Lock()
	t.sizes[desc.Digest.String()] = desc.Size
	t.mu.Unlock()
}

func (t *pullTracker) has(dgst string) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	_, ok := t.sizes[dgst]
	return ok
}

// reportProgress polls containerd's active ingests once a second. Polling
// the content store (as ctr does) rather than wrapping the fetcher keeps
// the report honest: it shows what containerd has written.
func (e *Engine) reportProgress(ctx context.Context, t *pullTracker, progress func(string)) {
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		statuses, err := e.client.ContentStore().ListStatuses(ctx)
		if err != nil {
			continue
		}
		sort.Slice(statuses, func(i, j int) bool { return statuses[i].Ref < statuses[j].Ref })
		for _, s := range statuses {
			dgst := s.Expected.String()
			if dgst == "" {
				if i := strings.LastIndex(s.Ref, "sha256:"); i >= 0 {
					dgst = s.Ref[i:]
				}
			}
			if !t.has(dgst) || s.Total <= 0 {
				continue
			}
			progress(fmt.Sprintf("pulling %s %s/%s", shortDigest(dgst), mib(s.Offset), mib(s.Total)))
		}
	}
}

// shortDigest is "sha256:" and the first 12 hex digits, as docker shows.
func shortDigest(d string) string {
	if i := strings.IndexByte(d, ':'); i >= 0 && len(d) > i+13 {
		return d[:i+13] + "…"
	}
	return d
}

func mib(n int64) string { return fmt.Sprintf("%.1fMiB", float64(n)/(1<<20)) }

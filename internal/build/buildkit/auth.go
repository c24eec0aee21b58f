package buildkit

import (
	"context"
	"crypto/tls"
	"errors"
	"net/http"
	"time"

	authutil "github.com/containerd/containerd/remotes/docker/auth"
	remoteserrors "github.com/containerd/containerd/remotes/errors"
	"github.com/moby/buildkit/session/auth"
	"google.golang.org/grpc"
)

// Auth is a username and password (or token as password) for a registry.
type Auth struct {
	Username string
	Password string
}

// authProvider answers buildkitd's credential questions during a build
// from berth's registry entries. BuildKit's own provider reads
// ~/.docker/config.json and writes token seeds next to it; berth keeps
// credentials in its store and must not touch the host user's Docker
// configuration. Client-side token signing (GetTokenAuthority) is left
// unimplemented, so buildkitd asks Credentials for the host and fetches
// tokens itself (FetchToken serves clients that ask this side to).
//
// The answer depends on the host alone, not on the repository: one
// credential serves a build's FROM pulls and its push alike. A caller
// building for a tenant must therefore hand in a credential scoped to what
// that tenant may pull and push (berth's worker gives the hub's per-team
// build credential), never one that reaches everything.
type authProvider struct {
	auth.UnimplementedAuthServer
	creds    map[string]Auth
	insecure map[string]bool // hosts whose token servers may have unverified certificates
}

func newAuthProvider(creds map[string]Auth, insecure map[string]bool) *authProvider {
	norm := make(map[string]Auth, len(creds))
	for h, a := range creds {
		norm[normalizeHost(h)] = a
	}
	return &authProvider{creds: norm, insecure: insecure}
}

// normalizeHost maps Docker Hub's names to the host buildkitd asks about.
func normalizeHost(h string) string {
	switch h {
	case "docker.io", "index.docker.io", "https://index.docker.io/v1/":
		return "registry-1.docker.io"
	}
	return h
}

func (p *authProvider) Register(server *grpc.Server) { auth.RegisterAuthServer(server, p) }

func (p *authProvider) Credentials(_ context.Context, req *auth.CredentialsRequest) (*auth.CredentialsResponse, error) {
	a := p.creds[normalizeHost(req.Host)]
	return &auth.CredentialsResponse{Username: a.Username, Secret: a.Password}, nil
}

// FetchToken gets a bearer token for registries that use token auth
// (Docker Hub, Harbor, GitLab): OAuth POST first, then the GET endpoint
// for registries that do not support it, as BuildKit's own provider does.
func (p *authProvider) FetchToken(ctx context.Context, req *auth.FetchTokenRequest) (*auth.FetchTokenResponse, error) {
	a := p.creds[normalizeHost(req.Host)]
	to := authutil.TokenOptions{Realm: req.Realm, Service: req.Service, Scopes: req.Scopes, Username: a.Username, Secret: a.Password}
	hc := &http.Client{Timeout: time.Minute}
	if p.insecure[req.Host] {
		tr := http.DefaultTransport.(*http.Transport).Clone()
		tr.TLSClientConfig = &tls.Config{InsecureSkipVerify: true} //nolint:gosec // the user marked this registry as insecure
		hc.Transport = tr
	}
	if a.Password != "" {
		resp, err := authutil.FetchTokenWithOAuth(ctx, hc, nil, "berth", to)
		if err == nil {
			return tokenResponse(resp.AccessToken, resp.IssuedAt, resp.ExpiresIn), nil
		}
		var st remoteserrors.ErrUnexpectedStatus
		if !errors.As(err, &st) || (st.StatusCode != 404 && st.StatusCode != 401 && st.StatusCode != 405) {
			return nil, err
		}
	}
	resp, err := authutil.FetchToken(ctx, hc, nil, to)
	if err != nil {
		return nil, err
	}
	return tokenResponse(resp.Token, resp.IssuedAt, resp.ExpiresIn), nil
}

func tokenResponse(token string, issued time.Time, expires int) *auth.FetchTokenResponse {
	if expires == 0 {
		expires = 60
	}
	r := &auth.FetchTokenResponse{Token: token, ExpiresIn: int64(expires)}
	if !issued.IsZero() {
		r.IssuedAt = issued.Unix()
	}
	return r
}

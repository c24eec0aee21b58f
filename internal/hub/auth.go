package hub

import (
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"net/http"
	"slices"
	"strings"
	"time"
)

// InternalUsername is the username of the internal credential.
const InternalUsername = "berth-internal"

// Authenticator checks basic credentials presented to the token endpoint.
// username is whatever the client sent (may be empty); password is a berth
// API token. Rejected credentials must yield an error wrapping
// ErrUnauthorized (answered 401); any other error is answered 500 and
// logged, so an unreachable store is not mistaken for a bad password.
type Authenticator func(ctx context.Context, username, password string) (Principal, error)

// Principal is what an authenticated caller may do.
type Principal struct {
	// Subject names the caller in tokens and logs.
	Subject string
	// Admin grants every repository and the whole catalog.
	Admin bool
	// Teams are the namespaces the caller owns: repository "<team>/..."
	// belongs to team <team>.
	Teams []string
	// Pull, Push and Delete are the actions granted on those repositories.
	Pull, Push, Delete bool
	// PushRepos, when set, limits Push and Delete to these repositories
	// (a build's credential pushes its component's repository only).
	PushRepos []string
}

// owns reports whether repo is in one of p's namespaces.
func (p Principal) owns(repo string) bool {
	if p.Admin {
		return true
	}
	team, rest, ok := strings.Cut(repo, "/")
	if !ok || rest == "" {
		// Top-level repositories belong to no team.
		return false
	}
	return slices.Contains(p.Teams, team)
}

// mayPull: p's own repositories and, for everyone, the platform's base
// images.
func (p Principal) mayPull(repo string) bool {
	return p.owns(repo) || IsBaseImage(repo)
}

// mayWrite: p's own repositories, outside the platform's namespace unless p
// is an admin, and only PushRepos when those are set.
func (p Principal) mayWrite(repo string) bool {
	if !p.owns(repo) {
		return false
	}
	if p.Admin {
		return true
	}
	if strings.HasPrefix(repo, PlatformNamespace+"/") {
		return false
	}
	return len(p.PushRepos) == 0 || slices.Contains(p.PushRepos, repo)
}

// actions is the subset of requested p may perform on the resource.
func (p Principal) actions(typ, name string, requested []string) []string {
	switch typ {
	case "registry":
		// Everyone may list; serveCatalog shows a team its own namespace.
		if name == "catalog" && (p.Admin || len(p.Teams) > 0) && slices.Contains(requested, "*") {
			return []string{"*"}
		}
		return nil
	case "repository":
		all := slices.Contains(requested, "*")
		var out []string
		for _, a := range []struct {
			name string
			ok   bool
		}{{"pull", p.Pull && p.mayPull(name)}, {"push", p.Push && p.mayWrite(name)}, {"delete", p.Delete && p.mayWrite(name)}} {
			if a.ok && (all || slices.Contains(requested, a.name)) {
				out = append(out, a.name)
			}
		}
		return out
	default:
		return nil
	}
}

// credential is a username/password pair.
type credential struct {
	Username, Password string
}

// InternalCredentials returns the long-lived credential that may pull, push
// and delete every repository. It is meant for berth's own housekeeping
// (base images, tag listing and deletes, GC), never for a team's workload
// or build: those get TeamPullCredentials and TeamBuildCredentials, so a
// reference to another team's image cannot ride on it. It never leaves the
// host and is stable across restarts (kept in auth/internal.secret under
// Root).
func (h *Hub) InternalCredentials() (username, password string) {
	return h.internal.Username, h.internal.Password
}

func (h *Hub) authenticate(ctx context.Context, username, password string) (Principal, error) {
	// Both compared in constant time; the username check alone decides
	// nothing, so a user whose name happens to be InternalUsername still
	// reaches Auth with their API token.
	userOK := subtle.ConstantTimeCompare([]byte(username), []byte(h.internal.Username)) == 1
	passOK := subtle.ConstantTimeCompare([]byte(password), []byte(h.internal.Password)) == 1
	if userOK && passOK {
		return Principal{Subject: InternalUsername, Admin: true, Pull: true, Push: true, Delete: true}, nil
	}
	if p, ok := h.teamPrincipal(username, password); ok {
		return p, nil
	}
	return h.cfg.Auth(ctx, username, password)
}

// maxTokenForm bounds the token endpoint's POST body; real forms are a few
// hundred bytes.
const maxTokenForm = 64 << 10

// serveToken implements the Docker registry token endpoint:
//
//   - GET  ?service=&scope=...  with HTTP basic auth (docker, BuildKit,
//     go-containerregistry, containerd's fallback);
//   - POST application/x-www-form-urlencoded, OAuth2 style, which containerd
//     and BuildKit try first: grant_type=password with username/password,
//     or grant_type=refresh_token whose refresh_token is taken as the
//     password with an empty username (containerd sends that shape when its
//     configured username is empty).
//
// Requested scopes outside the caller's grants are dropped, not refused, as
// the spec says; the registry then answers 401 insufficient_scope.
func (h *Hub) serveToken(w http.ResponseWriter, r *http.Request) {
	var (
		username, password string
		haveCreds          bool
		scopes             []string
		service            string
		oauth              = r.Method == http.MethodPost
	)
	switch r.Method {
	case http.MethodGet:
		username, password, haveCreds = r.BasicAuth()
		q := r.URL.Query()
		service = q.Get("service")
		for _, s := range q["scope"] {
			scopes = append(scopes, strings.Fields(s)...)
		}
	case http.MethodPost:
		r.Body = http.MaxBytesReader(w, r.Body, maxTokenForm)
		if err := r.ParseForm(); err != nil {
			tokenError(w, http.StatusBadRequest, "invalid_request", "malformed form")
			return
		}
		service = r.PostForm.Get("service")
		scopes = strings.Fields(r.PostForm.Get("scope"))
		switch r.PostForm.Get("grant_type") {
		case "password":
			username, password = r.PostForm.Get("username"), r.PostForm.Get("password")
			haveCreds = password != ""
		case "refresh_token":
			password = r.PostForm.Get("refresh_token")
			haveCreds = password != ""
		default:
			tokenError(w, http.StatusBadRequest, "unsupported_grant_type", "grant_type must be password or refresh_token")
			return
		}
	default:
		w.Header().Set("Allow", "GET, POST")
		tokenError(w, http.StatusMethodNotAllowed, "invalid_request", "method not allowed")
		return
	}
	if service != "" && service != h.cfg.Service {
		tokenError(w, http.StatusBadRequest, "invalid_request", "unknown service")
		return
	}
	if !haveCreds {
		unauthorized(w)
		return
	}

	p, err := h.authenticate(r.Context(), username, password)
	if err != nil {
		if errors.Is(err, ErrUnauthorized) {
			h.log.Debug("token request rejected", "username", username, "remote", r.RemoteAddr)
			unauthorized(w)
			return
		}
		h.log.Error("authenticating token request", "username", username, "err", err)
		tokenError(w, http.StatusInternalServerError, "server_error", "authentication failed")
		return
	}

	granted := catalogAccess(p, grant(p, scopes))
	now := time.Now()
	tok, err := h.tokens.issue(p.Subject, granted, now)
	if err != nil {
		h.log.Error("signing token", "err", err)
		tokenError(w, http.StatusInternalServerError, "server_error", "cannot sign token")
		return
	}
	if denied := deniedScopes(scopes, granted); len(denied) > 0 {
		// Worth an audit line: a team reaching for another team's images
		// shows up here, while the registry's own 401 is logged at debug.
		h.log.Info("token scope reduced", "subject", p.Subject, "denied", denied, "remote", r.RemoteAddr)
	} else {
		h.log.Debug("token issued", "subject", p.Subject, "scopes", scopes)
	}

	resp := map[string]any{
		"access_token": tok,
		"expires_in":   int(h.cfg.TokenTTL / time.Second),
		"issued_at":    now.UTC().Format(time.RFC3339),
	}
	if oauth {
		resp["scope"] = strings.Join(scopeStrings(granted), " ")
	} else {
		resp["token"] = tok
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	if err := json.NewEncoder(w).Encode(resp); err != nil {
		h.log.Debug("writing token response", "err", err)
	}
}

// access is one granted resource, as carried in the token's "access" claim.
type access struct {
	Type, Class, Name string
	Actions           []string
}

// parseScope splits "type[(class)]:name:actions". The name may itself hold
// colons (a registry host:port), so type ends at the first colon and the
// actions start after the last one.
func parseScope(s string) (access, bool) {
	first := strings.IndexByte(s, ':')
	last := strings.LastIndexByte(s, ':')
	if first < 0 || last == first {
		return access{}, false
	}
	a := access{Type: s[:first], Name: s[first+1 : last]}
	if open := strings.IndexByte(a.Type, '('); open >= 0 && strings.HasSuffix(a.Type, ")") {
		a.Class = a.Type[open+1 : len(a.Type)-1]
		a.Type = a.Type[:open]
	}
	for act := range strings.SplitSeq(s[last+1:], ",") {
		if act != "" {
			a.Actions = append(a.Actions, act)
		}
	}
	if a.Type == "" || a.Name == "" || len(a.Actions) == 0 {
		return access{}, false
	}
	return a, true
}

// grant intersects the requested scopes with what p may do, merging
// repeated resources.
func grant(p Principal, scopes []string) []access {
	var out []access
	for _, s := range scopes {
		req, ok := parseScope(s)
		if !ok {
			continue
		}
		acts := p.actions(req.Type, req.Name, req.Actions)
		if len(acts) == 0 {
			continue
		}
		i := slices.IndexFunc(out, func(a access) bool {
			return a.Type == req.Type && a.Class == req.Class && a.Name == req.Name
		})
		if i < 0 {
			out = append(out, access{Type: req.Type, Class: req.Class, Name: req.Name, Actions: acts})
			continue
		}
		for _, a := range acts {
			if !slices.Contains(out[i].Actions, a) {
				out[i].Actions = append(out[i].Actions, a)
			}
		}
	}
	return out
}

// deniedScopes lists the requested scopes not granted in full.
func deniedScopes(requested []string, granted []access) []string {
	var out []string
	for _, s := range requested {
		req, ok := parseScope(s)
		if !ok {
			continue
		}
		i := slices.IndexFunc(granted, func(a access) bool {
			return a.Type == req.Type && a.Class == req.Class && a.Name == req.Name
		})
		if i < 0 {
			out = append(out, s)
			continue
		}
		for _, a := range req.Actions {
			if a != "*" && !slices.Contains(granted[i].Actions, a) && !slices.Contains(granted[i].Actions, "*") {
				out = append(out, s)
				break
			}
		}
	}
	return out
}

func scopeStrings(as []access) []string {
	out := make([]string, 0, len(as))
	for _, a := range as {
		if a.Type == namespaceAccess {
			continue // berth's own claim, not a scope the client asked for
		}
		typ := a.Type
		if a.Class != "" {
			typ += "(" + a.Class + ")"
		}
		out = append(out, typ+":"+a.Name+":"+strings.Join(a.Actions, ","))
	}
	return out
}

func unauthorized(w http.ResponseWriter) {
	w.Header().Set("WWW-Authenticate", `Basic realm="berth hub"`)
	tokenError(w, http.StatusUnauthorized, "unauthorized", "authentication required")
}

// tokenError answers in both the OAuth2 error shape and the registry's
// errors list, so every client finds a message it understands.
func tokenError(w http.ResponseWriter, status int, code, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]any{
		"error":             code,
		"error_description": msg,
		"errors":            []map[string]string{{"code": strings.ToUpper(code), "message": msg}},
	})
}

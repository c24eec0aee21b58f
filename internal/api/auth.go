package api

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base32"
	"encoding/hex"
	"errors"
	"net/http"
	"strings"
	"time"

	"github.com/berth-platform/berth/internal/model"
	"github.com/berth-platform/berth/internal/store"
)

// TokenPrefix marks berth secrets so that leaked ones are easy to find.
const TokenPrefix = "brt_"

// NewSecret returns a fresh token secret.
func NewSecret() string {
	b := make([]byte, 20)
	_, _ = rand.Read(b)
	return TokenPrefix + strings.ToLower(base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString(b))
}

// HashSecret is how secrets are stored: a leaked database leaks no token.
func HashSecret(secret string) string {
	sum := sha256.Sum256([]byte(secret))
	return hex.EncodeToString(sum[:])
}

type principalKey struct{}

func principalFrom(ctx context.Context) *model.Token {
	t, _ := ctx.Value(principalKey{}).(*model.Token)
	return t
}

func (a *API) authenticate(r *http.Request) (*model.Token, error) {
	secret := ""
	if h := r.Header.Get("Authorization"); h != "" {
		scheme, value, ok := strings.Cut(h, " ")
		if !ok || !strings.EqualFold(scheme, "Bearer") {
			return nil, errorf(http.StatusUnauthorized, "unauthorized", "Authorization header must be \"Bearer <token>\"")
		}
		secret = strings.TrimSpace(value)
	} else if q := r.URL.Query().Get("access_token"); q != "" && isStreamRequest(r) {
		// Browsers cannot set headers on EventSource and WebSocket requests.
		secret = q
	}
	if secret == "" {
		return nil, errorf(http.StatusUnauthorized, "unauthorized", "no token: send \"Authorization: Bearer <token>\" (the admin token is in DATA/admin-token)")
	}
	tok, err := VerifyToken(r.Context(), a.store, secret)
	if err != nil {
		return nil, err
	}
	a.touchToken(tok)
	return tok, nil
}

// VerifyToken finds the token of a secret. A member's token takes the
// member's current role, so that a demotion takes effect on tokens issued
// before it. Unknown and revoked secrets are a 401 error.
func VerifyToken(ctx context.Context, st store.Store, secret string) (*model.Token, error) {
	tok, err := st.GetTokenByHash(ctx, HashSecret(secret))
	if errors.Is(err, model.ErrNotFound) {
		return nil, errorf(http.StatusUnauthorized, "unauthorized", "invalid token: it is unknown or was revoked")
	}
	if err != nil {
		return nil, err
	}
	if tok.Member != "" {
		m, err := st.GetMember(ctx, tok.Team, tok.Member)
		if errors.Is(err, model.ErrNotFound) {
			return nil, errorf(http.StatusUnauthorized, "unauthorized", "invalid token: its member was removed from the team")
		}
		if err != nil {
			return nil, err
		}
		tok.Role = m.Role
	}
	return tok, nil
}

func isStreamRequest(r *http.Request) bool {
	return followRequested(r) || strings.HasSuffix(r.URL.Path, "/ws") ||
		(strings.HasSuffix(r.URL.Path, "/exec") && strings.EqualFold(r.Header.Get("Upgrade"), "websocket"))
}

func followRequested(r *http.Request) bool {
	f := r.URL.Query().Get("follow")
	return f != "" && f != "0" && f != "false"
}

// touchToken records use at most once a minute per token, off the request path.
func (a *API) touchToken(tok *model.Token) {
	now := time.Now().UTC()
	if tok.LastUsedAt != nil && now.Sub(*tok.LastUsedAt) < time.Minute {
		return
	}
	go func() {
		_ = a.store.TouchToken(context.Background(), tok.ID, now)
	}()
}

// teamAccess resolves the team in the path for the caller with at least role
// min. A token of another team gets 404, as if the team did not exist, so
// that names of other tenants do not leak.
func (a *API) teamAccess(r *http.Request, min model.Role) (*model.Team, error) {
	name := r.PathValue("team")
	p := principalFrom(r.Context())
	if !p.Admin && p.Team != name {
		return nil, notFound("team %q not found", name)
	}
	team, err := a.store.GetTeam(r.Context(), name)
	if errors.Is(err, model.ErrNotFound) {
		return nil, notFound("team %q not found", name)
	}
	if err != nil {
		return nil, err
	}
	if !p.Admin && !p.Role.AtLeast(min) {
		return nil, forbidden("this needs role %s or higher in team %q; the token has role %s", min, name, p.Role)
	}
	return team, nil
}

// roleFor is the least role a request needs: reading is for viewers,
// changing for developers.
func roleFor(r *http.Request) model.Role {
	if r.Method == http.MethodGet || r.Method == http.MethodHead {
		return model.RoleViewer
	}
	return model.RoleDeveloper
}

package hub

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/distribution/distribution/v3/registry/auth/token"
	storagedriver "github.com/distribution/distribution/v3/registry/storage/driver"
)

// The catalog is served by the hub rather than by distribution for two
// reasons: distribution lists every repository to whoever holds the
// catalog scope, while a team may see only its own namespace; and its
// pagination needs a configured maximum that an in-code configuration
// leaves at zero, so every "n" was refused and the list came back empty.

// maxCatalogPage is the most repositories one catalog answer holds; a
// longer catalog continues through the Link header.
const maxCatalogPage = 1000

// namespaceAccess is the token claim that carries the namespaces a
// catalog token may list ("*" for all). distribution ignores access types
// it does not know.
const namespaceAccess = "berth-namespace"

// catalogAccess adds to a token that was granted the catalog the
// namespaces its holder may list.
func catalogAccess(p Principal, granted []access) []access {
	if !slices.ContainsFunc(granted, func(a access) bool { return a.Type == "registry" && a.Name == "catalog" }) {
		return granted
	}
	if p.Admin {
		return append(granted, access{Type: namespaceAccess, Name: "*", Actions: []string{"list"}})
	}
	for _, team := range p.Teams {
		granted = append(granted, access{Type: namespaceAccess, Name: team, Actions: []string{"list"}})
	}
	return granted
}

// serveCatalog answers GET /v2/_catalog with the repositories the token's
// namespaces hold, n at a time after last, as the distribution spec says.
func (h *Hub) serveCatalog(w http.ResponseWriter, r *http.Request) {
	namespaces, ok := h.catalogNamespaces(r)
	if !ok {
		h.challenge(w, r, "registry:catalog:*")
		return
	}
	q := r.URL.Query()
	n := maxCatalogPage
	if s := q.Get("n"); s != "" {
		v, err := strconv.Atoi(s)
		if err != nil || v < 0 {
			registryError(w, http.StatusBadRequest, "PAGINATION_NUMBER_INVALID", "n must be a whole number of repositories, 0 or more", s)
			return
		}
		n = min(v, maxCatalogPage)
	}
	repos, err := h.repositories(r, namespaces)
	if err != nil {
		h.log.Error("listing the catalog", "err", err)
		registryError(w, http.StatusInternalServerError, "UNKNOWN", "listing repositories failed", nil)
		return
	}
	last := q.Get("last")
	start, _ := slices.BinarySearch(repos, last)
	if last != "" && start < len(repos) && repos[start] == last {
		start++
	}
	page := repos[start:min(start+n, len(repos))]
	if end := start + len(page); end < len(repos) && len(page) > 0 {
		next := url.Values{"n": {strconv.Itoa(n)}, "last": {page[len(page)-1]}}
		w.Header().Set("Link", fmt.Sprintf(`</v2/_catalog?%s>; rel="next"`, next.Encode()))
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(map[string][]string{"repositories": append([]string{}, page...)})
}

// catalogNamespaces reads the bearer token of r: the namespaces it may
// list, or false when it is missing, invalid or not a catalog token.
func (h *Hub) catalogNamespaces(r *http.Request) ([]string, bool) {
	claims, ok := h.bearerClaims(r)
	if !ok {
		return nil, false
	}
	var catalog bool
	var namespaces []string
	for _, a := range claims.Access {
		switch {
		case a.Type == "registry" && a.Name == "catalog" && slices.Contains(a.Actions, "*"):
			catalog = true
		case a.Type == namespaceAccess:
			namespaces = append(namespaces, a.Name)
		}
	}
	return namespaces, catalog
}

// bearerClaims verifies r's bearer token, for the routes the hub serves
// itself (catalog, referrers); false when it is missing or invalid.
func (h *Hub) bearerClaims(r *http.Request) (*token.ClaimSet, bool) {
	raw, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if !ok {
		return nil, false
	}
	claims, err := h.tokens.verify(strings.TrimSpace(raw), time.Now())
	if err != nil {
		h.log.Debug("bearer token refused", "err", err, "path", r.URL.Path, "remote", r.RemoteAddr)
		return nil, false
	}
	return claims, true
}

// repositories lists, sorted, the repositories in namespaces.
func (h *Hub) repositories(r *http.Request, namespaces []string) ([]string, error) {
	all := slices.Contains(namespaces, "*")
	var out []string
	buf := make([]string, 256)
	last := ""
	for {
		n, err := h.reg.Repositories(r.Context(), buf, last)
		if errors.As(err, new(storagedriver.PathNotFoundError)) {
			return nil, nil // nothing pushed yet
		}
		for _, repo := range buf[:n] {
			team, _, _ := strings.Cut(repo, "/")
			if all || slices.Contains(namespaces, team) {
				out = append(out, repo)
			}
		}
		if n > 0 {
			last = buf[n-1]
		}
		if errors.Is(err, io.EOF) || n == 0 && err == nil {
			return out, nil
		}
		if err != nil {
			return nil, err
		}
	}
}

// challenge answers 401 the way distribution does, pointing the client at
// the token endpoint for scope.
func (h *Hub) challenge(w http.ResponseWriter, r *http.Request, scope string) {
	realm := h.cfg.Realm
	if realm == "" {
		scheme := "http"
		if r.TLS != nil || r.Header.Get("X-Forwarded-Proto") == "https" {
			scheme = "https"
		}
		realm = scheme + "://" + r.Host + TokenPath
	}
	w.Header().Set("WWW-Authenticate", fmt.Sprintf(`Bearer realm=%q,service=%q,scope=%q`, realm, h.cfg.Service, scope))
	registryError(w, http.StatusUnauthorized, "UNAUTHORIZED", "authentication required", nil)
}

// registryError writes the distribution spec's error body.
func registryError(w http.ResponseWriter, status int, code, message string, detail any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]any{"errors": []map[string]any{{"code": code, "message": message, "detail": detail}}})
}

package hub

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path"
	"slices"
	"strings"

	"github.com/opencontainers/go-digest"
)

// What distribution v3 lacks of distribution-spec 1.1, the hub adds around
// it, keeping its storage layout:
//
//   - content addressed by another algorithm than sha256 (sha512): the
//     blob store stays sha256, and a repository gets an alias link
//     "<alg>/<hex>/link" naming the sha256 digest, which distribution
//     already resolves when it looks a digest up; responses name the
//     digest the client used;
//   - the subject field: a manifest PUT that names a subject answers
//     OCI-Subject and is recorded as a referrer of that subject;
//   - the referrers API (GET /v2/<name>/referrers/<digest>);
//   - a manifest that fails a check distribution reports as 500 (a layer
//     URL it does not allow) answers 400 MANIFEST_INVALID instead.

// maxManifestBody is how much of a manifest PUT the hub reads itself; the
// spec lets a registry refuse manifests above 4 MiB, distribution does.
const maxManifestBody = 4 << 20

// registryRoute is a registry API request split into repository, kind
// ("manifests", "blobs", "referrers", "uploads") and reference.
type registryRoute struct {
	repo, kind, ref string
}

// parseRoute finds the kind segment from the end, since repository names
// hold slashes.
func parseRoute(p string) (registryRoute, bool) {
	rest, ok := strings.CutPrefix(p, "/v2/")
	if !ok {
		return registryRoute{}, false
	}
	for _, kind := range []string{"/blobs/uploads/", "/manifests/", "/blobs/", "/referrers/"} {
		if i := strings.LastIndex(rest, kind); i > 0 {
			k := strings.Trim(kind, "/")
			if k == "blobs/uploads" {
				k = "uploads"
			}
			return registryRoute{repo: rest[:i], kind: k, ref: rest[i+len(kind):]}, true
		}
	}
	if repo, ok := strings.CutSuffix(rest, "/blobs/uploads"); ok {
		return registryRoute{repo: repo, kind: "uploads"}, true
	}
	return registryRoute{}, false
}

// serveOCI11 handles what the hub adds; it reports false for requests
// distribution serves as they are.
func (h *Hub) serveOCI11(w http.ResponseWriter, r *http.Request) bool {
	route, ok := parseRoute(r.URL.Path)
	if !ok {
		return false
	}
	switch {
	case route.kind == "referrers" && r.Method == http.MethodGet:
		h.serveReferrers(w, r, route)
	case route.kind == "manifests" && r.Method == http.MethodPut:
		h.putManifest(w, r, route)
	case route.kind == "manifests" && r.Method == http.MethodDelete:
		h.deleteManifest(w, r, route)
	case route.kind == "blobs" || route.kind == "uploads":
		h.serveBlobAlias(w, r, route)
	default:
		return false
	}
	return true
}

// alias is a digest of another algorithm than the blob store's.
func alias(ref string) (digest.Digest, bool) {
	d, err := digest.Parse(ref)
	return d, err == nil && d.Algorithm() != digest.Canonical
}

// linkPath is where distribution keeps a repository's link for d:
// "_layers" for blobs, "_manifests/revisions" for manifests.
func linkPath(repo, dir string, d digest.Digest) string {
	return path.Join("/docker/registry/v2/repositories", repo, dir, d.Algorithm().String(), d.Encoded(), "link")
}

func (h *Hub) writeAlias(ctx context.Context, repo, dir string, a, canonical digest.Digest) error {
	if err := h.driver.PutContent(ctx, linkPath(repo, dir, a), []byte(canonical.String())); err != nil {
		return fmt.Errorf("hub: alias %s for %s in %s: %w", a, canonical, repo, err)
	}
	return nil
}

func (h *Hub) readAlias(ctx context.Context, repo, dir string, a digest.Digest) (digest.Digest, bool) {
	b, err := h.driver.GetContent(ctx, linkPath(repo, dir, a))
	if err != nil {
		return "", false
	}
	d, err := digest.Parse(string(b))
	return d, err == nil
}

// recorded is a response held back so the hub can amend it.
type recorded struct{ *httptest.ResponseRecorder }

func (h *Hub) record(r *http.Request) recorded {
	rec := recorded{httptest.NewRecorder()}
	h.app.ServeHTTP(rec, r)
	return rec
}

// send copies the held response to w.
func (rec recorded) send(w http.ResponseWriter) {
	for k, v := range rec.Header() {
		w.Header()[k] = v
	}
	w.WriteHeader(rec.Code)
	_, _ = w.Write(rec.Body.Bytes())
}

// renameDigest makes a response name the digest the client used.
func (rec recorded) renameDigest(canonical, a digest.Digest) {
	hdr := rec.Header()
	if hdr.Get("Docker-Content-Digest") == canonical.String() {
		hdr.Set("Docker-Content-Digest", a.String())
	}
	if loc := hdr.Get("Location"); strings.HasSuffix(loc, canonical.String()) {
		hdr.Set("Location", strings.TrimSuffix(loc, canonical.String())+a.String())
	}
}

// serveBlobAlias serves blob requests, linking and naming aliases: an
// upload finished or a blob mounted under a sha512 digest, and GET/HEAD
// of one.
func (h *Hub) serveBlobAlias(w http.ResponseWriter, r *http.Request, route registryRoute) {
	q := r.URL.Query()
	if route.kind == "uploads" && r.Method == http.MethodPost && q.Get("digest") != "" && q.Get("mount") == "" {
		h.monolithicUpload(w, r, route)
		return
	}
	ref := route.ref
	switch {
	case route.kind == "uploads" && q.Get("mount") != "":
		ref = q.Get("mount")
	case route.kind == "uploads":
		ref = q.Get("digest")
	}
	a, ok := alias(ref)
	if !ok {
		h.app.ServeHTTP(w, r)
		return
	}
	if r.Method == http.MethodGet || r.Method == http.MethodHead {
		// Streamed, not held: a blob may be large.
		h.app.ServeHTTP(&aliasWriter{ResponseWriter: w, alias: a}, r)
		return
	}
	rec := h.record(r)
	if rec.Code == http.StatusCreated && q.Get("mount") != "" {
		h.linkMountedAlias(r.Context(), rec, route.repo, q.Get("from"), a)
	}
	if canonical, err := digest.Parse(rec.Header().Get("Docker-Content-Digest")); err == nil && canonical != a {
		rec.renameDigest(canonical, a)
	}
	rec.send(w)
}

// monolithicUpload serves a blob pushed whole in its POST (?digest=), which
// distribution answers by only opening an upload: the hub opens it and
// finishes it with the body in one PUT.
func (h *Hub) monolithicUpload(w http.ResponseWriter, r *http.Request, route registryRoute) {
	open := r.Clone(r.Context())
	open.URL.RawQuery = ""
	open.Body, open.ContentLength = http.NoBody, 0
	open.Header.Del("Content-Type")
	opened := h.record(open)
	loc := opened.Header().Get("Location")
	if opened.Code != http.StatusAccepted || loc == "" {
		opened.send(w) // refused (auth, name): the client learns why
		return
	}
	u, err := url.Parse(loc)
	if err != nil {
		registryError(w, http.StatusInternalServerError, "UNKNOWN", "upload location", loc)
		return
	}
	q := u.Query()
	q.Set("digest", r.URL.Query().Get("digest"))
	finish := r.Clone(r.Context())
	finish.Method = http.MethodPut
	finish.URL.Path, finish.URL.RawPath, finish.URL.RawQuery = u.Path, "", q.Encode()
	h.serveBlobAlias(w, finish, registryRoute{repo: route.repo, kind: "uploads", ref: strings.TrimPrefix(u.Path, "/v2/"+route.repo+"/blobs/uploads/")})
}

// linkMountedAlias repairs a mount by alias: distribution links the alias
// in the target repository to itself instead of to the sha256 blob, so
// the hub links both the alias and the blob as the source has them.
func (h *Hub) linkMountedAlias(ctx context.Context, rec recorded, repo, from string, a digest.Digest) {
	canonical, ok := h.readAlias(ctx, from, "_layers", a)
	if !ok || canonical == a {
		return
	}
	for _, d := range []digest.Digest{canonical, a} {
		if err := h.writeAlias(ctx, repo, "_layers", d, canonical); err != nil {
			h.log.Error("linking a mounted blob", "err", err)
			return
		}
	}
	rec.Header().Set("Docker-Content-Digest", canonical.String())
	if loc := rec.Header().Get("Location"); strings.HasSuffix(loc, a.String()) {
		rec.Header().Set("Location", strings.TrimSuffix(loc, a.String())+canonical.String())
	}
}

// aliasWriter names the alias in Docker-Content-Digest as the headers go
// out.
type aliasWriter struct {
	http.ResponseWriter
	alias       digest.Digest
	wroteHeader bool
}

func (w *aliasWriter) WriteHeader(code int) {
	if !w.wroteHeader {
		w.wroteHeader = true
		if w.Header().Get("Docker-Content-Digest") != "" {
			w.Header().Set("Docker-Content-Digest", w.alias.String())
		}
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *aliasWriter) Write(b []byte) (int, error) {
	if !w.wroteHeader {
		w.WriteHeader(http.StatusOK)
	}
	return w.ResponseWriter.Write(b)
}

func (w *aliasWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// putManifest stores a manifest through distribution, by its sha256 digest
// when the client named another, and records its subject.
func (h *Hub) putManifest(w http.ResponseWriter, r *http.Request, route registryRoute) {
	body, err := io.ReadAll(io.LimitReader(r.Body, maxManifestBody+1))
	if err != nil {
		registryError(w, http.StatusBadRequest, "MANIFEST_INVALID", "reading the manifest failed", err.Error())
		return
	}
	if len(body) > maxManifestBody {
		registryError(w, http.StatusRequestEntityTooLarge, "SIZE_INVALID", "a manifest may be 4 MiB at most", len(body))
		return
	}
	canonical := digest.FromBytes(body)
	a, isAlias := alias(route.ref)
	fwd := r.Clone(r.Context())
	fwd.Body, fwd.ContentLength = io.NopCloser(bytes.NewReader(body)), int64(len(body))
	if isAlias {
		if a.Algorithm().Available() && a.Algorithm().FromBytes(body) != a {
			registryError(w, http.StatusBadRequest, "DIGEST_INVALID", "the manifest's content does not match its digest", a.String())
			return
		}
		fwd.URL.Path = "/v2/" + route.repo + "/manifests/" + canonical.String()
		fwd.URL.RawPath = ""
	}
	rec := h.record(fwd)
	switch {
	case rec.Code == http.StatusInternalServerError:
		// distribution's 500 for a check it failed (a layer URL it does not
		// allow) is the client's error, not the hub's.
		rec = recorded{httptest.NewRecorder()}
		registryError(rec, http.StatusBadRequest, "MANIFEST_INVALID", "the manifest was refused", "a descriptor is invalid (a non-distributable layer's URL must be http or https)")
	case rec.Code == http.StatusCreated:
		h.afterManifestPut(r.Context(), rec, route.repo, body, canonical, a, isAlias)
	}
	rec.send(w)
}

func (h *Hub) afterManifestPut(ctx context.Context, rec recorded, repo string, body []byte, canonical, a digest.Digest, isAlias bool) {
	named := canonical
	if isAlias {
		named = a
		if err := h.writeAlias(ctx, repo, "_manifests/revisions", a, canonical); err != nil {
			h.log.Error("linking a manifest alias", "err", err)
		}
		// An index checks its children in the repository's blobs too.
		if err := h.writeAlias(ctx, repo, "_layers", a, canonical); err != nil {
			h.log.Error("linking a manifest alias", "err", err)
		}
		rec.renameDigest(canonical, a)
	}
	subject, err := h.addReferrer(ctx, repo, body, named)
	if err != nil {
		h.log.Error("recording a referrer", "repo", repo, "err", err)
	}
	if subject != "" {
		rec.Header().Set("OCI-Subject", subject.String())
	}
}

// deleteManifest deletes by the sha256 digest an alias names, and forgets
// the manifest as a referrer.
func (h *Hub) deleteManifest(w http.ResponseWriter, r *http.Request, route registryRoute) {
	d, err := digest.Parse(route.ref)
	if err != nil {
		h.app.ServeHTTP(w, r) // a tag
		return
	}
	fwd := r
	if a, ok := alias(route.ref); ok {
		canonical, found := h.readAlias(r.Context(), route.repo, "_manifests/revisions", a)
		if !found {
			registryError(w, http.StatusNotFound, "MANIFEST_UNKNOWN", "manifest unknown to registry", a.String())
			return
		}
		fwd = r.Clone(r.Context())
		fwd.URL.Path = "/v2/" + route.repo + "/manifests/" + canonical.String()
		fwd.URL.RawPath = ""
	}
	rec := h.record(fwd)
	if rec.Code == http.StatusAccepted {
		if _, ok := alias(route.ref); ok {
			_ = h.driver.Delete(r.Context(), path.Dir(linkPath(route.repo, "_manifests/revisions", d)))
			_ = h.driver.Delete(r.Context(), path.Dir(linkPath(route.repo, "_layers", d)))
		}
		if err := h.removeReferrer(r.Context(), route.repo, d); err != nil {
			h.log.Error("forgetting a referrer", "repo", route.repo, "err", err)
		}
	}
	rec.send(w)
}

// mayPullRepo checks r's bearer token for pull on repo, as distribution
// would for the routes it serves.
func (h *Hub) mayPullRepo(r *http.Request, repo string) bool {
	claims, ok := h.bearerClaims(r)
	if !ok {
		return false
	}
	for _, a := range claims.Access {
		if a.Type == "repository" && a.Name == repo && (slices.Contains(a.Actions, "pull") || slices.Contains(a.Actions, "*")) {
			return true
		}
	}
	return false
}

// jsonBody is the part of a manifest the referrers API needs.
type jsonBody struct {
	MediaType    string            `json:"mediaType"`
	ArtifactType string            `json:"artifactType,omitempty"`
	Config       *descriptor       `json:"config,omitempty"`
	Subject      *descriptor       `json:"subject,omitempty"`
	Annotations  map[string]string `json:"annotations,omitempty"`
}

type descriptor struct {
	MediaType    string            `json:"mediaType"`
	ArtifactType string            `json:"artifactType,omitempty"`
	Digest       digest.Digest     `json:"digest"`
	Size         int64             `json:"size"`
	Annotations  map[string]string `json:"annotations,omitempty"`
}

func decodeManifest(body []byte) (jsonBody, error) {
	var m jsonBody
	err := json.Unmarshal(body, &m)
	return m, err
}

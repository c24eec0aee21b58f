package hub

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"sort"

	"github.com/opencontainers/go-digest"
)

// Referrers are kept beside distribution's storage, one small JSON
// descriptor per referring manifest:
//
//	referrers/<repo>/_subjects/<alg>-<hex of subject>/<alg>-<hex of referrer>.json
//
// "_subjects" cannot be part of a repository name (components start with a
// letter or digit), so nested repositories never collide with it.

const indexMediaType = "application/vnd.oci.image.index.v1+json"

func (h *Hub) subjectDir(repo string, subject digest.Digest) string {
	return filepath.Join(h.cfg.Root, "referrers", filepath.FromSlash(repo), "_subjects", subject.Algorithm().String()+"-"+subject.Encoded())
}

// addReferrer records the manifest body (stored as named) as a referrer of
// its subject, and returns the subject ("" when it has none).
func (h *Hub) addReferrer(_ context.Context, repo string, body []byte, named digest.Digest) (digest.Digest, error) {
	m, err := decodeManifest(body)
	if err != nil || m.Subject == nil || m.Subject.Digest.Validate() != nil {
		return "", nil
	}
	desc := descriptor{MediaType: m.MediaType, ArtifactType: m.ArtifactType, Digest: named, Size: int64(len(body)), Annotations: m.Annotations}
	if desc.ArtifactType == "" && m.Config != nil {
		// The spec: an image manifest without artifactType is listed with
		// its config's media type.
		desc.ArtifactType = m.Config.MediaType
	}
	b, err := json.Marshal(desc)
	if err != nil {
		return m.Subject.Digest, err
	}
	dir := h.subjectDir(repo, m.Subject.Digest)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return m.Subject.Digest, fmt.Errorf("referrers: %w", err)
	}
	return m.Subject.Digest, writeFileAtomic(filepath.Join(dir, named.Algorithm().String()+"-"+named.Encoded()+".json"), b)
}

// removeReferrer forgets the manifest d wherever it is listed.
func (h *Hub) removeReferrer(_ context.Context, repo string, d digest.Digest) error {
	pattern := filepath.Join(h.cfg.Root, "referrers", filepath.FromSlash(repo), "_subjects", "*", d.Algorithm().String()+"-"+d.Encoded()+".json")
	files, err := filepath.Glob(pattern)
	if err != nil {
		return err
	}
	var errs []error
	for _, f := range files {
		if err := os.Remove(f); err != nil && !errors.Is(err, os.ErrNotExist) {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// serveReferrers answers GET /v2/<name>/referrers/<digest>[?artifactType=]
// with an image index of the manifests whose subject is digest: empty, not
// 404, when there are none.
func (h *Hub) serveReferrers(w http.ResponseWriter, r *http.Request, route registryRoute) {
	if !h.mayPullRepo(r, route.repo) {
		h.challenge(w, r, "repository:"+route.repo+":pull")
		return
	}
	subject, err := digest.Parse(route.ref)
	if err != nil {
		registryError(w, http.StatusBadRequest, "DIGEST_INVALID", "the subject must be a digest such as sha256:<64 hex>", route.ref)
		return
	}
	artifactType := r.URL.Query().Get("artifactType")
	list, err := h.referrers(route.repo, subject, artifactType)
	if err != nil {
		h.log.Error("listing referrers", "repo", route.repo, "subject", subject, "err", err)
		registryError(w, http.StatusInternalServerError, "UNKNOWN", "listing referrers failed", nil)
		return
	}
	if artifactType != "" {
		w.Header().Set("OCI-Filters-Applied", "artifactType")
	}
	w.Header().Set("Content-Type", indexMediaType)
	_ = json.NewEncoder(w).Encode(map[string]any{"schemaVersion": 2, "mediaType": indexMediaType, "manifests": list})
}

func (h *Hub) referrers(repo string, subject digest.Digest, artifactType string) ([]descriptor, error) {
	files, err := filepath.Glob(filepath.Join(h.subjectDir(repo, subject), "*.json"))
	if err != nil {
		return nil, err
	}
	sort.Strings(files)
	list := []descriptor{}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if errors.Is(err, os.ErrNotExist) {
			continue // deleted meanwhile
		}
		if err != nil {
			return nil, err
		}
		var d descriptor
		if err := json.Unmarshal(b, &d); err != nil {
			return nil, fmt.Errorf("referrer %s: %w", f, err)
		}
		if artifactType == "" || d.ArtifactType == artifactType {
			list = append(list, d)
		}
	}
	return list, nil
}

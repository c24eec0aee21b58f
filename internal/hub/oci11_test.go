package hub

import (
	"bytes"
	"crypto/sha512"
	"encoding/hex"
	"io"
	"net/http"
	"testing"
)

func doWithBearer(t *testing.T, method, u, tok string, body []byte) *http.Response {
	t.Helper()
	req, _ := http.NewRequest(method, u, bytes.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+tok)
	req.Header.Set("Content-Type", "application/octet-stream")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	return resp
}

// TestSha512ContentSurvivesGC: distribution's collector sweeps the blob
// store by sha256 while a sha512 manifest names sha512 digests; the hub
// must keep such content rather than lose it.
func TestSha512ContentSurvivesGC(t *testing.T) {
	th := startHub(t, t.TempDir(), nil)
	base := "http://" + th.host
	tok := fetchToken(t, base, "u", "alpha-owner", "repository:alpha/big:pull,push,delete")
	blob := []byte("layer addressed by sha512")
	sum := sha512.Sum512(blob)
	dig := "sha512:" + hex.EncodeToString(sum[:])

	resp := doWithBearer(t, http.MethodPost, base+"/v2/alpha/big/blobs/uploads/?digest="+dig, tok, blob)
	if resp.StatusCode != http.StatusCreated || resp.Header.Get("Docker-Content-Digest") != dig {
		t.Fatalf("monolithic sha512 push: %d, digest %q", resp.StatusCode, resp.Header.Get("Docker-Content-Digest"))
	}
	stats, err := th.GarbageCollect(testCtx(t))
	if err != nil || !stats.Skipped || stats.BlobsDeleted != 0 {
		t.Fatalf("GC with sha512 content: %+v, %v; want it skipped", stats, err)
	}
	resp = doWithBearer(t, http.MethodGet, base+"/v2/alpha/big/blobs/"+dig, tok, nil)
	got, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK || !bytes.Equal(got, blob) || resp.Header.Get("Docker-Content-Digest") != dig {
		t.Fatalf("after GC: %d %q digest %q", resp.StatusCode, got, resp.Header.Get("Docker-Content-Digest"))
	}
}

// TestReferrersStayInTheTeam: the referrers API answers only with a pull
// grant on the repository, like every other registry route.
func TestReferrersStayInTheTeam(t *testing.T) {
	th := startHub(t, t.TempDir(), nil)
	base := "http://" + th.host
	subject := "sha256:" + hex.EncodeToString(make([]byte, 32))
	u := base + "/v2/alpha/web/referrers/" + subject

	r, err := http.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	r.Body.Close()
	if r.StatusCode != http.StatusUnauthorized || r.Header.Get("WWW-Authenticate") == "" {
		t.Fatalf("anonymous referrers: %d, want 401 with a challenge", r.StatusCode)
	}
	beta := fetchToken(t, base, "u", "beta-token", "repository:alpha/web:pull")
	if resp := doWithBearer(t, http.MethodGet, u, beta, nil); resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("team beta reading alpha's referrers: %d, want 401", resp.StatusCode)
	}
	alpha := fetchToken(t, base, "u", "alpha-token", "repository:alpha/web:pull")
	resp := doWithBearer(t, http.MethodGet, u, alpha, nil)
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != indexMediaType || !bytes.Contains(body, []byte(`"manifests":[]`)) {
		t.Fatalf("alpha's empty referrers: %d %q %s", resp.StatusCode, resp.Header.Get("Content-Type"), body)
	}
	if resp := doWithBearer(t, http.MethodGet, base+"/v2/alpha/web/referrers/nonsense", alpha, nil); resp.StatusCode != http.StatusBadRequest {
		t.Fatalf("bad subject digest: %d, want 400", resp.StatusCode)
	}
}

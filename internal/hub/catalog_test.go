package hub

import (
	"encoding/json"
	"net/http"
	"slices"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"
)

// TestCatalog lists repositories the way crane catalog does: an admin sees
// all of them a page at a time, a team only its own, a stranger nothing.
func TestCatalog(t *testing.T) {
	th := startHub(t, t.TempDir(), nil)
	ctx := testCtx(t)
	for _, repo := range []string{"alpha/api", "alpha/web", "beta/db"} {
		push(t, ctx, th.ref(t, repo+":v1"), randomImage(t), th.internalAuth())
	}
	reg, err := name.NewRegistry(th.host, name.Insecure)
	if err != nil {
		t.Fatal(err)
	}

	all, err := remote.Catalog(ctx, reg, th.internalAuth())
	if err != nil || !slices.Equal(all, []string{"alpha/api", "alpha/web", "beta/db"}) {
		t.Fatalf("admin catalog %v, %v", all, err)
	}
	// Pages of one, followed through Link as crane does.
	var pages []string
	last := ""
	for range 5 {
		page, err := remote.CatalogPage(reg, last, 1, th.internalAuth())
		if err != nil {
			t.Fatalf("catalog page after %q: %v", last, err)
		}
		if len(page) == 0 {
			break
		}
		pages = append(pages, page...)
		last = page[len(page)-1]
	}
	if !slices.Equal(pages, all) {
		t.Fatalf("paged catalog %v, want %v", pages, all)
	}

	own, err := remote.Catalog(ctx, reg, basic("alpha-token"))
	if err != nil || !slices.Equal(own, []string{"alpha/api", "alpha/web"}) {
		t.Fatalf("team alpha's catalog %v, %v; want its own repositories only", own, err)
	}

	base := "http://" + th.host
	r, err := http.Get(base + "/v2/_catalog")
	if err != nil {
		t.Fatal(err)
	}
	r.Body.Close()
	if r.StatusCode != http.StatusUnauthorized || r.Header.Get("WWW-Authenticate") == "" {
		t.Fatalf("anonymous catalog: %d %q, want 401 with a challenge", r.StatusCode, r.Header.Get("WWW-Authenticate"))
	}
	tok := fetchToken(t, base, "u", "alpha-token", "registry:catalog:*")
	for _, n := range []string{"-1", "ten"} {
		req, _ := http.NewRequest(http.MethodGet, base+"/v2/_catalog?n="+n, nil)
		req.Header.Set("Authorization", "Bearer "+tok)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		var body struct{ Errors []struct{ Code string } }
		json.NewDecoder(resp.Body).Decode(&body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusBadRequest || len(body.Errors) == 0 || body.Errors[0].Code != "PAGINATION_NUMBER_INVALID" {
			t.Errorf("n=%s: %d %+v, want 400 PAGINATION_NUMBER_INVALID", n, resp.StatusCode, body)
		}
	}
}

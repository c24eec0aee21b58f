package acme

import (
	"net/http"
	"net/http/httptest"
	"testing"
)

func TestChallengeServing(t *testing.T) {
	iss, err := New(Config{StorageDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	_ = iss.challenges.Present("app.berth.test", "tok-123_ABC", "tok-123_ABC.thumbprint")

	get := func(h http.Handler, method, path string) *httptest.ResponseRecorder {
		rec := httptest.NewRecorder()
		req := httptest.NewRequest(method, "http://app.berth.test"+path, nil)
		h.ServeHTTP(rec, req)
		return rec
	}
	next := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusTeapot) })

	rec := get(iss.ChallengeHandler(), http.MethodGet, "/.well-known/acme-challenge/tok-123_ABC")
	if rec.Code != http.StatusOK || rec.Body.String() != "tok-123_ABC.thumbprint" {
		t.Errorf("pending token: %d %q", rec.Code, rec.Body)
	}
	if ct := rec.Header().Get("Content-Type"); ct != "text/plain; charset=utf-8" {
		t.Errorf("content type %q", ct)
	}
	if rec := get(iss.ChallengeHandler(), http.MethodHead, "/.well-known/acme-challenge/tok-123_ABC"); rec.Code != http.StatusOK || rec.Body.Len() != 0 {
		t.Errorf("HEAD: %d %q", rec.Code, rec.Body)
	}
	if rec := get(iss.ChallengeHandler(), http.MethodGet, "/.well-known/acme-challenge/other"); rec.Code != http.StatusNotFound {
		t.Errorf("unknown token: %d", rec.Code)
	}

	// The middleware leaves everything else, unknown tokens included, to
	// the router: an app may answer its own ACME challenges.
	for _, path := range []string{"/", "/.well-known/acme-challenge/other", "/.well-known/acme-challenge/", "/.well-known/acme-challenge/tok-123_ABC/x"} {
		if rec := get(iss.Middleware(next), http.MethodGet, path); rec.Code != http.StatusTeapot {
			t.Errorf("%s: %d, want it passed on", path, rec.Code)
		}
	}
	if rec := get(iss.Middleware(next), http.MethodPost, "/.well-known/acme-challenge/tok-123_ABC"); rec.Code != http.StatusTeapot {
		t.Errorf("POST: %d, want it passed on", rec.Code)
	}

	_ = iss.challenges.CleanUp("app.berth.test", "tok-123_ABC", "")
	if rec := get(iss.ChallengeHandler(), http.MethodGet, "/.well-known/acme-challenge/tok-123_ABC"); rec.Code != http.StatusNotFound {
		t.Errorf("after clean-up: %d", rec.Code)
	}
}

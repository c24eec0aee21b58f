package e2e

import "testing"

// A new user's PATCH of one source field ({"source": {"language": "go"}})
// used to be refused with "source.url is required": a partial source update
// keeps the fields it does not name.
func TestPartialSourceUpdate(t *testing.T) {
	s := startServer(t)
	setupShop(s)
	s.must(201, "POST", comps, map[string]any{
		"alias": "api", "kind": "source",
		"source": map[string]any{"url": "https://git.example.com/team/api.git", "branch": "main", "username": "ci", "password": "s3cret"},
	})
	var got struct {
		Source map[string]any `json:"source"`
	}
	s.must(200, "PATCH", comps+"/api", map[string]any{"source": map[string]any{"language": "go"}}).json(t, &got)
	if got.Source["language"] != "go" || got.Source["url"] != "https://git.example.com/team/api.git" || got.Source["branch"] != "main" || got.Source["password"] != "******" {
		t.Fatalf("after PATCH of the language: %v", got.Source)
	}
	// Moving to another host leaves the stored password behind.
	got.Source = nil
	s.must(200, "PATCH", comps+"/api", map[string]any{"source": map[string]any{"url": "https://evil.example.net/x.git"}}).json(t, &got)
	if _, kept := got.Source["password"]; kept || got.Source["language"] != "go" {
		t.Fatalf("after moving to another host: %v", got.Source)
	}
	s.must(400, "PATCH", comps+"/api", map[string]any{"source": map[string]any{"langauge": "go"}})
}

package e2e

import (
	"strings"
	"testing"
)

// Every kind of bad input gets its status and a JSON error that names the
// problem.
func TestBadInput(t *testing.T) {
	s := startServer(t)
	setupShop(s)
	viewer := s.teamToken("shop", "viewer")
	dev := s.teamToken("shop", "developer")
	cases := []struct {
		name         string
		token        string
		method, path string
		body         any
		status       int
		code, inMsg  string
	}{
		{"no token", "", "GET", "/api/v1/teams", nil, 401, "unauthorized", "Authorization"},
		{"bad token", "brt_nope", "GET", "/api/v1/teams", nil, 401, "unauthorized", "invalid token"},
		{"malformed JSON", s.token, "POST", "/api/v1/teams", `{"name":`, 400, "bad_request", "malformed JSON"},
		{"empty body", s.token, "POST", "/api/v1/teams", "", 400, "bad_request", "empty"},
		{"unknown field", s.token, "POST", "/api/v1/teams", `{"nmae":"x"}`, 400, "bad_request", "nmae"},
		{"wrong type", s.token, "POST", comps, `{"alias":"a","image":"nginx","instances":"two"}`, 400, "bad_request", "instances"},
		{"viewer writes", viewer, "POST", "/api/v1/teams/shop/apps", map[string]any{"name": "x"}, 403, "forbidden", "developer"},
		{"developer makes tokens", dev, "POST", "/api/v1/teams/shop/tokens", map[string]any{"name": "x", "role": "viewer"}, 403, "forbidden", "admin"},
		{"team token creates team", dev, "POST", "/api/v1/teams", map[string]any{"name": "x"}, 403, "forbidden", "admin token"},
		{"unknown team", s.token, "GET", "/api/v1/teams/nope/apps", nil, 404, "not_found", `team "nope"`},
		{"unknown component", s.token, "GET", comps + "/nope", nil, 404, "not_found", `component "nope"`},
		{"unknown route", s.token, "GET", "/api/v1/nothing", nil, 404, "not_found", "no API route"},
		{"wrong method", s.token, "PUT", "/api/v1/teams", nil, 405, "method_not_allowed", "GET, POST"},
		{"duplicate team", s.token, "POST", "/api/v1/teams", map[string]any{"name": "shop"}, 409, "conflict", "exists"},
		{"bad team name", s.token, "POST", "/api/v1/teams", map[string]any{"name": "Shop_1"}, 422, "invalid", "name: must be a DNS label"},
		{"platform's team name", s.token, "POST", "/api/v1/teams", map[string]any{"name": "berth"}, 422, "invalid", "reserved for the platform"},
		{"bad alias", s.token, "POST", comps, map[string]any{"alias": "-api", "image": "nginx"}, 422, "invalid", "alias: must be a DNS label"},
		{"long alias", s.token, "POST", comps, map[string]any{"alias": strings.Repeat("a", 64), "image": "nginx"}, 422, "invalid", "at most 63"},
		{"bad kind", s.token, "POST", comps, map[string]any{"alias": "a", "kind": "vm"}, 422, "invalid", "kind: must be one of"},
		{"bad image", s.token, "POST", comps, map[string]any{"alias": "a", "image": "UPPER//x:"}, 422, "invalid", "image: is not a valid image reference"},
		{"port zero", s.token, "POST", comps, map[string]any{"alias": "a", "image": "nginx", "ports": []any{map[string]any{"port": 0}}}, 422, "invalid", "ports[0].port: must be between 1 and 65535"},
		{"port too big", s.token, "POST", comps, map[string]any{"alias": "a", "image": "nginx", "ports": []any{map[string]any{"port": 70000}}}, 422, "invalid", "ports[0].port"},
		{"bad protocol", s.token, "POST", comps, map[string]any{"alias": "a", "image": "nginx", "ports": []any{map[string]any{"port": 80, "protocol": "ftp"}}}, 422, "invalid", "protocol"},
		{"bad env name", s.token, "POST", comps, map[string]any{"alias": "a", "image": "nginx", "envs": []any{map[string]any{"name": "1X", "value": "v"}}}, 422, "invalid", "envs[0].name: must be a POSIX"},
		{"bad scope", s.token, "POST", comps, map[string]any{"alias": "a", "image": "nginx", "envs": []any{map[string]any{"name": "X", "scope": "world"}}}, 422, "invalid", "scope"},
		{"bad memory", s.token, "POST", comps, map[string]any{"alias": "a", "image": "nginx", "memory": "lots"}, 422, "invalid", "memory: must be a size like 512Mi"},
		{"bad cpu", s.token, "POST", comps, map[string]any{"alias": "a", "image": "nginx", "cpu": "fast"}, 422, "invalid", "cpu"},
		{"negative instances", s.token, "POST", comps, map[string]any{"alias": "a", "image": "nginx", "instances": -1}, 422, "invalid", "instances"},
		{"relative volume", s.token, "POST", comps, map[string]any{"alias": "a", "image": "nginx", "volumes": []any{map[string]any{"path": "data"}}}, 422, "invalid", "volumes[0].path"},
		{"bad probe", s.token, "POST", comps, map[string]any{"alias": "a", "image": "nginx", "liveness": map[string]any{"type": "ping"}}, 422, "invalid", "liveness.type"},
		{"source without url", s.token, "POST", comps, map[string]any{"alias": "a", "kind": "source"}, 422, "invalid", "source.url"},
		{"bad endpoint", s.token, "POST", comps, map[string]any{"alias": "a", "kind": "thirdparty", "endpoints": []string{"nohost"}}, 422, "invalid", "endpoints[0]"},
		{"bad domain", s.token, "POST", "/api/v1/teams/shop/http-rules", map[string]any{"domain": "bad domain", "component": "a", "port": 80}, 422, "invalid", "domain"},
		{"scale without count", s.token, "POST", comps + "/web1/scale", nil, 404, "not_found", "web1"},
		{"bad role", s.token, "POST", "/api/v1/teams/shop/members", map[string]any{"name": "bob", "role": "god"}, 422, "invalid", "role"},
		{"bad limit", s.token, "GET", "/api/v1/events?limit=0", nil, 422, "invalid", "limit"},
		{"huge body", s.token, "POST", "/api/v1/teams", `{"name":"` + strings.Repeat("a", 2<<20) + `"}`, 413, "too_large", "larger than"},
	}
	for _, tc := range cases {
		r := s.do(tc.token, tc.method, tc.path, tc.body)
		if r.Status != tc.status || r.errorCode() != tc.code || !strings.Contains(r.errorMessage(), tc.inMsg) {
			t.Errorf("%s: got %d %s, want %d %s with %q", tc.name, r.Status, r.Body, tc.status, tc.code, tc.inMsg)
		}
	}

	s.must(201, "POST", comps, map[string]any{"alias": "web1", "image": "nginx"})
	r := s.must(409, "POST", comps, map[string]any{"alias": "web1", "image": "nginx"})
	if r.errorCode() != "conflict" {
		t.Fatalf("duplicate alias: %s", r.Body)
	}
	// Aliases are unique per team, across apps.
	s.must(201, "POST", "/api/v1/teams/shop/apps", map[string]any{"name": "other"})
	s.must(409, "POST", "/api/v1/teams/shop/apps/other/components", map[string]any{"alias": "web1", "image": "nginx"})
	for _, body := range []any{nil, map[string]any{"instances": 101}} {
		if r := s.do(s.token, "POST", comps+"/web1/scale", body); r.Status != 422 || !strings.Contains(r.errorMessage(), "instances") {
			t.Errorf("scale %v: %d %s", body, r.Status, r.Body)
		}
	}
	if r := s.do(s.token, "POST", comps+"/web1/rollback", map[string]any{"version": 9}); r.Status != 422 || !strings.Contains(r.errorMessage(), "no version 9") {
		t.Errorf("rollback to a missing version: %d %s", r.Status, r.Body)
	}
	// A revoked token stops working at once.
	var tok struct {
		Token  struct{ ID string }
		Secret string
	}
	s.must(201, "POST", "/api/v1/teams/shop/tokens", map[string]any{"name": "tmp", "role": "viewer"}).json(t, &tok)
	s.mustAs(tok.Secret, 200, "GET", "/api/v1/teams/shop", nil)
	s.must(204, "DELETE", "/api/v1/teams/shop/tokens/"+tok.Token.ID, nil)
	s.mustAs(tok.Secret, 401, "GET", "/api/v1/teams/shop", nil)
}

// A member's token follows the member's role, and dies with the member.
func TestMemberRoles(t *testing.T) {
	s := startServer(t)
	setupShop(s)
	s.must(201, "POST", "/api/v1/teams/shop/members", map[string]any{"name": "alice", "role": "admin"})
	s.must(201, "POST", "/api/v1/teams/shop/members", map[string]any{"name": "bob", "role": "developer"})
	var tok struct{ Secret string }
	s.must(201, "POST", "/api/v1/teams/shop/tokens", map[string]any{"name": "alice-cli", "member": "alice"}).json(t, &tok)
	alice := tok.Secret
	// An admin cannot make an owner, nor grant above itself.
	s.mustAs(alice, 403, "POST", "/api/v1/teams/shop/members", map[string]any{"name": "carol", "role": "owner"})
	s.mustAs(alice, 201, "POST", "/api/v1/teams/shop/members", map[string]any{"name": "carol", "role": "viewer"})
	s.mustAs(alice, 403, "DELETE", "/api/v1/teams/shop", nil)
	s.must(200, "PATCH", "/api/v1/teams/shop/members/alice", map[string]any{"role": "viewer"})
	s.mustAs(alice, 403, "POST", "/api/v1/teams/shop/apps", map[string]any{"name": "x"})
	s.mustAs(alice, 200, "GET", "/api/v1/teams/shop/apps", nil)
	s.must(204, "DELETE", "/api/v1/teams/shop/members/alice", nil)
	s.mustAs(alice, 401, "GET", "/api/v1/teams/shop/apps", nil)
	owner := s.teamToken("shop", "owner")
	s.mustAs(owner, 202, "DELETE", "/api/v1/teams/shop", nil)
}

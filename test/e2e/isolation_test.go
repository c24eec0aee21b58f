package e2e

import (
	"encoding/json"
	"sort"
	"strings"
	"testing"
)

// A token of team alpha, even its owner's, can neither read nor change
// anything of team beta, on every route the API documents: each answers 404
// as if beta's resources did not exist, and beta's data is untouched.
func TestCrossTeamIsolationOnEveryRoute(t *testing.T) {
	s := startServer(t)
	ids := map[string]string{}
	for _, team := range []string{"alpha", "beta"} {
		base := "/api/v1/teams/" + team
		s.must(201, "POST", "/api/v1/teams", map[string]any{"name": team})
		s.must(201, "POST", base+"/apps", map[string]any{"name": "web"})
		cbase := base + "/apps/web/components"
		s.must(201, "POST", cbase, map[string]any{"alias": team + "-c", "image": "nginx",
			"ports": []any{map[string]any{"port": 80, "inner": true}}, "envs": []any{map[string]any{"name": "MODE", "value": "x"}},
			"volumes": []any{map[string]any{"name": "vol1", "path": "/data"}}})
		s.must(201, "POST", cbase, map[string]any{"alias": team + "-d", "image": "redis"})
		s.must(201, "POST", cbase+"/"+team+"-c/dependencies", map[string]any{"component": team + "-d"})
		var acc struct {
			EventID string `json:"event_id"`
		}
		s.must(202, "POST", cbase+"/"+team+"-c/deploy", nil).json(t, &acc)
		s.waitEvent(acc.EventID)
		ids[team+".event"] = acc.EventID
		s.must(201, "POST", base+"/members", map[string]any{"name": "bob", "role": "viewer"})
		var tok struct {
			Token  struct{ ID string }
			Secret string
		}
		s.must(201, "POST", base+"/tokens", map[string]any{"name": "owner", "role": "owner"}).json(t, &tok)
		ids[team+".token"], ids[team+".secret"] = tok.Token.ID, tok.Secret
		var rule struct{ ID string }
		s.must(201, "POST", base+"/http-rules", map[string]any{"domain": team + ".example.com", "component": team + "-c", "port": 80}).json(t, &rule)
		ids[team+".http"] = rule.ID
		s.must(201, "POST", base+"/tcp-rules", map[string]any{"component": team + "-c", "port": 80}).json(t, &rule)
		ids[team+".tcp"] = rule.ID
		cert, key := selfSigned(t, team+".example.com", futureDay())
		s.must(201, "POST", base+"/certificates", map[string]any{"name": "cert", "certificate": cert, "key": key})
		s.must(201, "POST", base+"/registries", map[string]any{"host": "registry." + team + ".example.com", "username": "u", "password": "p"})
	}
	before := snapshot(s, "beta")

	var doc struct {
		Paths map[string]map[string]any `json:"paths"`
	}
	s.must(200, "GET", "/api/v1/openapi.json", nil).json(t, &doc)
	var paths []string
	for p := range doc.Paths {
		paths = append(paths, p)
	}
	sort.Strings(paths)
	alpha := ids["alpha.secret"]
	checked := 0
	for _, p := range paths {
		if !strings.Contains(p, "{team}") && !strings.Contains(p, "/events/{id}") {
			continue
		}
		for method := range doc.Paths[p] {
			method = strings.ToUpper(method)
			path := fillPath(p, ids)
			r := s.do(alpha, method, path, bodyFor(p, method))
			if method == "PUT" && strings.HasSuffix(p, "/endpoints") {
				// Endpoint registration takes a component's key, never a
				// team token: any token is refused alike, existing or not.
				if r.Status != 401 {
					t.Errorf("%s %s with alpha's owner token: %d %s, want 401", method, path, r.Status, r.Body)
				}
				checked++
				continue
			}
			if r.Status != 404 || r.errorCode() != "not_found" {
				t.Errorf("%s %s with alpha's owner token: %d %s, want 404", method, path, r.Status, r.Body)
			}
			if strings.Contains(string(r.Body), "beta-c") || strings.Contains(string(r.Body), "beta.example.com") {
				t.Errorf("%s %s leaked beta's data: %s", method, path, r.Body)
			}
			checked++
		}
	}
	if checked < 50 {
		t.Fatalf("checked only %d team routes; is openapi.json complete?", checked)
	}
	// Listings show only the caller's team.
	var teams struct{ Items []struct{ Name string } }
	s.mustAs(alpha, 200, "GET", "/api/v1/teams", nil).json(t, &teams)
	if len(teams.Items) != 1 || teams.Items[0].Name != "alpha" {
		t.Errorf("alpha sees teams %v", teams.Items)
	}
	s.mustAs(alpha, 404, "GET", "/api/v1/events?team=beta", nil)
	var evs struct{ Items []struct{ Team string } }
	s.mustAs(alpha, 200, "GET", "/api/v1/events", nil).json(t, &evs)
	for _, e := range evs.Items {
		if e.Team != "alpha" {
			t.Errorf("alpha sees an event of team %q", e.Team)
		}
	}
	if after := snapshot(s, "beta"); after != before {
		t.Errorf("beta's data changed:\nbefore %s\nafter  %s", before, after)
	}
	s.mustAs(ids["beta.secret"], 200, "GET", "/api/v1/teams/beta/apps/web/components/beta-c", nil)
}

func fillPath(p string, ids map[string]string) string {
	r := strings.NewReplacer(
		"{team}", "beta", "{app}", "web", "{component}", "beta-c", "{port}", "80",
		"{member}", "bob", "{number}", "1", "{dependency}", "beta-d", "{host}", "registry.beta.example.com",
		"{instance}", "beta-c-0-abcdef",
	)
	out := r.Replace(p)
	switch {
	case strings.Contains(out, "/envs/{name}"):
		out = strings.Replace(out, "{name}", "MODE", 1)
	case strings.Contains(out, "/volumes/{name}"):
		out = strings.Replace(out, "{name}", "vol1", 1)
	case strings.Contains(out, "/certificates/{name}"):
		out = strings.Replace(out, "{name}", "cert", 1)
	case strings.Contains(out, "/tokens/{id}"):
		out = strings.Replace(out, "{id}", ids["beta.token"], 1)
	case strings.Contains(out, "/http-rules/{id}"):
		out = strings.Replace(out, "{id}", ids["beta.http"], 1)
	case strings.Contains(out, "/tcp-rules/{id}"):
		out = strings.Replace(out, "{id}", ids["beta.tcp"], 1)
	case strings.Contains(out, "/events/{id}"):
		out = strings.Replace(out, "{id}", ids["beta.event"], 1)
	}
	return out
}

// bodyFor is a valid body for a write, so that only access control can
// refuse it.
func bodyFor(path, method string) any {
	if method != "POST" && method != "PATCH" && method != "PUT" {
		return nil
	}
	last := path[strings.LastIndex(path, "/")+1:]
	switch last {
	case "apps":
		return map[string]any{"name": "evil"}
	case "components":
		return map[string]any{"alias": "evil", "image": "nginx"}
	case "members":
		return map[string]any{"name": "evil", "role": "viewer"}
	case "tokens":
		return map[string]any{"name": "evil", "role": "viewer"}
	case "ports":
		return map[string]any{"port": 81}
	case "envs":
		return map[string]any{"name": "EVIL", "value": "1"}
	case "volumes":
		return map[string]any{"path": "/evil"}
	case "dependencies":
		return map[string]any{"component": "beta-d"}
	case "scale":
		return map[string]any{"instances": 0}
	case "rollback":
		return map[string]any{"version": 1}
	case "http-rules":
		return map[string]any{"domain": "evil.example.com", "component": "beta-c", "port": 80}
	case "registries":
		return map[string]any{"host": "evil.example.com"}
	case "tcp-rules":
		return map[string]any{"component": "beta-c", "port": 80}
	case "{member}":
		return map[string]any{"role": "owner"}
	case "{port}":
		return map[string]any{"outer": true}
	case "{name}":
		return map[string]any{"value": "evil"}
	case "{id}":
		return map[string]any{"weight": 1}
	case "{component}":
		return map[string]any{"instances": 0}
	case "{app}":
		return map[string]any{"labels": map[string]string{"evil": "1"}}
	}
	return map[string]any{}
}

// snapshot is everything the admin can read of a team, as one string.
func snapshot(s *server, team string) string {
	base := "/api/v1/teams/" + team
	var parts []string
	for _, p := range []string{"", "/apps", "/apps/web/components", "/members", "/tokens", "/http-rules", "/tcp-rules", "/certificates", "/registries", "/events",
		"/apps/web/components/" + team + "-c/versions", "/apps/web/components/" + team + "-c/dependencies"} {
		r := s.must(200, "GET", base+p, nil)
		var v any
		_ = json.Unmarshal(r.Body, &v)
		stripVolatile(v)
		b, _ := json.Marshal(v)
		parts = append(parts, string(b))
	}
	return strings.Join(parts, "\n")
}

// stripVolatile drops fields that change without a write (token use time).
func stripVolatile(v any) {
	switch x := v.(type) {
	case map[string]any:
		delete(x, "last_used_at")
		for _, e := range x {
			stripVolatile(e)
		}
	case []any:
		for _, e := range x {
			stripVolatile(e)
		}
	}
}

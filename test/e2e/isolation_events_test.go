package e2e

import "testing"

// A team deleted and created again under the same name is another team: it
// must not read the events (and their logs, where builds print) of the
// team that had the name before.
func TestEventsDoNotPassToALaterTeamOfTheSameName(t *testing.T) {
	s := startServer(t)
	setupShop(s)
	s.must(201, "POST", comps, map[string]any{"alias": "api", "kind": "image", "image": "nginx:1.25"})
	var ev struct {
		EventID string `json:"event_id"`
	}
	s.must(202, "POST", comps+"/api/deploy", nil).json(t, &ev)
	s.waitEvent(ev.EventID)

	var del struct {
		EventID string `json:"event_id"`
	}
	s.must(202, "DELETE", "/api/v1/teams/shop", nil).json(t, &del)
	if e := s.waitEvent(del.EventID); e["status"] != "success" {
		t.Fatalf("team delete: %v", e)
	}
	s.must(201, "POST", "/api/v1/teams", map[string]any{"name": "shop"})
	tok := s.teamToken("shop", "owner")

	var list struct{ Items []map[string]any }
	s.mustAs(tok, 200, "GET", "/api/v1/events", nil).json(t, &list)
	if len(list.Items) != 0 {
		t.Fatalf("the new team shop sees %d events of the deleted one: %v", len(list.Items), list.Items)
	}
	s.mustAs(tok, 200, "GET", "/api/v1/teams/shop/events", nil).json(t, &list)
	if len(list.Items) != 0 {
		t.Fatalf("team events route: %d events of the deleted team", len(list.Items))
	}
	s.mustAs(tok, 404, "GET", "/api/v1/events/"+ev.EventID, nil)
	s.mustAs(tok, 404, "GET", "/api/v1/events/"+ev.EventID+"/log", nil)
	// The platform admin keeps the history.
	s.must(200, "GET", "/api/v1/events/"+ev.EventID, nil)
}

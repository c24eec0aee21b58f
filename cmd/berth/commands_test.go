package main

import (
	"net/http"
	"slices"
	"strings"
	"testing"
)

func TestUnknownSubcommandFailsWithSuggestion(t *testing.T) {
	tc := newTestCLI(t, nil)
	for _, tt := range []struct {
		args       []string
		want, hint string
	}{
		{[]string{"component", "show", "web"}, `unknown command "show" for "berth component"`, "get"},
		{[]string{"rule", "http", "lst"}, `unknown command "lst" for "berth rule http"`, "list"},
		{[]string{"app", "show"}, `unknown command "show" for "berth app"`, "get"},
		{[]string{"nope"}, `unknown command "nope" for "berth"`, ""},
	} {
		_, stderr, code := tc.run(tt.args...)
		if code == 0 {
			t.Errorf("berth %s: exit 0, want non-zero", strings.Join(tt.args, " "))
		}
		if !strings.Contains(stderr, tt.want) || !strings.Contains(stderr, "Did you mean this?\n\t"+tt.hint) && tt.hint != "" {
			t.Errorf("berth %s: stderr %q, want %q suggesting %q", strings.Join(tt.args, " "), stderr, tt.want, tt.hint)
		}
	}
	// A group without a word still shows its help and succeeds.
	stdout, _, code := tc.run("component")
	if code != 0 || !strings.Contains(stdout, "Available Commands") {
		t.Errorf("berth component: exit %d, stdout %q", code, stdout)
	}
}

func TestHelpNamesTheRealVerbs(t *testing.T) {
	tc := newTestCLI(t, nil)
	stdout, _, _ := tc.run("--help")
	if strings.Contains(stdout, "show and delete") {
		t.Errorf("help speaks of a verb that does not exist:\n%s", stdout)
	}
}

func TestImagesPrepareTakesPositionalLanguages(t *testing.T) {
	api := newFakeAPI(t)
	api.mux.HandleFunc("POST /api/v1/images/prepare", func(w http.ResponseWriter, r *http.Request) {
		writeJSONTo(w, 202, map[string]any{"event_id": eventOK})
	})
	tc := loggedIn(t, api)
	if _, stderr, code := tc.run("images", "prepare", "go", "--lang", "node", "--detach"); code != 0 {
		t.Fatalf("images prepare go: exit %d: %s", code, stderr)
	}
	req := api.find("POST", "/api/v1/images/prepare")
	if req == nil {
		t.Fatal("no prepare request sent")
	}
	var langs []string
	for _, l := range req.body["languages"].([]any) {
		langs = append(langs, l.(string))
	}
	slices.Sort(langs)
	if !slices.Equal(langs, []string{"go", "node"}) {
		t.Errorf("languages sent %v, want [go node]", langs)
	}
}

func TestTeamDeleteAsksForTheName(t *testing.T) {
	api := newFakeAPI(t)
	api.mux.HandleFunc("DELETE /api/v1/teams/acme", func(w http.ResponseWriter, r *http.Request) {
		writeJSONTo(w, 202, map[string]any{"event_id": eventOK})
	})
	tc := loggedIn(t, api)

	// A script without --yes is refused and nothing is deleted.
	if _, stderr, code := tc.run("team", "delete", "acme"); code == 0 || !strings.Contains(stderr, "--yes") {
		t.Fatalf("without a terminal or --yes: exit %d, stderr %q", code, stderr)
	}
	// On a terminal, a wrong answer keeps the team.
	tc.term = newFakeTerminal()
	if _, stderr, code := tc.runWithInput("y\n", "team", "delete", "acme"); code == 0 || !strings.Contains(stderr, "not deleted") {
		t.Fatalf("answer y: exit %d, stderr %q", code, stderr)
	}
	if api.find("DELETE", "/api/v1/teams/acme") != nil {
		t.Fatal("the team was deleted without confirmation")
	}
	if _, stderr, code := tc.runWithInput("acme\n", "team", "delete", "acme"); code != 0 {
		t.Fatalf("answer acme: exit %d, stderr %q", code, stderr)
	}
	if api.find("DELETE", "/api/v1/teams/acme") == nil {
		t.Fatal("the confirmed delete was not sent")
	}
	tc.term = nil
	if _, stderr, code := tc.run("team", "delete", "acme", "--yes"); code != 0 {
		t.Fatalf("--yes: exit %d, stderr %q", code, stderr)
	}
}

func TestComponentUpdateSendsOnlyTheSourceFieldsGiven(t *testing.T) {
	api := newFakeAPI(t)
	api.mux.HandleFunc("PATCH /api/v1/teams/acme/apps/shop/components/web", func(w http.ResponseWriter, r *http.Request) {
		writeJSONTo(w, 200, webComponent)
	})
	tc := loggedIn(t, api)
	if _, stderr, code := tc.run("component", "update", "web", "--language", "go", "--subdir", "api"); code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	req := api.find("PATCH", "/api/v1/teams/acme/apps/shop/components/web")
	if req == nil {
		t.Fatal("no PATCH sent")
	}
	src, _ := req.body["source"].(map[string]any)
	if len(req.body) != 1 || len(src) != 2 || src["language"] != "go" || src["subdir"] != "api" {
		t.Errorf("PATCH body %v, want only source.language and source.subdir", req.body)
	}
}

func TestComponentDeleteFollowsItsEvent(t *testing.T) {
	api := newFakeAPI(t)
	api.mux.HandleFunc("DELETE /api/v1/teams/acme/apps/shop/components/web", func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Query().Get("keep_volumes") != "1" {
			t.Errorf("keep_volumes not sent: %s", r.URL.RawQuery)
		}
		writeJSONTo(w, 202, map[string]any{"event_id": eventOK})
	})
	tc := loggedIn(t, api)
	stdout, stderr, code := tc.run("component", "delete", "web", "--keep-volumes")
	if code != 0 || !strings.Contains(stdout+stderr, "instances ready") {
		t.Fatalf("exit %d: the event's log was not followed:\n%s%s", code, stdout, stderr)
	}
}

func TestInstancesOfAWaitingComponentSayWhom(t *testing.T) {
	api := newFakeAPI(t)
	api.mux.HandleFunc("GET /api/v1/teams/acme/apps/shop/components/api/instances", func(w http.ResponseWriter, r *http.Request) {
		writeJSONTo(w, 200, map[string]any{"items": []any{}, "status": "waiting", "waiting_for": []string{"db"}})
	})
	api.mux.HandleFunc("GET /api/v1/teams/acme/apps/shop/components/api", func(w http.ResponseWriter, r *http.Request) {
		writeJSONTo(w, 200, map[string]any{"alias": "api", "app": "shop", "team": "acme", "kind": "image", "status": "waiting",
			"status_message": "waiting for db (starting); it starts by itself once they are ready", "instances": []any{}})
	})
	tc := loggedIn(t, api)
	stdout, stderr, code := tc.run("instances", "api")
	if code != 0 || !strings.Contains(stdout, "waiting for db") || strings.Contains(stdout, "once deployed and started") {
		t.Fatalf("exit %d:\n%s%s", code, stdout, stderr)
	}
}

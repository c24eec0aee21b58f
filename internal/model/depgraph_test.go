package model

import (
	"strings"
	"testing"
)

func TestCycleWith(t *testing.T) {
	deps := []Dependency{{From: "web", To: "api"}, {From: "api", To: "db"}}
	if c := CycleWith(deps, "web", "db"); c != nil {
		t.Fatalf("web->db closes no cycle, got %v", c)
	}
	if c := strings.Join(CycleWith(deps, "db", "web"), " -> "); c != "db -> web -> api -> db" {
		t.Fatalf("got %q", c)
	}
	if c := strings.Join(CycleWith(nil, "a", "a"), " -> "); c != "a -> a" {
		t.Fatalf("self dependency: got %q", c)
	}
}

package e2e

import (
	"strings"
	"testing"
	"time"
)

// Kill berth with SIGKILL while tasks are queued and running, start it
// again: every task finishes exactly once, nothing is lost, and the events
// of interrupted tasks say they were resumed.
func TestSIGKILLWhileTasksRun(t *testing.T) {
	s := startServer(t, "--debug-task-delay", "700ms", "--workers", "2")
	setupShop(s)
	aliases := []string{"a", "b", "c"}
	for _, a := range aliases {
		s.must(201, "POST", comps, map[string]any{"alias": a, "image": "nginx"})
	}
	type op struct {
		path string
		body any
	}
	var events []string
	// Four operations per component; tasks of one component run in order.
	for _, o := range []op{{"deploy", nil}, {"scale", map[string]any{"instances": 3}}, {"stop", nil}, {"deploy", nil}} {
		for _, a := range aliases {
			var acc struct {
				EventID string `json:"event_id"`
			}
			s.must(202, "POST", comps+"/"+a+"/"+o.path, o.body).json(t, &acc)
			events = append(events, acc.EventID)
		}
	}
	// Let the first tasks get halfway.
	time.Sleep(1000 * time.Millisecond)
	var queued struct{ Items []map[string]any }
	s.must(200, "GET", "/api/v1/events?status=running", nil).json(t, &queued)
	if len(queued.Items) < 6 {
		t.Fatalf("only %d events still running before the kill; the test needs queued and running ones", len(queued.Items))
	}
	s.kill()

	s.args = []string{"--runtime", "none"} // the second life runs at full speed
	s.start()
	resumed := 0
	for _, id := range events {
		ev := s.waitEvent(id)
		if ev["status"] != "success" {
			t.Errorf("event %s ended %v: %v", id, ev["status"], ev)
		}
		var hist struct{ Lines []struct{ Text string } }
		s.must(200, "GET", "/api/v1/events/"+id+"/log", nil).json(t, &hist)
		outcomes := 0
		for _, l := range hist.Lines {
			if strings.HasSuffix(l.Text, " succeeded") || strings.Contains(l.Text, " failed: ") {
				outcomes++
			}
			if strings.Contains(l.Text, "berth restarted while this") {
				resumed++
			}
		}
		if outcomes != 1 {
			t.Errorf("event %s has %d outcome lines, want exactly 1: %v", id, outcomes, hist.Lines)
		}
	}
	if resumed == 0 {
		t.Errorf("no event says it was resumed; the kill landed between tasks")
	}
	for _, a := range aliases {
		var c map[string]any
		s.must(200, "GET", comps+"/"+a, nil).json(t, &c)
		if c["replicas"] != 3.0 || c["deploy_version"].(float64) < 2 || c["status"] == "closed" {
			t.Errorf("component %s after recovery: replicas %v version %v", a, c["replicas"], c["deploy_version"])
		}
		var vs struct{ Items []any }
		s.must(200, "GET", comps+"/"+a+"/versions", nil).json(t, &vs)
		if len(vs.Items) != 2 {
			t.Errorf("component %s has %d versions, want 2: a resumed deploy recorded its version twice, or one was lost", a, len(vs.Items))
		}
	}
	var running struct{ Items []any }
	s.must(200, "GET", "/api/v1/events?status=running", nil).json(t, &running)
	if len(running.Items) != 0 {
		t.Errorf("%d events still running", len(running.Items))
	}
}

package e2e

import (
	"strings"
	"testing"
	"time"
)

// deployAsync asks for a deploy and returns its event id without waiting.
func (s *server) deployAsync(alias string) string {
	s.t.Helper()
	var acc struct {
		EventID string `json:"event_id"`
	}
	s.must(202, "POST", comps+"/"+alias+"/deploy", nil).json(s.t, &acc)
	return acc.EventID
}

// A deploy says "succeeded" only for instances that stay ready: one that
// exits after 3 s, one that the memory limit kills, and one whose port
// nobody listens on all fail with the instance's reason; a component
// waiting for the last one says whom it waits for, in its instances and
// in the gateway's 503.
func TestDeployOutcomesAreHonest(t *testing.T) {
	requireRuntime(t)
	image := pushBusybox(t)
	var s *server
	flags := runtimeFlags(t, func() string { return s.data })
	// The closed-port deploy ends on the ready deadline: a short one keeps
	// the test from waiting the default 5 minutes.
	s = startServer(t, append(flags, "--ready-timeout", "60s")...)
	setupShop(s)
	s.must(201, "POST", comps, map[string]any{"alias": "crash", "image": image, "settle_seconds": 5,
		"cmd": []string{"sh", "-c", "echo up and about; sleep 3; echo giving up; exit 3"}})
	s.must(201, "POST", comps, map[string]any{"alias": "hog", "image": image, "memory": "16Mi",
		"cmd": []string{"sh", "-c", `echo allocating; x=$(head -c 67108864 /dev/zero | tr '\000' a); sleep 600`}})
	s.must(201, "POST", comps, map[string]any{"alias": "deaf", "image": image, "settle_seconds": 1,
		"cmd":   []string{"sleep", "3600"},
		"ports": []map[string]any{{"port": 8080, "protocol": "http", "inner": true}}})
	s.must(201, "POST", comps, map[string]any{"alias": "front", "image": image, "cmd": []string{"httpd", "-f", "-p", "8080"},
		"ports": []map[string]any{{"port": 8080, "protocol": "http", "inner": true, "outer": true}}})
	s.must(201, "POST", comps+"/front/dependencies", map[string]any{"component": "deaf"})
	var c struct {
		SettleSeconds int `json:"settle_seconds"`
	}
	s.must(200, "GET", comps+"/hog", nil).json(t, &c)
	if c.SettleSeconds != 10 {
		t.Errorf("default settle_seconds %d, want 10", c.SettleSeconds)
	}
	if r := s.do(s.token, "PATCH", comps+"/hog", map[string]any{"settle_seconds": -1}); r.Status != 422 && r.Status != 400 {
		t.Errorf("settle_seconds -1: %d %s", r.Status, r.Body)
	}

	crash, hog, deaf := s.deployAsync("crash"), s.deployAsync("hog"), s.deployAsync("deaf")
	front := s.deployAsync("front")

	ev := s.waitEventFor(crash, 90*time.Second)
	msg, _ := ev["message"].(string)
	if ev["status"] != "failure" || ev["reason"] != "CrashLoopBackOff" || !strings.Contains(msg, "exited with code 3") || !strings.Contains(msg, "giving up") {
		t.Errorf("deploy of a process that exits after 3 s: %v\n%s", ev, s.eventLog(crash))
	}

	ev = s.waitEventFor(hog, 90*time.Second)
	msg, _ = ev["message"].(string)
	if ev["status"] != "failure" || ev["reason"] != "OOMKilled" || !strings.Contains(msg, "16Mi") {
		t.Errorf("deploy of a process over its memory limit: %v\n%s", ev, s.eventLog(hog))
	}

	// front waits for deaf, which never gets ready: its instances and the
	// gateway say so and name deaf.
	s.waitEventFor(front, 30*time.Second)
	var list struct {
		Items      []instanceView
		Status     string
		Message    string
		WaitingFor []string `json:"waiting_for"`
	}
	s.must(200, "GET", comps+"/front/instances", nil).json(t, &list)
	if list.Status != "waiting" || len(list.WaitingFor) != 1 || list.WaitingFor[0] != "deaf" || !strings.Contains(list.Message, "deaf") {
		t.Errorf("instances of a waiting component: %+v", list)
	}
	gw := s.gatewayClient(nil)
	deadline := time.Now().Add(15 * time.Second)
	for {
		a := s.gatewayDo(gw, "GET", "http://front-8080-shop.berth.test/", map[string]string{"Accept": "application/json"})
		if a.Status == 503 && strings.Contains(a.Body, "dependencies") && strings.Contains(a.Body, "deaf") {
			break
		}
		if time.Now().After(deadline) {
			t.Errorf("gateway for a waiting component: %d %s", a.Status, a.Body)
			break
		}
		time.Sleep(500 * time.Millisecond)
	}

	// An instance that cannot fit says so at once, in the deploy's log and
	// as the component's status, with the ask and what is free.
	s.must(201, "POST", comps, map[string]any{"alias": "huge", "image": image, "memory": "4000Gi", "cmd": []string{"sleep", "3600"}})
	huge := s.deployAsync("huge")
	h := s.waitComponent("huge", 30*time.Second, func(c componentState) bool { return c.Status == "scheduling" })
	if !strings.Contains(h.StatusMessage, "Insufficient memory") || !strings.Contains(h.StatusMessage, "4000Gi") {
		t.Errorf("status of a component that does not fit: %+v", h)
	}
	deadline = time.Now().Add(15 * time.Second)
	for log := ""; !strings.Contains(log, "cannot be scheduled") || !strings.Contains(log, "asks 4000Gi"); log = s.eventLog(huge) {
		if time.Now().After(deadline) {
			t.Errorf("deploy log of a component that does not fit:\n%s", log)
			break
		}
		time.Sleep(500 * time.Millisecond)
	}
	s.deleteAndWait(comps + "/huge")

	// deaf's instance runs but nothing answers on 8080: it is not ready,
	// and the deploy ends failed on the ready deadline, never "succeeded".
	d := s.waitComponent("deaf", 30*time.Second, func(c componentState) bool {
		return len(c.Instances) == 1 && c.Instances[0].Reason == "ReadinessProbeFailed"
	})
	if d.Status == "running" {
		t.Errorf("deaf is %s although its port is closed", d.Status)
	}
	ev = s.waitEventFor(deaf, 3*time.Minute)
	if ev["status"] != "failure" {
		t.Errorf("deploy of a component nobody answers on its port: %v\n%s", ev, s.eventLog(deaf))
	}
	for _, alias := range []string{"front", "deaf", "hog", "crash"} {
		s.deleteAndWait(comps + "/" + alias)
	}
}

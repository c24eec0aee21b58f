package probe

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"

	"github.com/berth-platform/berth/internal/model"
)

func TestChecks(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/bad" {
			w.WriteHeader(500)
		}
	}))
	defer srv.Close()
	_, portStr, _ := net.SplitHostPort(strings.TrimPrefix(srv.URL, "http://"))
	port, _ := strconv.Atoi(portStr)
	ctx := context.Background()
	if err := Check(ctx, &model.Probe{Type: model.ProbeHTTP, Port: port, Path: "/ok"}, "127.0.0.1", nil); err != nil {
		t.Fatal(err)
	}
	if err := Check(ctx, &model.Probe{Type: model.ProbeHTTP, Port: port, Path: "/bad"}, "127.0.0.1", nil); err == nil || !strings.Contains(err.Error(), "answered 500") {
		t.Fatalf("want a 500 failure, got %v", err)
	}
	if err := Check(ctx, &model.Probe{Type: model.ProbeTCP, Port: port}, "127.0.0.1", nil); err != nil {
		t.Fatal(err)
	}
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	closed := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	if err := Check(ctx, &model.Probe{Type: model.ProbeTCP, Port: closed}, "127.0.0.1", nil); err == nil || !strings.Contains(err.Error(), "refused") {
		t.Fatalf("want connection refused, got %v", err)
	}
	exec := func(_ context.Context, cmd []string) (int, error) { return len(cmd) - 1, nil }
	if err := Check(ctx, &model.Probe{Type: model.ProbeExec, Command: []string{"true"}}, "", exec); err != nil {
		t.Fatal(err)
	}
	if err := Check(ctx, &model.Probe{Type: model.ProbeExec, Command: []string{"false", "x"}}, "", exec); err == nil {
		t.Fatal("exit 1 must fail")
	}
}

func TestTrackerThresholds(t *testing.T) {
	tr := NewTracker(&model.Probe{FailureThreshold: 3, SuccessThreshold: 2}, true)
	fail := errors.New("down")
	if !tr.Observe(fail) || !tr.Observe(fail) {
		t.Fatal("flipped before 3 failures")
	}
	if tr.Observe(fail) {
		t.Fatal("still ok after 3 failures")
	}
	if tr.Observe(nil) {
		t.Fatal("ok after 1 success; threshold is 2")
	}
	if !tr.Observe(nil) {
		t.Fatal("not ok after 2 successes")
	}
}

package buildkit

import (
	"strings"
	"testing"
	"time"

	"github.com/moby/buildkit/client"
	digest "github.com/opencontainers/go-digest"
)

// TestTrackerLines feeds the tracker the kind of repeated, partial
// updates buildkitd sends and checks the lines said once each.
func TestTrackerLines(t *testing.T) {
	var got []Line
	tr := newTracker(func(l Line) { got = append(got, l) })
	t0 := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	at := func(s float64) *time.Time { x := t0.Add(time.Duration(s * float64(time.Second))); return &x }
	from, run, meta := digest.FromString("from"), digest.FromString("run"), digest.FromString("meta")

	tr.update(&client.SolveStatus{Vertexes: []*client.Vertex{
		{Digest: meta, Name: "[internal] load metadata for 127.0.0.1:5000/base:latest", Started: at(0)},
		{Digest: from, Name: "[1/2] FROM 127.0.0.1:5000/base:latest"},
		{Digest: run, Name: "[build 2/2] RUN go build ./..."},
	}})
	tr.update(&client.SolveStatus{Vertexes: []*client.Vertex{
		{Digest: meta, Name: "[internal] load metadata for 127.0.0.1:5000/base:latest", Started: at(0), Completed: at(0.5)},
		{Digest: from, Name: "[1/2] FROM 127.0.0.1:5000/base:latest", Started: at(1), Completed: at(1), Cached: true},
		{Digest: run, Name: "[build 2/2] RUN go build ./...", Started: at(1)},
	}})
	tr.update(&client.SolveStatus{Logs: []*client.VertexLog{
		{Vertex: run, Data: []byte("go: downloading x\n./main.go:3:2: undef"), Timestamp: *at(2)},
		{Vertex: run, Stream: 2, Data: []byte("warning\n"), Timestamp: *at(2)},
	}})
	tr.update(&client.SolveStatus{Logs: []*client.VertexLog{
		{Vertex: run, Data: []byte("ined: foo\nno newline"), Timestamp: *at(3)},
	}})
	tr.update(&client.SolveStatus{Vertexes: []*client.Vertex{
		{Digest: run, Name: "[build 2/2] RUN go build ./...", Started: at(1), Completed: at(4), Error: "process \"/bin/sh -c go build ./...\" did not complete successfully: exit code: 1"},
	}})
	tr.finish()

	var text []string
	for _, l := range got {
		text = append(text, l.Text)
	}
	want := []string{
		"#1 [internal] load metadata for 127.0.0.1:5000/base:latest",
		"#1 DONE 0.5s",
		"#2 [1/2] FROM 127.0.0.1:5000/base:latest",
		"#2 CACHED",
		"#3 [build 2/2] RUN go build ./...",
		"#3 1.000 go: downloading x",
		"#3 1.000 warning",
		"#3 2.000 ./main.go:3:2: undefined: foo",
		"#3 3.000 no newline",
		"#3 ERROR: process \"/bin/sh -c go build ./...\" did not complete successfully: exit code: 1",
	}
	if strings.Join(text, "\n") != strings.Join(want, "\n") {
		t.Errorf("lines:\n%s\nwant:\n%s", strings.Join(text, "\n"), strings.Join(want, "\n"))
	}
	steps, cached := tr.counts()
	if steps != 1 || cached != 0 {
		t.Errorf("counts %d/%d, want 1 step (FROM does not count), none cached", steps, cached)
	}
	f := tr.failed()
	if f == nil || f.name != "[build 2/2] RUN go build ./..." {
		t.Fatalf("failed step %+v", f)
	}
	if strings.Join(f.output(), "|") != "go: downloading x|warning|./main.go:3:2: undefined: foo|no newline" {
		t.Errorf("tail %q", f.output())
	}
}

func TestRenderConfig(t *testing.T) {
	cfg := NewDaemon(DaemonConfig{Registries: []RegistryConfig{
		{Host: "127.0.0.1:5000", PlainHTTP: true, Insecure: true},
		{Host: "docker.io", Mirrors: []string{"mirror.example.com"}},
	}}).cfg
	cfg.NetworkMode = NetworkHost
	got, err := renderConfig(cfg, "/data/buildkit/root", "unix:///data/buildkit/buildkitd.sock", nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		`root = "/data/buildkit/root"`,
		`address = ["unix:///data/buildkit/buildkitd.sock"]`,
		"[worker.oci]\n  enabled = true\n  snapshotter = \"overlayfs\"\n  networkMode = \"host\"\n  gc = true\n  maxUsedSpace = \"20GB\"",
		"[worker.containerd]\n  enabled = false",
		"[registry.\"127.0.0.1:5000\"]\n  http = true\n  insecure = true",
		"[registry.\"docker.io\"]\n  mirrors = [\"mirror.example.com\"]",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("config lacks %q:\n%s", want, got)
		}
	}
	cfg.Registries = []RegistryConfig{{Host: "http://x"}}
	if _, err := renderConfig(cfg, "/r", "unix:///s", nil); err == nil {
		t.Error("a URL as registry host was accepted")
	}
}

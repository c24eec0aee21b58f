package worker

import (
	"testing"

	"github.com/berth-platform/berth/internal/build/buildkit"
)

// The runner stage starts while the builder still compiles; "code build
// success" must wait for the builder's last step, and never come for a
// build whose compiler fails.
func TestCodeStagesFollowTheBuildersLastStep(t *testing.T) {
	line := func(kind buildkit.LineKind, step string) buildkit.Line {
		return buildkit.Line{Kind: kind, Step: step}
	}
	c := newCodeStages([]string{"builder", "runtime"})
	for _, l := range []buildkit.Line{
		line(buildkit.LineStart, "[runtime 1/3] FROM docker.io/library/debian"),
		line(buildkit.LineDone, "[runtime 1/3] FROM docker.io/library/debian"),
		line(buildkit.LineCached, "[builder 1/4] FROM golang"),
		line(buildkit.LineDone, "[builder 3/4] RUN go mod download"),
		line(buildkit.LineStart, "[builder 4/4] RUN go build"),
		line(buildkit.LineError, "[builder 4/4] RUN go build"),
	} {
		if c.done(l) {
			t.Fatalf("code reported built at %q", l.Step)
		}
	}
	if !c.done(line(buildkit.LineDone, "[builder 4/4] RUN go build")) {
		t.Fatal("the builder's last step finished: the code is built")
	}

	two := newCodeStages([]string{"deps", "builder", "runtime"})
	if two.done(line(buildkit.LineCached, "[deps 2/2] RUN npm ci")) || !two.done(line(buildkit.LineCached, "[builder 3/3] RUN npm run build")) {
		t.Fatal("every stage before the image's must be finished, cached ones included")
	}
	if newCodeStages([]string{"runtime"}).done(line(buildkit.LineDone, "[runtime 2/2] COPY . .")) {
		t.Fatal("a one-stage plan has no code stage to report")
	}
}

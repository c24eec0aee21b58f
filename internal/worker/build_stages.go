package worker

import "github.com/berth-platform/berth/internal/build/buildkit"

// codeStages tells when the stages before the image's own have finished,
// which is when "code build success" is true. BuildKit runs the runner
// stage's steps (its FROM, its COPY of static files) in parallel with the
// builder's, so the runner starting says nothing: a stage is done when its
// last step is (BuildKit runs a stage's steps in order).
type codeStages struct {
	pending map[string]bool
}

func newCodeStages(stages []string) *codeStages {
	c := &codeStages{pending: map[string]bool{}}
	for _, s := range stages[:max(len(stages)-1, 0)] {
		c.pending[s] = true
	}
	return c
}

// done reports whether l finished the last pending code stage.
func (c *codeStages) done(l buildkit.Line) bool {
	if len(c.pending) == 0 || l.Kind != buildkit.LineDone && l.Kind != buildkit.LineCached {
		return false
	}
	stage, step, of, ok := l.Position()
	if !ok || !c.pending[stage] || step != of {
		return false
	}
	delete(c.pending, stage)
	return len(c.pending) == 0
}

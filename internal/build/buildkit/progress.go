package buildkit

import (
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/moby/buildkit/client"
	digest "github.com/opencontainers/go-digest"
)

// LineKind says what a progress line reports.
type LineKind int

const (
	LineStart   LineKind = iota // a step began: "#5 [build 2/4] RUN go build"
	LineLog                     // output of a step: "#5 1.204 go: downloading ..."
	LineCached                  // the step's result came from the cache: "#5 CACHED"
	LineStatus                  // a sub-task finished: "#8 pushing layers 1.2s done"
	LineDone                    // the step finished: "#5 DONE 3.1s"
	LineError                   // the step failed: "#5 ERROR: process ... exit code: 1"
	LineWarning                 // a Dockerfile lint warning: "#1 WARN: ..."
)

// Line is one line of build progress in the format of buildctl's plain
// output, which users know from `docker build --progress=plain`.
type Line struct {
	Vertex int       // the step's number (#N) in this build
	Step   string    // the step's name, e.g. "[build 2/4] RUN go build ./..."
	Kind   LineKind  //
	Text   string    // the whole line, e.g. "#5 0.352 hello"
	Time   time.Time // when buildkitd reported it
}

func (l Line) String() string { return l.Text }

// stepName matches the vertices that are Dockerfile instructions
// ("[2/4] RUN ..." or "[build 2/4] RUN ..."), as opposed to BuildKit's
// own work ("[internal] load metadata", "exporting to image").
var stepName = regexp.MustCompile(`^\[(?:([^\]]+) )?(\d+)/(\d+)\] `)

// Position reads a Dockerfile instruction's place from its step name:
// "[build 4/5] RUN go build" is step 4 of the 5 of stage "build" (stage ""
// for a one-stage Dockerfile); ok is false for BuildKit's own work.
func (l Line) Position() (stage string, step, of int, ok bool) {
	m := stepName.FindStringSubmatch(l.Step)
	if m == nil {
		return "", 0, 0, false
	}
	step, _ = strconv.Atoi(m[2])
	of, _ = strconv.Atoi(m[3])
	return m[1], step, of, true
}

// tailLines is how many lines of a step's output a BuildError keeps, and
// errLines how many of them are reserved for the step's last stderr lines.
const (
	tailLines = 30
	errLines  = 10
)

// vertex is what the tracker knows about one step.
type vertex struct {
	index     int
	name      string
	started   *time.Time
	cached    bool
	completed bool
	err       string
	partial   map[int]string // unterminated output per stream
	tail      []tailLine     // last tailLines lines of output
	errTail   []tailLine     // last errLines lines of stderr
	seq       int            // lines of output so far
	statuses  map[string]bool
}

// tailLine is a line of a step's output, when buildkitd read it and in
// which order it arrived.
type tailLine struct {
	at   time.Time
	seq  int
	text string
}

// tracker turns BuildKit's status updates, which repeat a vertex each time
// something about it changes, into lines said once, and remembers each
// step's last output for the error of a failed build.
type tracker struct {
	emit     func(Line)
	byDigest map[digest.Digest]*vertex
	order    []*vertex
}

func newTracker(emit func(Line)) *tracker {
	if emit == nil {
		emit = func(Line) {}
	}
	return &tracker{emit: emit, byDigest: map[digest.Digest]*vertex{}}
}

func (t *tracker) vertex(d digest.Digest) *vertex {
	v := t.byDigest[d]
	if v == nil {
		v = &vertex{partial: map[int]string{}, statuses: map[string]bool{}}
		t.byDigest[d] = v
	}
	return v
}

// start numbers a vertex when it first does something visible, so the
// numbers follow the order in which the user sees the steps.
func (t *tracker) start(v *vertex, at time.Time) {
	if v.index != 0 {
		return
	}
	t.order = append(t.order, v)
	v.index = len(t.order)
	t.line(v, LineStart, v.name, at)
}

func (t *tracker) line(v *vertex, kind LineKind, text string, at time.Time) {
	t.emit(Line{Vertex: v.index, Step: v.name, Kind: kind, Text: fmt.Sprintf("#%d %s", v.index, text), Time: at})
}

func (t *tracker) update(s *client.SolveStatus) {
	for _, sv := range s.Vertexes {
		v := t.vertex(sv.Digest)
		if sv.Name != "" {
			v.name = sv.Name
		}
		if sv.Started != nil && v.started == nil {
			v.started = sv.Started
		}
		if sv.Started == nil && !sv.Cached && sv.Completed == nil {
			continue // known but not begun: the user sees it when it starts
		}
		at := time.Now()
		if sv.Started != nil {
			at = *sv.Started
		}
		t.start(v, at)
		if sv.Cached && !v.cached {
			v.cached = true
			t.line(v, LineCached, "CACHED", at)
		}
		if sv.Completed != nil && !v.completed {
			v.completed = true
			t.flush(v, *sv.Completed)
			switch {
			case sv.Error != "":
				v.err = sv.Error
				t.line(v, LineError, "ERROR: "+sv.Error, *sv.Completed)
			case !v.cached:
				took := time.Duration(0)
				if v.started != nil {
					took = sv.Completed.Sub(*v.started)
				}
				t.line(v, LineDone, fmt.Sprintf("DONE %.1fs", took.Seconds()), *sv.Completed)
			}
		}
	}
	for _, st := range s.Statuses {
		if st.Completed == nil {
			continue
		}
		v := t.vertex(st.Vertex)
		if v.statuses[st.ID] {
			continue
		}
		v.statuses[st.ID] = true
		t.start(v, st.Timestamp)
		text := st.ID
		if st.Total > 0 {
			text += fmt.Sprintf(" %s / %s", size(st.Current), size(st.Total))
		} else if st.Current > 0 {
			text += " " + size(st.Current)
		}
		if st.Started != nil {
			text += fmt.Sprintf(" %.1fs", st.Completed.Sub(*st.Started).Seconds())
		}
		t.line(v, LineStatus, text+" done", *st.Completed)
	}
	for _, l := range s.Logs {
		v := t.vertex(l.Vertex)
		t.start(v, l.Timestamp)
		text := v.partial[l.Stream] + string(l.Data)
		lines := strings.Split(text, "\n")
		v.partial[l.Stream] = lines[len(lines)-1]
		for _, ln := range lines[:len(lines)-1] {
			t.output(v, l.Stream, strings.TrimSuffix(ln, "\r"), l.Timestamp)
		}
	}
	for _, w := range s.Warnings {
		v := t.vertex(w.Vertex)
		t.start(v, time.Now())
		t.line(v, LineWarning, "WARN: "+string(w.Short), time.Now())
	}
}

// flush says the unterminated output of a step that ended.
func (t *tracker) flush(v *vertex, at time.Time) {
	for stream, rest := range v.partial {
		if rest != "" {
			t.output(v, stream, rest, at)
		}
		delete(v.partial, stream)
	}
}

func (t *tracker) output(v *vertex, stream int, text string, at time.Time) {
	v.seq++
	l := tailLine{at: at, seq: v.seq, text: text}
	v.tail = append(v.tail, l)
	if len(v.tail) > tailLines {
		v.tail = v.tail[len(v.tail)-tailLines:]
	}
	if stream == 2 {
		v.errTail = append(v.errTail, l)
		if len(v.errTail) > errLines {
			v.errTail = v.errTail[len(v.errTail)-errLines:]
		}
	}
	rel := 0.0
	if v.started != nil {
		rel = at.Sub(*v.started).Seconds()
	}
	t.line(v, LineLog, fmt.Sprintf("%.3f %s", rel, text), at)
}

// finish says what is still unterminated when the build ends.
func (t *tracker) finish() {
	for _, v := range t.order {
		t.flush(v, time.Now())
	}
}

// output is the step's last lines of output. stdout and stderr reach
// the client as separate streams, and a compiler's last words on stderr
// can arrive before the stdout that preceded them: a long stdout must not
// push them out, so the last stderr lines always stay. Lines are ordered
// by the time buildkitd read them.
func (v *vertex) output() []string {
	picked := map[int]tailLine{}
	for _, l := range v.errTail {
		picked[l.seq] = l
	}
	for i := len(v.tail) - 1; i >= 0 && len(picked) < tailLines; i-- {
		picked[v.tail[i].seq] = v.tail[i]
	}
	lines := slices.Collect(maps.Values(picked))
	slices.SortFunc(lines, func(a, b tailLine) int {
		if c := a.at.Compare(b.at); c != 0 {
			return c
		}
		return a.seq - b.seq
	})
	out := make([]string, len(lines))
	for i, l := range lines {
		out[i] = l.text
	}
	return out
}

// fromStep matches a stage's FROM, which BuildKit resolves and reports
// done but never as cached, also when nothing changed.
var fromStep = regexp.MustCompile(`^\[(?:[^\]]+ )?\d+/\d+\] FROM `)

// counts are the Dockerfile steps of the build that make file system
// changes (all but FROM) and how many of them came from the cache.
func (t *tracker) counts() (steps, cached int) {
	for _, v := range t.order {
		if !stepName.MatchString(v.name) || fromStep.MatchString(v.name) {
			continue
		}
		steps++
		if v.cached {
			cached++
		}
	}
	return steps, cached
}

// failed is the step that broke the build: the first one with an error of
// its own, preferring an instruction over BuildKit's own work, and any
// failure over the cancellations that follow it.
func (t *tracker) failed() *vertex {
	var best *vertex
	score := func(v *vertex) int {
		s := 1
		if !strings.Contains(v.err, "context canceled") && !strings.Contains(v.err, "canceled") {
			s += 2
		}
		if stepName.MatchString(v.name) {
			s++
		}
		return s
	}
	for _, v := range t.order {
		if v.err == "" {
			continue
		}
		if best == nil || score(v) > score(best) {
			best = v
		}
	}
	return best
}

func size(n int64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.2fGB", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.2fMB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.2fkB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%dB", n)
}

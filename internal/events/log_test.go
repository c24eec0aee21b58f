package events

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/berth-platform/berth/internal/model"
)

// memStorage is an in-memory Storage for unit tests; the real store has its
// own suite.
type memStorage struct {
	mu     sync.Mutex
	events map[string]*model.Event
	lines  map[string][]model.LogLine
}

func newMem() *memStorage {
	return &memStorage{events: map[string]*model.Event{}, lines: map[string][]model.LogLine{}}
}

func (m *memStorage) GetEvent(_ context.Context, id string) (*model.Event, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	e, ok := m.events[id]
	if !ok {
		return nil, model.ErrNotFound
	}
	c := *e
	return &c, nil
}

func (m *memStorage) UpdateEvent(_ context.Context, e *model.Event) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	c := *e
	m.events[e.ID] = &c
	return nil
}

func (m *memStorage) AppendLog(_ context.Context, id string, lines []model.LogLine) ([]model.LogLine, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for i := range lines {
		lines[i].Seq = int64(len(m.lines[id]) + 1)
		m.lines[id] = append(m.lines[id], lines[i])
	}
	return lines, nil
}

func (m *memStorage) ReadLog(_ context.Context, id string, after int64, limit int) ([]model.LogLine, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []model.LogLine
	for _, l := range m.lines[id] {
		if l.Seq > after && len(out) < limit {
			out = append(out, l)
		}
	}
	return out, nil
}

// A follower that joins midway sees every line exactly once, in order, and
// returns when the event ends.
func TestFollowNoGapNoDuplicate(t *testing.T) {
	ctx := context.Background()
	mem := newMem()
	mem.events["ev"] = &model.Event{ID: "ev", Status: model.EventRunning}
	log := NewLog(mem)
	const total = 2000
	for i := 1; i <= 700; i++ {
		log.Printf(ctx, "ev", "", "line %d", i)
	}
	done := make(chan struct{})
	var got []int64
	var followErr error
	var final *model.Event
	go func() {
		defer close(done)
		final, followErr = log.Follow(ctx, "ev", 0, func(l model.LogLine) error {
			got = append(got, l.Seq)
			return nil
		})
	}()
	for i := 701; i <= total; i++ {
		log.Printf(ctx, "ev", "", "line %d", i)
	}
	if err := log.Finish(ctx, "ev", model.EventSuccess, "", "done"); err != nil {
		t.Fatal(err)
	}
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("follower did not return after the event ended")
	}
	if followErr != nil {
		t.Fatal(followErr)
	}
	if final.Status != model.EventSuccess {
		t.Fatalf("final status %q", final.Status)
	}
	if len(got) != total {
		t.Fatalf("got %d lines, want %d", len(got), total)
	}
	for i, seq := range got {
		if seq != int64(i+1) {
			t.Fatalf("line %d has seq %d: gap or duplicate", i, seq)
		}
	}
}

func TestFollowAfterResumes(t *testing.T) {
	ctx := context.Background()
	mem := newMem()
	mem.events["ev"] = &model.Event{ID: "ev", Status: model.EventSuccess}
	log := NewLog(mem)
	for i := 1; i <= 10; i++ {
		if err := log.Append(ctx, "ev", model.LogLine{Text: fmt.Sprint(i)}); err != nil {
			t.Fatal(err)
		}
	}
	var got []string
	if _, err := log.Follow(ctx, "ev", 7, func(l model.LogLine) error {
		got = append(got, l.Text)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(got) != "[8 9 10]" {
		t.Fatalf("got %v", got)
	}
}

func TestFollowStopsOnContext(t *testing.T) {
	mem := newMem()
	mem.events["ev"] = &model.Event{ID: "ev", Status: model.EventRunning}
	log := NewLog(mem)
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	if _, err := log.Follow(ctx, "ev", 0, func(model.LogLine) error { return nil }); err == nil {
		t.Fatal("want the context's error")
	}
}

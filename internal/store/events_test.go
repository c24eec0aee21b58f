package store

import (
	"encoding/json"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/berth-platform/berth/internal/model"
)

func TestEvents(t *testing.T) {
	each(t, func(t *testing.T, s Store) {
		t0 := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
		mk := func(team, target string, status model.EventStatus, minutes int) *model.Event {
			e := &model.Event{Team: team, Type: "deploy", Target: target, Status: status,
				CreatedAt: t0.Add(time.Duration(minutes) * time.Minute)}
			must(t, s.CreateEvent(bg, e, nil))
			return e
		}
		a := mk("shop", "component:shop/web/api", model.EventSuccess, 1)
		b := mk("shop", "component:shop/web/db", model.EventRunning, 2)
		c := mk("shop", "app:shop/web", model.EventFailure, 3)
		d := mk("blog", "component:blog/web/api", model.EventRunning, 4)
		// The target filter is a case-sensitive prefix, with no wildcards.
		e := mk("shop", "COMPONENT:shop/web/x", model.EventRunning, 5)
		f := mk("shop", "component:shop%web", model.EventRunning, 6)

		got, err := s.GetEvent(bg, a.ID)
		must(t, err)
		same(t, "event", *got, *a)
		_, err = s.GetEvent(bg, "nope")
		wantErr(t, err, model.ErrNotFound, `event "nope": not found`)
		wantErr(t, s.CreateEvent(bg, &model.Event{ID: a.ID}, nil), model.ErrConflict, `event "`+a.ID+`" already exists: conflict`)

		ids := func(f model.EventFilter) []string {
			t.Helper()
			es, err := s.ListEvents(bg, f)
			must(t, err)
			out := []string{}
			for _, e := range es {
				out = append(out, e.ID)
			}
			return out
		}
		same(t, "all, newest first", ids(model.EventFilter{}), []string{f.ID, e.ID, d.ID, c.ID, b.ID, a.ID})
		same(t, "team", ids(model.EventFilter{Team: "shop"}), []string{f.ID, e.ID, c.ID, b.ID, a.ID})
		same(t, "target prefix", ids(model.EventFilter{Team: "shop", Target: "component:shop/web/"}), []string{b.ID, a.ID})
		same(t, "status", ids(model.EventFilter{Status: model.EventRunning}), []string{f.ID, e.ID, d.ID, b.ID})
		same(t, "limit", ids(model.EventFilter{Team: "shop", Limit: 2}), []string{f.ID, e.ID})

		start, end := time.Now(), time.Now().Add(time.Second)
		upd := &model.Event{ID: b.ID, Status: model.EventSuccess, Reason: "Deployed", Message: "3/3 ready", StartedAt: &start, FinishedAt: &end}
		must(t, s.UpdateEvent(bg, upd))
		got, err = s.GetEvent(bg, b.ID)
		must(t, err)
		same(t, "updated event", *got, *upd)
		if upd.Target != b.Target || !upd.CreatedAt.Equal(b.CreatedAt) {
			t.Fatalf("UpdateEvent did not read back the unchanged fields: %+v", upd)
		}
		wantErr(t, s.UpdateEvent(bg, &model.Event{ID: "nope"}), model.ErrNotFound, `event "nope": not found`)
	})
}

func TestCreateEventWithTask(t *testing.T) {
	each(t, func(t *testing.T, s Store) {
		e := &model.Event{Team: "shop", Type: "build", Target: "component:shop/web/api"}
		task := &model.Task{Type: "build", Payload: json.RawMessage(`{"ref": "main"}`), Status: model.TaskRunning, Owner: "someone"}
		must(t, s.CreateEvent(bg, e, task))
		if e.Status != model.EventRunning {
			t.Fatalf("event status defaulted to %q", e.Status)
		}
		want := model.Task{ID: task.ID, EventID: e.ID, Type: "build", Team: "shop", Target: e.Target,
			Payload: json.RawMessage(`{"ref": "main"}`), Status: model.TaskQueued, CreatedAt: task.CreatedAt, UpdatedAt: task.CreatedAt}
		same(t, "enqueued task", *task, want)
		got, err := s.GetTask(bg, task.ID)
		must(t, err)
		same(t, "stored task", *got, want)

		// The event and its task are one write: a failing task leaves no event.
		e2 := &model.Event{Team: "shop", Type: "build", Target: "x"}
		wantErr(t, s.CreateEvent(bg, e2, &model.Task{ID: task.ID, Type: "build"}), model.ErrConflict, "")
		_, err = s.GetEvent(bg, e2.ID)
		wantErr(t, err, model.ErrNotFound, "")
	})
}

func TestAppendAndReadLog(t *testing.T) {
	each(t, func(t *testing.T, s Store) {
		e := &model.Event{Team: "shop", Type: "build", Target: "component:shop/web/api"}
		must(t, s.CreateEvent(bg, e, nil))
		at := time.Date(2025, 1, 1, 0, 0, 0, 999, time.UTC)
		lines, err := s.AppendLog(bg, e.ID, []model.LogLine{
			{Text: "one", Level: "info", Stage: "clone", Time: at},
			{Text: "two", Seq: 42}, // a given Seq is overwritten
		})
		must(t, err)
		if lines[0].Seq != 1 || lines[1].Seq != 2 || lines[0].Time != storeTime(at) || lines[1].Time.IsZero() {
			t.Fatalf("AppendLog returned %+v", lines)
		}
		var many []model.LogLine
		for i := range 1200 { // more than one INSERT batch
			many = append(many, model.LogLine{Text: fmt.Sprintf("line %d", i+3)})
		}
		more, err := s.AppendLog(bg, e.ID, many)
		must(t, err)
		if more[0].Seq != 3 || more[len(more)-1].Seq != 1202 {
			t.Fatalf("second append numbered %d..%d", more[0].Seq, more[len(more)-1].Seq)
		}

		all, err := s.ReadLog(bg, e.ID, 0, 0)
		must(t, err)
		same(t, "whole log", all, append(lines, more...))
		page, err := s.ReadLog(bg, e.ID, 1, 2)
		must(t, err)
		same(t, "page after 1", page, all[1:3])
		var seqs []int64
		for after := int64(0); ; {
			page, err := s.ReadLog(bg, e.ID, after, 500)
			must(t, err)
			if len(page) == 0 {
				break
			}
			for _, l := range page {
				seqs = append(seqs, l.Seq)
			}
			after = page[len(page)-1].Seq
		}
		if len(seqs) != 1202 || seqs[0] != 1 || seqs[1201] != 1202 {
			t.Fatalf("paging read %d lines", len(seqs))
		}
		tail, err := s.ReadLog(bg, e.ID, 1202, 10)
		must(t, err)
		if tail == nil || len(tail) != 0 {
			t.Fatalf("reading past the end = %#v, want an empty slice", tail)
		}

		_, err = s.AppendLog(bg, "nope", []model.LogLine{{Text: "x"}})
		wantErr(t, err, model.ErrNotFound, `event "nope": not found`)
		_, err = s.ReadLog(bg, "nope", 0, 10)
		wantErr(t, err, model.ErrNotFound, `event "nope": not found`)
		none, err := s.AppendLog(bg, e.ID, nil)
		must(t, err)
		same(t, "appending nothing", len(none), 0)
	})
}

// TestAppendLogConcurrent has 8 appenders write batches to one event at once:
// seqs must come out 1..N with no gap or duplicate, each batch contiguous.
func TestAppendLogConcurrent(t *testing.T) {
	each(t, func(t *testing.T, s Store) {
		e := &model.Event{Team: "shop", Type: "build", Target: "component:shop/web/api"}
		must(t, s.CreateEvent(bg, e, nil))
		const appenders, batches = 8, 25
		var wg sync.WaitGroup
		for w := range appenders {
			wg.Go(func() {
				for b := range batches {
					n := 1 + (w+b)%3
					var batch []model.LogLine
					for i := range n {
						batch = append(batch, model.LogLine{Text: fmt.Sprintf("w%d b%d l%d", w, b, i)})
					}
					out, err := s.AppendLog(bg, e.ID, batch)
					if err != nil {
						t.Error(err)
						return
					}
					for i := 1; i < len(out); i++ {
						if out[i].Seq != out[i-1].Seq+1 {
							t.Errorf("batch not contiguous: %+v", out)
						}
					}
				}
			})
		}
		wg.Wait()
		all, err := s.ReadLog(bg, e.ID, 0, 0)
		must(t, err)
		want := 0
		for w := range appenders {
			for b := range batches {
				want += 1 + (w+b)%3
			}
		}
		if len(all) != want {
			t.Fatalf("%d lines stored, want %d", len(all), want)
		}
		texts := map[string]bool{}
		for i, l := range all {
			if l.Seq != int64(i+1) {
				t.Fatalf("line %d has seq %d", i, l.Seq)
			}
			if texts[l.Text] {
				t.Fatalf("line %q stored twice", l.Text)
			}
			texts[l.Text] = true
		}
	})
}

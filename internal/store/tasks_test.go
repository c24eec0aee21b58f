package store

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/berth-platform/berth/internal/model"
)

// enqueue creates an event with a task on target and returns the task.
func enqueue(t *testing.T, s Store, target string) *model.Task {
	t.Helper()
	task := &model.Task{Type: "deploy"}
	must(t, s.CreateEvent(bg, &model.Event{Team: "shop", Type: "deploy", Target: target}, task))
	return task
}

// claim claims as owner at now with a one-minute lease.
func claim(t *testing.T, s Store, owner string, now time.Time) *model.Task {
	t.Helper()
	task, err := s.ClaimTask(bg, owner, now, time.Minute)
	must(t, err)
	return task
}

func wantClaim(t *testing.T, got *model.Task, want *model.Task) {
	t.Helper()
	switch {
	case want == nil && got != nil:
		t.Fatalf("claimed %s (%s), want nothing claimable", got.ID, got.Target)
	case want != nil && got == nil:
		t.Fatalf("claimed nothing, want %s (%s)", want.ID, want.Target)
	case want != nil && got.ID != want.ID:
		t.Fatalf("claimed %s (%s), want %s (%s)", got.ID, got.Target, want.ID, want.Target)
	}
}

func TestClaimTaskOrderAndSerialization(t *testing.T) {
	each(t, func(t *testing.T, s Store) {
		now := time.Now()
		a1 := enqueue(t, s, "component:shop/web/a")
		a2 := enqueue(t, s, "component:shop/web/a")
		b1 := enqueue(t, s, "component:shop/web/b")

		got := claim(t, s, "w1", now)
		wantClaim(t, got, a1)
		if got.Status != model.TaskRunning || got.Owner != "w1" || got.Attempts != 1 ||
			got.LeaseUntil == nil || !got.LeaseUntil.Equal(storeTime(now.Add(time.Minute))) {
			t.Fatalf("claimed task: %+v", got)
		}
		// a2 waits for a1, so b1 is next even though it is newer.
		wantClaim(t, claim(t, s, "w2", now), b1)
		wantClaim(t, claim(t, s, "w3", now), nil)

		must(t, s.FinishTask(bg, a1.ID, "w1", model.TaskSuccess, ""))
		wantClaim(t, claim(t, s, "w3", now), a2)

		// A failed task no longer holds its target back either.
		must(t, s.FinishTask(bg, b1.ID, "w2", model.TaskFailure, "image pull failed"))
		got2, err := s.GetTask(bg, b1.ID)
		must(t, err)
		if got2.Status != model.TaskFailure || got2.Error != "image pull failed" || got2.LeaseUntil != nil {
			t.Fatalf("failed task: %+v", got2)
		}
		b2 := enqueue(t, s, "component:shop/web/b")
		wantClaim(t, claim(t, s, "w1", now), b2)
		wantClaim(t, claim(t, s, "w1", now), nil)

		_, err = s.ClaimTask(bg, "", now, time.Minute)
		if err == nil {
			t.Fatal("a claim without owner was accepted")
		}
		_, err = s.ClaimTask(bg, "w1", now, 0)
		if err == nil {
			t.Fatal("a claim without lease was accepted")
		}
	})
}

func TestLeaseExpiry(t *testing.T) {
	each(t, func(t *testing.T, s Store) {
		t0 := time.Now()
		task := enqueue(t, s, "component:shop/web/api")
		next := enqueue(t, s, "component:shop/web/api")
		wantClaim(t, claim(t, s, "w1", t0), task)

		// Within the lease nobody else gets it (nor the next task of the target).
		wantClaim(t, claim(t, s, "w2", t0.Add(30*time.Second)), nil)
		must(t, s.RenewTask(bg, task.ID, "w1", t0.Add(90*time.Second)))
		wantClaim(t, claim(t, s, "w2", t0.Add(80*time.Second)), nil)

		// Past it, w2 takes over: attempts go up, the owner is replaced.
		got := claim(t, s, "w2", t0.Add(2*time.Minute))
		wantClaim(t, got, task)
		if got.Owner != "w2" || got.Attempts != 2 {
			t.Fatalf("reclaimed task: owner %q, attempts %d", got.Owner, got.Attempts)
		}

		// w1 lost it: its renewal and outcome do not count.
		wantErr(t, s.RenewTask(bg, task.ID, "w1", t0.Add(time.Hour)), model.ErrNotFound,
			fmt.Sprintf("task %q running for %q: not found", task.ID, "w1"))
		wantErr(t, s.FinishTask(bg, task.ID, "w1", model.TaskSuccess, ""), model.ErrNotFound, "")
		must(t, s.FinishTask(bg, task.ID, "w2", model.TaskFailure, "boom"))
		wantErr(t, s.FinishTask(bg, task.ID, "w2", model.TaskSuccess, ""), model.ErrNotFound, "")
		got, err := s.GetTask(bg, task.ID)
		must(t, err)
		if got.Status != model.TaskFailure || got.Error != "boom" {
			t.Fatalf("finished task: %+v", got)
		}
		if err := s.FinishTask(bg, next.ID, "w1", model.TaskQueued, ""); err == nil {
			t.Fatal("FinishTask accepted a status that is not an outcome")
		}
		_, err = s.GetTask(bg, "nope")
		wantErr(t, err, model.ErrNotFound, `task "nope": not found`)
	})
}

func TestReleaseAndCountTasks(t *testing.T) {
	each(t, func(t *testing.T, s Store) {
		now := time.Now()
		counts, err := s.CountTasks(bg)
		must(t, err)
		same(t, "counts of nothing", counts, map[model.TaskStatus]int{
			model.TaskQueued: 0, model.TaskRunning: 0, model.TaskSuccess: 0, model.TaskFailure: 0})

		var tasks []*model.Task
		for i := range 5 {
			tasks = append(tasks, enqueue(t, s, fmt.Sprintf("component:shop/web/c%d", i)))
		}
		wantClaim(t, claim(t, s, "old", now), tasks[0])
		wantClaim(t, claim(t, s, "old", now), tasks[1])
		wantClaim(t, claim(t, s, "me", now), tasks[2])
		wantClaim(t, claim(t, s, "me", now), tasks[3])
		must(t, s.FinishTask(bg, tasks[3].ID, "me", model.TaskSuccess, ""))

		counts, err = s.CountTasks(bg)
		must(t, err)
		same(t, "counts", counts, map[model.TaskStatus]int{
			model.TaskQueued: 1, model.TaskRunning: 3, model.TaskSuccess: 1, model.TaskFailure: 0})

		n, err := s.ReleaseTasks(bg, "me")
		must(t, err)
		same(t, "released", n, 2)
		// The released tasks are claimable at once, oldest first; mine is not.
		wantClaim(t, claim(t, s, "me", now), tasks[0])
		wantClaim(t, claim(t, s, "me", now), tasks[1])
		wantClaim(t, claim(t, s, "me", now), tasks[4])
		wantClaim(t, claim(t, s, "me", now), nil)
	})
}

// TestClaimTaskConcurrent has 8 claimers drain 200 tasks on 20 targets: each
// task is claimed exactly once, and no two tasks of a target run at once.
// The claimers use two stores opened on one database, as two servers would.
func TestClaimTaskConcurrent(t *testing.T) {
	eachEngine(t, func(t *testing.T, s Store, dsn string) {
		const tasks, targets, claimers = 200, 20, 8
		for i := range tasks {
			enqueue(t, s, fmt.Sprintf("component:shop/web/c%d", i%targets))
		}
		stores := []Store{s, openTestStore(t, dsn)}
		var mu sync.Mutex
		claimed := map[string]string{}
		running := map[string]string{}
		var wg sync.WaitGroup
		for w := range claimers {
			owner := fmt.Sprintf("w%d", w)
			s := stores[w%len(stores)]
			wg.Go(func() {
				idle := 0
				for idle < 20 {
					task, err := s.ClaimTask(bg, owner, time.Now(), time.Hour)
					if err != nil {
						t.Error(err)
						return
					}
					if task == nil {
						// Others may hold the remaining targets; wait a little.
						idle++
						time.Sleep(5 * time.Millisecond)
						continue
					}
					idle = 0
					mu.Lock()
					if prev, ok := claimed[task.ID]; ok {
						t.Errorf("task %s claimed by %s and %s", task.ID, prev, owner)
					}
					claimed[task.ID] = owner
					if other, ok := running[task.Target]; ok {
						t.Errorf("target %s runs %s and %s at once", task.Target, other, task.ID)
					}
					running[task.Target] = task.ID
					mu.Unlock()

					// Hold the task a moment, so that a second claim of its
					// target would overlap and show.
					time.Sleep(time.Millisecond)
					mu.Lock()
					delete(running, task.Target)
					mu.Unlock()
					if err := s.FinishTask(bg, task.ID, owner, model.TaskSuccess, ""); err != nil {
						t.Error(err)
						return
					}
				}
			})
		}
		wg.Wait()
		if len(claimed) != tasks {
			t.Fatalf("%d of %d tasks claimed", len(claimed), tasks)
		}
		counts, err := s.CountTasks(bg)
		must(t, err)
		if counts[model.TaskSuccess] != tasks {
			t.Fatalf("counts after draining: %v", counts)
		}
	})
}

// TestClaimTaskLateCommit covers a task that becomes visible only after a
// newer task of its target was claimed, because its transaction committed
// later: it must wait for the running one. Only PostgreSQL lets two writers
// overlap like this.
func TestClaimTaskLateCommit(t *testing.T) {
	each(t, func(t *testing.T, s Store) {
		if s.Dialect() != "postgres" {
			t.Skip("SQLite serializes writers, so tasks cannot commit out of order")
		}
		ss := s.(*sqlStore)
		const target = "component:shop/web/api"
		tx, err := ss.db.BeginTx(bg, nil)
		must(t, err)
		defer tx.Rollback()
		late := &model.Task{Type: "deploy"}
		ev := &model.Event{ID: "late", Team: "shop", Type: "deploy", Target: target, Status: model.EventRunning, CreatedAt: storeTime(time.Now())}
		_, err = handle{tx, ss.d}.exec(bg, `INSERT INTO events (id, team, type, target, status, reason, message, created_at)
			VALUES (?, ?, ?, ?, ?, '', '', ?)`, ev.ID, ev.Team, ev.Type, ev.Target, string(ev.Status), ss.d.timeArg(ev.CreatedAt))
		must(t, err)
		must(t, ss.enqueueTask(bg, handle{tx, ss.d}, ev, late))

		early := enqueue(t, s, target) // a higher seq, but committed first
		now := time.Now()
		wantClaim(t, claim(t, s, "w1", now), early)
		must(t, tx.Commit())

		wantClaim(t, claim(t, s, "w2", now), nil)
		must(t, s.FinishTask(bg, early.ID, "w1", model.TaskSuccess, ""))
		wantClaim(t, claim(t, s, "w2", now), late)
	})
}

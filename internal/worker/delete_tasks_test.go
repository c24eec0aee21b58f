package worker

import (
	"context"
	"encoding/json"
	"errors"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/berth-platform/berth/internal/events"
	"github.com/berth-platform/berth/internal/model"
	"github.com/berth-platform/berth/internal/runtime"
	"github.com/berth-platform/berth/internal/store"
)

// removals is a runtime that records what it was asked to remove; a
// delete calls nothing else of it.
type removals struct {
	runtime.Driver
	mu    sync.Mutex
	calls []string // component id, "+purge" when volumes go
}

// ReleaseTeam records the release of a team's runtime state.
func (r *removals) ReleaseTeam(_ context.Context, team string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.calls = append(r.calls, "team:"+team)
	return nil
}

func (r *removals) Remove(_ context.Context, id string, purge bool) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if purge {
		id += "+purge"
	}
	r.calls = append(r.calls, id)
	return nil
}

// A team delete takes every component of every app through the one
// component path (stopped, removed from the runtime before and after its
// row goes, forgotten by builds, its built repository deleted),
// dependents before what they depend on, then the team's repositories, the
// runtime's state of the team (its network) and its row. Another team's
// component is not involved.
func TestTeamDeleteTakesEveryComponentThroughOnePath(t *testing.T) {
	ctx := context.Background()
	st, err := store.Open(ctx, "", t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	for _, team := range []string{"shop", "other"} {
		must(t, st.CreateTeam(ctx, &model.Team{Name: team}))
		must(t, st.CreateApp(ctx, &model.App{Team: team, Name: "web"}))
	}
	must(t, st.CreateApp(ctx, &model.App{Team: "shop", Name: "api"}))
	comp := func(team, app, alias string, kind model.Kind) *model.Component {
		c := &model.Component{Team: team, App: app, Alias: alias, Kind: kind, Image: "busybox", Desired: model.DesiredRunning, Instances: 1, DeployVersion: 1}
		if kind == model.KindSource {
			c.Source = &model.Source{Type: model.SourceGit, URL: "https://example.com/x.git"}
		}
		must(t, st.CreateComponent(ctx, c))
		return c
	}
	front, back := comp("shop", "web", "front", model.KindImage), comp("shop", "web", "back", model.KindImage)
	built := comp("shop", "api", "built", model.KindSource)
	kept := comp("other", "web", "front", model.KindImage)
	must(t, st.AddDependency(ctx, model.Dependency{Team: "shop", From: "front", To: "back"}))

	rt := &removals{}
	ct := NewComponentTasks(st)
	ct.Runtime = NewReconciler(st, rt)
	d := NewDeletes(st, ct)
	var forgotten, repos []string
	d.Forget = func(id string) { forgotten = append(forgotten, id) }
	d.DeleteRepositories = func(_ context.Context, prefix string) ([]string, error) {
		repos = append(repos, prefix)
		return []string{prefix + "/x"}, nil
	}

	task := deleteTask(t, st, "shop", DeleteTask{Team: "shop"})
	must(t, d.deleteTeamTask(ctx, task, &TaskLog{log: events.NewLog(st), eventID: task.EventID}))

	if _, err := st.GetTeam(ctx, "shop"); !errors.Is(err, model.ErrNotFound) {
		t.Fatalf("team after the delete: %v, want not found", err)
	}
	if c, err := st.GetComponentByID(ctx, kept.ID); err != nil || c.Desired != model.DesiredRunning {
		t.Fatalf("another team's component: %+v %v", c, err)
	}
	for _, c := range []*model.Component{front, back, built} {
		if n := countOf(rt.calls, c.ID+"+purge"); n != 2 {
			t.Errorf("%s removed from the runtime %d times (%v), want before and after its row", c.Alias, n, rt.calls)
		}
		if !slices.Contains(forgotten, c.ID) {
			t.Errorf("builds did not forget %s: %v", c.Alias, forgotten)
		}
	}
	if slices.Index(rt.calls, front.ID+"+purge") > slices.Index(rt.calls, back.ID+"+purge") {
		t.Errorf("back (a dependency of front) was removed first: %v", rt.calls)
	}
	if want := []string{"shop/built", "shop"}; !slices.Equal(repos, want) {
		t.Errorf("hub repositories deleted: %v, want %v", repos, want)
	}
	if n := len(rt.calls); n == 0 || rt.calls[n-1] != "team:shop" {
		t.Errorf("the runtime did not release the team last: %v", rt.calls)
	}
	if slices.Contains(rt.calls, kept.ID) || slices.Contains(rt.calls, kept.ID+"+purge") {
		t.Errorf("another team's component was removed: %v", rt.calls)
	}
}

// keep_volumes reaches the runtime: the volumes stay, the rest goes.
func TestComponentDeleteKeepsVolumesOnPurpose(t *testing.T) {
	ctx := context.Background()
	st, err := store.Open(ctx, "", t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	must(t, st.CreateTeam(ctx, &model.Team{Name: "shop"}))
	must(t, st.CreateApp(ctx, &model.App{Team: "shop", Name: "web"}))
	c := &model.Component{Team: "shop", App: "web", Alias: "db", Kind: model.KindImage, Image: "busybox", Desired: model.DesiredRunning, Instances: 1}
	must(t, st.CreateComponent(ctx, c))
	rt := &removals{}
	ct := NewComponentTasks(st)
	ct.Runtime = NewReconciler(st, rt)
	d := NewDeletes(st, ct)

	task := deleteTask(t, st, "shop", DeleteTask{Team: "shop", ComponentID: c.ID, KeepVolumes: true})
	log := &TaskLog{log: events.NewLog(st), eventID: task.EventID}
	must(t, d.deleteComponentTask(ctx, task, log))
	if !slices.Equal(rt.calls, []string{c.ID, c.ID}) {
		t.Fatalf("runtime removals %v, want two without purge", rt.calls)
	}
	if _, err := st.GetComponentByID(ctx, c.ID); !errors.Is(err, model.ErrNotFound) {
		t.Fatalf("component after the delete: %v", err)
	}
	// A second delete of the same component (a retried request) succeeds.
	must(t, d.deleteComponentTask(ctx, task, log))
}

func deleteTask(t *testing.T, st store.Store, team string, p DeleteTask) *model.Task {
	t.Helper()
	raw, err := json.Marshal(p)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now().UTC()
	ev := &model.Event{ID: model.NewID("ev"), Team: team, Type: TaskTeamDelete, Target: TeamTarget(team), Status: model.EventRunning, CreatedAt: now}
	task := &model.Task{ID: ev.ID, EventID: ev.ID, Type: ev.Type, Team: team, Target: ev.Target, Payload: raw,
		Status: model.TaskQueued, CreatedAt: now, UpdatedAt: now}
	must(t, st.CreateEvent(context.Background(), ev, task))
	return task
}

func countOf(xs []string, x string) int {
	n := 0
	for _, y := range xs {
		if y == x {
			n++
		}
	}
	return n
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// A delete cancels what still runs for its component (a build would push
// to the repository the delete removes) and waits for it to end; the
// operation of a component whose alias merely starts the same is left
// alone, and so is the delete's own event, on the same target.
func TestDeleteCancelsRunningOperations(t *testing.T) {
	ctx := context.Background()
	st, err := store.Open(ctx, "", t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	must(t, st.CreateTeam(ctx, &model.Team{Name: "shop"}))
	must(t, st.CreateApp(ctx, &model.App{Team: "shop", Name: "web"}))
	app := &model.Component{Team: "shop", App: "web", Alias: "app", Kind: model.KindImage, Image: "busybox"}
	must(t, st.CreateComponent(ctx, app))
	app2 := &model.Component{Team: "shop", App: "web", Alias: "app2", Kind: model.KindImage, Image: "busybox"}
	must(t, st.CreateComponent(ctx, app2))
	running := func(c *model.Component, typ string, payload []byte) *model.Task {
		now := time.Now().UTC()
		ev := &model.Event{ID: model.NewID("ev"), Team: c.Team, Type: typ, Target: ComponentTarget(c), Status: model.EventRunning, CreatedAt: now}
		task := &model.Task{ID: ev.ID, EventID: ev.ID, Type: ev.Type, Team: c.Team, Target: ev.Target,
			Payload: payload, Status: model.TaskQueued, CreatedAt: now, UpdatedAt: now}
		must(t, st.CreateEvent(ctx, ev, task))
		return task
	}
	build, otherBuild := running(app, TaskBuild, nil), running(app2, TaskBuild, nil)
	raw, _ := json.Marshal(DeleteTask{Team: "shop", ComponentID: app.ID})
	del := running(app, TaskComponentDelete, raw)

	ct := NewComponentTasks(st)
	ct.Runtime = NewReconciler(st, &removals{})
	d := NewDeletes(st, ct)
	logs := events.NewLog(st)
	var cancelled []string
	d.Cancel = func(id string) bool {
		cancelled = append(cancelled, id)
		go func() { // the cancelled task ends a moment later
			time.Sleep(300 * time.Millisecond)
			_ = logs.Finish(ctx, id, model.EventFailure, "Cancelled", "cancelled by a user")
		}()
		return true
	}
	must(t, d.deleteComponentTask(ctx, del, &TaskLog{log: logs, eventID: del.EventID}))
	if !slices.Equal(cancelled, []string{build.EventID}) {
		t.Fatalf("cancelled %v, want only app's build %s (not app2's %s, not the delete %s)", cancelled, build.EventID, otherBuild.EventID, del.EventID)
	}
	if ev, err := st.GetEvent(ctx, build.EventID); err != nil || ev.Status == model.EventRunning {
		t.Fatalf("the delete did not wait for the cancelled build to end: %+v %v", ev, err)
	}
}

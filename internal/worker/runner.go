// Package worker turns desired state into actions: it runs durable tasks
// (deploy, start, stop, scale...) claimed from the store with a lease, so an
// accepted operation survives a crash of the server.
package worker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/berth-platform/berth/internal/events"
	"github.com/berth-platform/berth/internal/model"
	"github.com/berth-platform/berth/internal/store"
)

// Handler performs one task. It must be idempotent: after a crash the task
// runs again from the start, possibly after some of its effects took place.
type Handler func(ctx context.Context, t *model.Task, log *TaskLog) error

// Failure is an error with a short machine-readable reason for the event.
type Failure struct {
	Reason string
	Err    error
}

func (f *Failure) Error() string { return f.Err.Error() }
func (f *Failure) Unwrap() error { return f.Err }

// Runner claims tasks and runs their handlers.
type Runner struct {
	store    store.Store
	log      *events.Log
	owner    string
	lease    time.Duration
	workers  int
	handlers map[string]Handler
	wake     chan struct{}

	wg     sync.WaitGroup
	cancel context.CancelFunc

	mu      sync.Mutex
	running map[string]context.CancelCauseFunc // by event id
}

// ErrCancelled is why a task cancelled by a user stopped.
var ErrCancelled = errors.New("cancelled by a user")

// Cancel stops the task of an event if it runs in this server, and says
// whether it did.
func (r *Runner) Cancel(eventID string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	cancel, ok := r.running[eventID]
	if ok {
		cancel(ErrCancelled)
	}
	return ok
}

// Options configure a Runner.
type Options struct {
	// Owner names this server in task leases; unique per process.
	Owner string
	// Lease is how long a claim lasts without renewal (default 15s).
	Lease time.Duration
	// Workers is how many tasks run at once (default 4).
	Workers int
}

// NewRunner returns a runner; register handlers before Start.
func NewRunner(st store.Store, log *events.Log, opts Options) *Runner {
	if opts.Lease == 0 {
		opts.Lease = 15 * time.Second
	}
	if opts.Workers == 0 {
		opts.Workers = 4
	}
	if opts.Owner == "" {
		opts.Owner = model.NewID("worker")
	}
	return &Runner{
		store: st, log: log, owner: opts.Owner, lease: opts.Lease, workers: opts.Workers,
		handlers: map[string]Handler{}, wake: make(chan struct{}, 1), running: map[string]context.CancelCauseFunc{},
	}
}

// Handle registers the handler of a task type.
func (r *Runner) Handle(taskType string, h Handler) { r.handlers[taskType] = h }

// Workers is how many tasks run at once.
func (r *Runner) Workers() int { return r.workers }

// Owner is the name this runner claims tasks under.
func (r *Runner) Owner() string { return r.owner }

// Wake tells an idle worker that a task was queued.
func (r *Runner) Wake() {
	select {
	case r.wake <- struct{}{}:
	default:
	}
}

// Start recovers from a previous crash and starts the workers. With
// singleNode (SQLite, one server per data directory) the leases of tasks the
// dead process held are released at once instead of waiting for expiry.
func (r *Runner) Start(ctx context.Context, singleNode bool) error {
	if singleNode {
		n, err := r.store.ReleaseTasks(ctx, r.owner)
		if err != nil {
			return fmt.Errorf("release interrupted tasks: %w", err)
		}
		if n > 0 {
			slog.Info("resuming tasks interrupted by the last shutdown", "tasks", n)
		}
	}
	if err := r.repairEvents(ctx); err != nil {
		return err
	}
	ctx, r.cancel = context.WithCancel(context.WithoutCancel(ctx))
	for i := 0; i < r.workers; i++ {
		r.wg.Add(1)
		go r.loop(ctx)
	}
	return nil
}

// Stop stops claiming, cancels running handlers and waits for them. Their
// tasks keep their leases and are resumed by the next server.
func (r *Runner) Stop() {
	if r.cancel != nil {
		r.cancel()
	}
	r.wg.Wait()
}

// repairEvents finishes events whose task finished just before a crash cut
// the event update short: the task row is the truth.
func (r *Runner) repairEvents(ctx context.Context) error {
	running, err := r.store.ListEvents(ctx, model.EventFilter{Status: model.EventRunning, Limit: 10000})
	if err != nil {
		return fmt.Errorf("list running events: %w", err)
	}
	for _, ev := range running {
		task, err := r.store.GetTask(ctx, ev.ID)
		switch {
		case errors.Is(err, model.ErrNotFound):
			r.log.Errorf(ctx, ev.ID, "", "berth restarted while this operation ran and it has no durable task to resume")
			_ = r.log.Finish(ctx, ev.ID, model.EventFailure, "Interrupted", "berth restarted while this operation ran")
		case err != nil:
			return fmt.Errorf("task of event %s: %w", ev.ID, err)
		case task.Status == model.TaskSuccess:
			r.repairOutcome(ctx, task)
			_ = r.log.Finish(ctx, ev.ID, model.EventSuccess, "", "")
		case task.Status == model.TaskFailure:
			r.repairOutcome(ctx, task)
			_ = r.log.Finish(ctx, ev.ID, model.EventFailure, "TaskFailed", task.Error)
		}
	}
	return nil
}

func (r *Runner) loop(ctx context.Context) {
	defer r.wg.Done()
	for ctx.Err() == nil {
		task, err := r.store.ClaimTask(ctx, r.owner, time.Now(), r.lease)
		if err != nil {
			if ctx.Err() == nil {
				slog.Error("claim task", "err", err)
			}
			sleep(ctx, time.Second)
			continue
		}
		if task == nil {
			select {
			case <-ctx.Done():
			case <-r.wake:
			case <-time.After(500 * time.Millisecond):
			}
			continue
		}
		r.run(ctx, task)
		// Another task may have become claimable behind this one's target.
		r.Wake()
	}
}

func sleep(ctx context.Context, d time.Duration) {
	select {
	case <-ctx.Done():
	case <-time.After(d):
	}
}

func (r *Runner) run(ctx context.Context, task *model.Task) {
	logger := slog.With("task", task.ID, "type", task.Type, "target", task.Target, "attempt", task.Attempts)
	taskCtx, cancelCause := context.WithCancelCause(ctx)
	cancel := func() { cancelCause(context.Canceled) }
	defer cancel()
	r.mu.Lock()
	r.running[task.EventID] = cancelCause
	r.mu.Unlock()
	defer func() {
		r.mu.Lock()
		delete(r.running, task.EventID)
		r.mu.Unlock()
	}()
	renewed := make(chan struct{})
	go func() {
		defer close(renewed)
		r.renew(taskCtx, task, cancel)
	}()
	defer func() { cancel(); <-renewed }()

	if _, err := r.log.Start(ctx, task.EventID); err != nil {
		logger.Error("start event", "err", err)
	}
	tl := &TaskLog{log: r.log, eventID: task.EventID}
	if task.Attempts > 1 {
		tl.Printf("", "berth restarted while this %s ran; resuming it (attempt %d)", task.Type, task.Attempts)
	}
	h, ok := r.handlers[task.Type]
	var err error
	if !ok {
		err = &Failure{Reason: "UnknownTask", Err: fmt.Errorf("no handler for task type %q", task.Type)}
	} else {
		err = safeRun(taskCtx, h, task, tl)
	}
	if errors.Is(context.Cause(taskCtx), ErrCancelled) {
		err = &Failure{Reason: "Cancelled", Err: ErrCancelled}
	}
	if ctx.Err() != nil {
		// Shutting down: leave the lease to expire so the next server resumes.
		logger.Info("task interrupted by shutdown; it will resume")
		return
	}
	status, evStatus, reason, msg := model.TaskSuccess, model.EventSuccess, "", ""
	if err != nil {
		status, evStatus, reason, msg = model.TaskFailure, model.EventFailure, "Failed", err.Error()
		var f *Failure
		if errors.As(err, &f) {
			reason = f.Reason
		}
	}
	if err := r.store.FinishTask(ctx, task.ID, r.owner, status, msg); err != nil {
		// The lease was lost to another worker: its outcome is the one that counts.
		logger.Warn("task outcome dropped", "err", err)
		return
	}
	r.logOutcome(ctx, task, status, msg)
	if err := r.log.Finish(ctx, task.EventID, evStatus, reason, msg); err != nil {
		logger.Error("finish event", "err", err)
	}
	logger.Info("task finished", "status", status)
}

func safeRun(ctx context.Context, h Handler, t *model.Task, tl *TaskLog) (err error) {
	defer func() {
		if p := recover(); p != nil {
			slog.Error("task handler panicked", "task", t.ID, "panic", p)
			err = &Failure{Reason: "InternalError", Err: fmt.Errorf("internal error in berth: %v", p)}
		}
	}()
	return h(ctx, t, tl)
}

// renew keeps the lease alive; if it is lost, the handler is cancelled.
func (r *Runner) renew(ctx context.Context, task *model.Task, cancel context.CancelFunc) {
	t := time.NewTicker(r.lease / 3)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			err := r.store.RenewTask(ctx, task.ID, r.owner, time.Now().Add(r.lease))
			if errors.Is(err, model.ErrNotFound) {
				slog.Warn("task lease lost", "task", task.ID)
				cancel()
				return
			}
			if err != nil && ctx.Err() == nil {
				slog.Warn("renew task lease", "task", task.ID, "err", err)
			}
		}
	}
}

// outcomeLine is the one closing line of a task's log.
func outcomeLine(task *model.Task, status model.TaskStatus, msg string) (level, text string) {
	if status == model.TaskFailure {
		return "error", fmt.Sprintf("%s failed: %s", task.Type, msg)
	}
	return "info", task.Type + " succeeded"
}

// logOutcome writes the closing line. Right after FinishTask no earlier
// attempt can have written one: an attempt that got that far finished the
// task, and a finished task is not run again.
func (r *Runner) logOutcome(ctx context.Context, task *model.Task, status model.TaskStatus, msg string) {
	level, text := outcomeLine(task, status, msg)
	if level == "error" {
		r.log.Errorf(ctx, task.EventID, "", "%s", text)
		return
	}
	r.log.Printf(ctx, task.EventID, "", "%s", text)
}

// repairOutcome writes the closing line of a task that finished just
// before a crash, unless the crash came after the line was written.
func (r *Runner) repairOutcome(ctx context.Context, task *model.Task) {
	_, text := outcomeLine(task, task.Status, task.Error)
	var last string
	for after := int64(0); ; {
		lines, err := r.store.ReadLog(ctx, task.EventID, after, 1000)
		if err != nil || len(lines) == 0 {
			break
		}
		last, after = lines[len(lines)-1].Text, lines[len(lines)-1].Seq
	}
	if last != text {
		r.logOutcome(ctx, task, task.Status, task.Error)
	}
}

// TaskLog writes a task's progress to its event.
type TaskLog struct {
	log     *events.Log
	eventID string
}

// Printf writes an info line in stage.
func (t *TaskLog) Printf(stage, format string, args ...any) {
	t.log.Printf(context.Background(), t.eventID, stage, format, args...)
}

// Errorf writes an error line in stage.
func (t *TaskLog) Errorf(stage, format string, args ...any) {
	t.log.Errorf(context.Background(), t.eventID, stage, format, args...)
}

package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/berth-platform/berth/internal/model"
)

// enqueueTask stores t inside CreateEvent's transaction. Whatever status,
// owner, lease or attempts the caller set, the task starts queued and
// unowned; ID, EventID, Team, Target and times are filled in when empty.
func (s *sqlStore) enqueueTask(ctx context.Context, h handle, e *model.Event, t *model.Task) error {
	if t.ID == "" {
		t.ID = newID()
	}
	if t.EventID == "" {
		t.EventID = e.ID
	}
	if t.Team == "" {
		t.Team = e.Team
	}
	if t.Target == "" {
		t.Target = e.Target
	}
	t.Status, t.Owner, t.LeaseUntil, t.Attempts = model.TaskQueued, "", nil, 0
	t.CreatedAt = nowOr(t.CreatedAt)
	t.UpdatedAt = t.CreatedAt
	var payload any
	if t.Payload != nil {
		payload = []byte(t.Payload)
	}
	_, err := h.exec(ctx, `INSERT INTO tasks
		(id, event_id, type, team, target, payload, status, attempts, owner, lease_until, error, created_at, updated_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, 0, '', NULL, ?, ?, ?)`,
		t.ID, t.EventID, t.Type, t.Team, t.Target, payload, string(t.Status), t.Error,
		s.d.timeArg(t.CreatedAt), s.d.timeArg(t.UpdatedAt))
	switch constraintOf(err) {
	case uniqueViolation:
		return conflict("task %q already exists", t.ID)
	case foreignKeyViolation:
		return notFound("event %q", t.EventID)
	}
	if err != nil {
		return fmt.Errorf("enqueue task %s on %s: %w", t.Type, t.Target, err)
	}
	return nil
}

const taskCols = `id, event_id, type, team, target, payload, status, attempts, owner, lease_until, error, created_at, updated_at`

func scanTask(row rowScanner) (model.Task, error) {
	var t model.Task
	var payload []byte
	err := row.Scan(&t.ID, &t.EventID, &t.Type, &t.Team, &t.Target, &payload, &t.Status, &t.Attempts,
		&t.Owner, nullTimeCol{&t.LeaseUntil}, &t.Error, timeCol{&t.CreatedAt}, timeCol{&t.UpdatedAt})
	if payload != nil {
		t.Payload = payload
	}
	return t, err
}

// claimable is ClaimTask's condition on the task aliased t, with the claim
// time bound to both placeholders. Besides the contract's rule (queued or
// lease expired, no older unfinished task of the target) it refuses a task
// whose target has a newer task running under a live lease: on PostgreSQL
// a task can become visible after a newer one of its target was claimed
// (its transaction committed later), and it must then wait for that one.
const claimable = `(t.status = 'queued' OR (t.status = 'running' AND t.lease_until < ?))
	AND NOT EXISTS (
		SELECT 1 FROM tasks o
		WHERE o.target = t.target AND o.seq <> t.seq
		AND ((o.seq < t.seq AND o.status IN ('queued', 'running'))
			OR (o.status = 'running' AND o.lease_until >= ?)))`

// claimRetries bounds how often ClaimTask starts over after a candidate was
// taken between finding it and claiming it; past that it reports nothing
// claimable, and the worker polls again.
const claimRetries = 5

// ClaimTask finds the oldest claimable task and claims it in one
// transaction. On PostgreSQL, SKIP LOCKED makes concurrent claimers pick
// different candidates, and a lock on the candidate's target, taken before
// the claiming UPDATE rechecks the condition under a fresh snapshot, keeps
// two claimers from starting two tasks of one target. Each attempt is its
// own transaction, so no claimer holds one target's lock while waiting for
// another's.
func (s *sqlStore) ClaimTask(ctx context.Context, owner string, now time.Time, lease time.Duration) (*model.Task, error) {
	if owner == "" {
		return nil, &model.ValidationError{Field: "owner", Rule: "is required"}
	}
	if lease <= 0 {
		return nil, &model.ValidationError{Field: "lease", Rule: fmt.Sprintf("must be positive (got %s)", lease)}
	}
	now = storeTime(now)
	until := storeTime(now.Add(lease))
	nowArg := s.d.timeArg(now)
	for range claimRetries {
		var claimed *model.Task
		raced := false
		err := s.tx(ctx, func(h handle) error {
			var seq int64
			var target string
			err := h.queryRow(ctx, `SELECT t.seq, t.target FROM tasks t WHERE `+claimable+
				` ORDER BY t.seq LIMIT 1`+s.d.skipLocked, nowArg, nowArg).Scan(&seq, &target)
			if errors.Is(err, sql.ErrNoRows) {
				return nil
			}
			if err != nil {
				return fmt.Errorf("find claimable task: %w", err)
			}
			if s.d.xactLock != nil {
				if err := s.d.xactLock(ctx, h, "berth.task-target:"+target); err != nil {
					return err
				}
			}
			t, err := scanTask(h.queryRow(ctx, `UPDATE tasks AS t SET
				status = 'running', owner = ?, lease_until = ?, attempts = attempts + 1, updated_at = ?
				WHERE t.seq = ? AND `+claimable+` RETURNING `+taskCols,
				owner, s.d.timeArg(until), nowArg, seq, nowArg, nowArg))
			if errors.Is(err, sql.ErrNoRows) {
				raced = true
				return nil
			}
			if err != nil {
				return fmt.Errorf("claim task %d: %w", seq, err)
			}
			claimed = &t
			return nil
		})
		if err != nil {
			return nil, fmt.Errorf("claim task for %q: %w", owner, err)
		}
		if !raced {
			return claimed, nil
		}
	}
	return nil, nil
}

func (s *sqlStore) RenewTask(ctx context.Context, id, owner string, until time.Time) error {
	n, err := affected(s.w().exec(ctx, `UPDATE tasks SET lease_until = ?, updated_at = ?
		WHERE id = ? AND owner = ? AND status = 'running'`,
		s.d.timeArg(storeTime(until)), s.d.timeArg(storeTime(time.Now())), id, owner))
	if err != nil {
		return fmt.Errorf("renew task %q: %w", id, err)
	}
	if n == 0 {
		return notFound("task %q running for %q", id, owner)
	}
	return nil
}

// FinishTask does not check the lease's expiry: as long as the task is
// still running under owner, nobody else has claimed it, so the outcome is
// the only one there will be.
func (s *sqlStore) FinishTask(ctx context.Context, id, owner string, status model.TaskStatus, errMsg string) error {
	if status != model.TaskSuccess && status != model.TaskFailure {
		return &model.ValidationError{Field: "status", Rule: fmt.Sprintf("must be success or failure (got %q)", status)}
	}
	n, err := affected(s.w().exec(ctx, `UPDATE tasks SET status = ?, error = ?, lease_until = NULL, updated_at = ?
		WHERE id = ? AND owner = ? AND status = 'running'`,
		string(status), errMsg, s.d.timeArg(storeTime(time.Now())), id, owner))
	if err != nil {
		return fmt.Errorf("finish task %q: %w", id, err)
	}
	if n == 0 {
		return notFound("task %q running for %q", id, owner)
	}
	return nil
}

// releasedLease is the lease ReleaseTasks leaves behind: long expired for any
// claim time a caller passes.
var releasedLease = time.Unix(0, 0).UTC()

func (s *sqlStore) ReleaseTasks(ctx context.Context, keepOwner string) (int, error) {
	n, err := affected(s.w().exec(ctx, `UPDATE tasks SET lease_until = ?, updated_at = ?
		WHERE status = 'running' AND owner <> ?`,
		s.d.timeArg(releasedLease), s.d.timeArg(storeTime(time.Now())), keepOwner))
	if err != nil {
		return 0, fmt.Errorf("release tasks: %w", err)
	}
	return int(n), nil
}

func (s *sqlStore) GetTask(ctx context.Context, id string) (*model.Task, error) {
	t, err := scanTask(s.r().queryRow(ctx, `SELECT `+taskCols+` FROM tasks WHERE id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, notFound("task %q", id)
	}
	if err != nil {
		return nil, fmt.Errorf("get task %q: %w", id, err)
	}
	return &t, nil
}

// CountTasks reports every status, with 0 for those no task has, so a
// metrics gauge drops to zero instead of keeping its last value.
func (s *sqlStore) CountTasks(ctx context.Context) (map[model.TaskStatus]int, error) {
	counts := map[model.TaskStatus]int{
		model.TaskQueued: 0, model.TaskRunning: 0, model.TaskSuccess: 0, model.TaskFailure: 0,
	}
	rows, err := s.r().query(ctx, `SELECT status, COUNT(*) FROM tasks GROUP BY status`)
	if err != nil {
		return nil, fmt.Errorf("count tasks: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var st model.TaskStatus
		var n int
		if err := rows.Scan(&st, &n); err != nil {
			return nil, fmt.Errorf("count tasks: %w", err)
		}
		counts[st] = n
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("count tasks: %w", err)
	}
	return counts, nil
}

package containerd

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	apievents "github.com/containerd/containerd/api/events"
	"github.com/containerd/containerd/v2/client"
	"github.com/containerd/typeurl/v2"
)

// Exit is the end of a container's main process.
type Exit struct {
	ID        string
	ExitCode  int
	ExitedAt  time.Time
	OOMKilled bool
}

// Exits streams the exits of the namespace's containers (their main
// process; exec'd processes are left out) until ctx ends, when the channel
// is closed.
//
// It is built on containerd's event service (/tasks/exit and /tasks/oom)
// rather than on one Wait per task, so that berth needs no goroutine per
// instance and learns about containers it adopted. The subscription dies
// with containerd; the stream then re-subscribes with back-off and, on
// every (re)subscription, reports tasks it finds stopped that it has not
// reported yet: exits that happened while containerd was down (or before
// berth started) are not lost. The same exit is never reported twice by
// one stream.
//
// OOMKilled is set when an OOM event for the container came before its
// exit, or, if the event was missed or arrives late, when the container's
// memory cgroup counted an OOM kill (oom_kill in memory.oom_control on
// cgroup v1, memory.events on v2): the cgroup still exists at that point
// because only Stop deletes the task.
func (e *Engine) Exits(ctx context.Context) (<-chan Exit, error) {
	ctx = e.ctx(ctx)
	// Fail early when containerd cannot be reached at all.
	if _, err := e.client.Version(ctx); err != nil {
		return nil, fmt.Errorf("exits: %w", err)
	}
	out := make(chan Exit, 64)
	go e.watchExits(ctx, out)
	return out, nil
}

func (e *Engine) watchExits(ctx context.Context, out chan<- Exit) {
	defer close(out)
	w := &exitWatcher{
		e:        e,
		out:      out,
		reported: map[string]time.Time{},
		oom:      map[string]bool{},
	}
	backoff := 500 * time.Millisecond
	for ctx.Err() == nil {
		start := time.Now()
		err := w.subscribe(ctx)
		if ctx.Err() != nil {
			return
		}
		if clientClosed(err) {
			// The engine's client was closed: nothing will ever come.
			w.e.log.Debug("exit stream ends: containerd client closed")
			return
		}
		if time.Since(start) > 30*time.Second {
			backoff = 500 * time.Millisecond
		}
		e.log.Warn("event subscription ended; re-subscribing", "err", err, "backoff", backoff)
		select {
		case <-ctx.Done():
			return
		case <-time.After(backoff):
		}
		backoff = min(backoff*2, 5*time.Second)
	}
}

type exitWatcher struct {
	e        *Engine
	out      chan<- Exit
	reported map[string]time.Time // container -> exit time already sent
	oom      map[string]bool      // OOM events not yet matched to an exit
}

// subscribe runs one subscription until it fails.
func (w *exitWatcher) subscribe(ctx context.Context) error {
	sctx, cancel := context.WithCancel(ctx)
	defer cancel()
	ns := strconv.Quote(w.e.namespace)
	events, errs := w.e.client.Subscribe(sctx,
		`namespace==`+ns+`,topic=="/tasks/exit"`,
		`namespace==`+ns+`,topic=="/tasks/oom"`,
	)
	// Reconcile after subscribing so that no exit falls in between; an
	// exit seen both ways is sent once thanks to reported.
	if err := w.reconcile(ctx); err != nil {
		return err
	}
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case err := <-errs:
			if err == nil {
				err = fmt.Errorf("subscription closed")
			}
			return err
		case env, ok := <-events:
			if !ok {
				return fmt.Errorf("event channel closed")
			}
			ev, err := typeurl.UnmarshalAny(env.Event)
			if err != nil {
				w.e.log.Warn("undecodable event", "topic", env.Topic, "err", err)
				continue
			}
			switch ev := ev.(type) {
			case *apievents.TaskOOM:
				w.oom[ev.ContainerID] = true
			case *apievents.TaskExit:
				if ev.ID != ev.ContainerID {
					continue // an exec'd process
				}
				exitedAt := time.Now()
				if ev.ExitedAt != nil {
					exitedAt = ev.ExitedAt.AsTime()
				}
				if !w.send(ctx, ev.ContainerID, int(ev.ExitStatus), exitedAt) {
					return ctx.Err()
				}
			}
		}
	}
}

// reconcile reports stopped tasks not reported yet and forgets containers
// that are gone.
func (w *exitWatcher) reconcile(ctx context.Context) error {
	list, err := w.e.client.Containers(ctx)
	if err != nil {
		return fmt.Errorf("list containers: %w", err)
	}
	alive := make(map[string]bool, len(list))
	for _, c := range list {
		alive[c.ID()] = true
		task, err := c.Task(ctx, nil)
		if err != nil {
			continue
		}
		st, err := task.Status(ctx)
		if err != nil || st.Status != client.Stopped {
			continue
		}
		if !w.send(ctx, c.ID(), int(st.ExitStatus), st.ExitTime) {
			return ctx.Err()
		}
	}
	for id := range w.reported {
		if !alive[id] {
			delete(w.reported, id)
		}
	}
	for id := range w.oom {
		if !alive[id] {
			delete(w.oom, id)
		}
	}
	return nil
}

// send delivers an exit once; false when ctx ended.
func (w *exitWatcher) send(ctx context.Context, id string, code int, at time.Time) bool {
	if prev, ok := w.reported[id]; ok && prev.Equal(at) {
		return true
	}
	w.reported[id] = at
	// An OOM kill of a helper process does not make a clean exit an OOM
	// kill of the container.
	oom := w.oom[id] && code != 0
	delete(w.oom, id)
	if !oom && code != 0 {
		oom = w.e.cgroupOOMKilled(id)
	}
	select {
	case w.out <- Exit{ID: id, ExitCode: code, ExitedAt: at, OOMKilled: oom}:
		return true
	case <-ctx.Done():
		return false
	}
}

// cgroupOOMKilled reads the container's OOM kill counter.
func (e *Engine) cgroupOOMKilled(id string) bool {
	rel := strings.TrimPrefix(e.cgroupPath(id), "/")
	file, key := filepath.Join("/sys/fs/cgroup/memory", rel, "memory.oom_control"), "oom_kill"
	if _, err := os.Stat("/sys/fs/cgroup/cgroup.controllers"); err == nil {
		file = filepath.Join("/sys/fs/cgroup", rel, "memory.events")
	}
	f, err := os.Open(file)
	if err != nil {
		return false
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) == 2 && fields[0] == key {
			n, _ := strconv.Atoi(fields[1])
			return n > 0
		}
	}
	return false
}

// clientClosed reports the error of a call on a closed client connection,
// which no retry can cure (unlike containerd being restarted).
func clientClosed(err error) bool {
	return err != nil && strings.Contains(err.Error(), "client connection is closing")
}

package containerd

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	"github.com/berth-platform/berth/internal/runtime/probe"
)

// Listeners reads the listening TCP sockets of a running container. A
// task's /proc/<pid>/net shows the network namespace it lives in, so the
// host reads them without entering the namespace (or trusting anything
// in the container to report them).
func (e *Engine) Listeners(ctx context.Context, id string) ([]probe.Listener, error) {
	info, err := e.Inspect(ctx, id)
	if err != nil {
		return nil, err
	}
	if info.Status != StatusRunning || info.PID == 0 {
		return nil, fmt.Errorf("listeners of %s: %w", id, ErrNotRunning)
	}
	return readListeners(filepath.Join("/proc", strconv.FormatUint(uint64(info.PID), 10), "net"))
}

// readListeners parses dir's tcp and tcp6 files; tcp6 is absent when the
// kernel has IPv6 off.
func readListeners(dir string) ([]probe.Listener, error) {
	var all []probe.Listener
	for _, name := range []string{"tcp", "tcp6"} {
		b, err := os.ReadFile(filepath.Join(dir, name))
		if name == "tcp6" && errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("read listening sockets: %w", err)
		}
		ls, err := probe.ParseListeners(b)
		if err != nil {
			return nil, fmt.Errorf("parse %s: %w", filepath.Join(dir, name), err)
		}
		all = append(all, ls...)
	}
	return all, nil
}

// explainRefused turns a probe's "connection refused" on port into what
// the instance listens on instead; any other result passes unchanged.
func (d *Driver) explainRefused(ctx context.Context, instanceID string, port int, err error) error {
	if !probe.Refused(err) {
		return err
	}
	ls, lsErr := d.engine.Listeners(ctx, instanceID)
	if lsErr != nil {
		slog.Debug("listening sockets unknown", "instance", instanceID, "err", lsErr)
	}
	return probe.ExplainRefused(err, port, ls, lsErr)
}

// ListenHint says why upstream (an instance's ip:port) of componentID
// refuses connections, from what the instance listens on; "" when berth
// knows no better. The gateway calls it for its 502 page.
func (d *Driver) ListenHint(componentID, upstream string) string {
	key := componentID + "/" + upstream
	if hint, ok := listenHints.get(key); ok {
		return hint
	}
	hint := d.listenHint(componentID, upstream)
	listenHints.put(key, hint)
	return hint
}

func (d *Driver) listenHint(componentID, upstream string) string {
	c := d.controller(componentID)
	host, portStr, err := net.SplitHostPort(upstream)
	if c == nil || err != nil {
		return ""
	}
	port, err := strconv.Atoi(portStr)
	if err != nil {
		return ""
	}
	if host == "" {
		return d.anyInstanceHint(c, port)
	}
	id := c.instanceAt(host)
	if id == "" {
		return ""
	}
	ctx, cancel := context.WithTimeout(d.ctx, 2*time.Second)
	defer cancel()
	ls, err := d.engine.Listeners(ctx, id)
	if err != nil {
		slog.Debug("listening sockets unknown", "instance", id, "err", err)
		return ""
	}
	return probe.PortMismatch(port, ls)
}

// anyInstanceHint is the first of the component's instances that listens
// elsewhere than port, said as probe.PortMismatch says it.
func (d *Driver) anyInstanceHint(c *controller, port int) string {
	for _, id := range c.instanceIDs() {
		ctx, cancel := context.WithTimeout(d.ctx, 2*time.Second)
		ls, err := d.engine.Listeners(ctx, id)
		cancel()
		if err != nil {
			continue
		}
		if hint := probe.PortMismatch(port, ls); hint != "" {
			return hint
		}
	}
	return ""
}

// instanceAt is the id of the instance with address ip, or "".
func (c *controller) instanceAt(ip string) string {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, in := range c.instances {
		if in.ip == ip {
			return in.id
		}
	}
	return ""
}

// listenHints keeps each answer a few seconds: a client retrying a
// refused port as fast as it can costs one containerd call and one /proc
// read per instance and period, not one per request.
var listenHints = &hintCache{ttl: 5 * time.Second, entries: map[string]hintEntry{}}

type hintCache struct {
	ttl     time.Duration
	mu      sync.Mutex
	entries map[string]hintEntry
}

type hintEntry struct {
	hint string
	at   time.Time
}

func (h *hintCache) get(key string) (string, bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	e, ok := h.entries[key]
	if !ok || time.Since(e.at) > h.ttl {
		return "", false
	}
	return e.hint, true
}

func (h *hintCache) put(key, hint string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	now := time.Now()
	if len(h.entries) >= 1024 {
		for k, e := range h.entries {
			if now.Sub(e.at) > h.ttl {
				delete(h.entries, k)
			}
		}
	}
	h.entries[key] = hintEntry{hint: hint, at: now}
}

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

// explainRefused puts what the instance listens on in front of a refused
// probe's error.
func (d *Driver) explainRefused(ctx context.Context, instanceID string, port int, err error) error {
	if !probe.Refused(err) {
		return err
	}
	ls, lsErr := d.listeners(ctx, instanceID)
	return probe.ExplainRefused(err, port, ls, lsErr)
}

// ListenHint says why upstream (an instance's ip:port) of componentID
// refuses connections, from what the instance listens on; "" when berth
// knows no better. An upstream without a host (":8080") asks about any of
// the component's instances. The gateway calls it for its 502 and 503
// pages.
func (d *Driver) ListenHint(componentID, upstream string) string {
	c := d.controller(componentID)
	host, portStr, err := net.SplitHostPort(upstream)
	if c == nil || err != nil {
		return ""
	}
	port, err := strconv.Atoi(portStr)
	if err != nil {
		return ""
	}
	ids := c.instanceIDs()
	if host != "" {
		ids = []string{c.instanceAt(host)}
	}
	for _, id := range ids {
		if id == "" {
			continue
		}
		if ls, err := d.listeners(d.ctx, id); err == nil {
			if hint := probe.PortMismatch(port, ls); hint != "" {
				return hint
			}
		}
	}
	return ""
}

// listeners reads an instance's listening sockets at most once per
// listenersTTL: a starting instance is probed every 100 ms, and a client
// retrying a refused port as fast as it can would otherwise cost a
// containerd call and two /proc reads per request.
func (d *Driver) listeners(ctx context.Context, instanceID string) ([]probe.Listener, error) {
	if e, ok := listenersSeen.get(instanceID); ok {
		return e.ls, e.err
	}
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	ls, err := d.engine.Listeners(ctx, instanceID)
	if err != nil {
		slog.Debug("listening sockets unknown", "instance", instanceID, "err", err)
	}
	listenersSeen.put(instanceID, listenersEntry{ls: ls, err: err})
	return ls, err
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

const listenersTTL = time.Second

var listenersSeen = &listenersCache{entries: map[string]listenersEntry{}}

type listenersCache struct {
	mu      sync.Mutex
	entries map[string]listenersEntry
}

type listenersEntry struct {
	ls  []probe.Listener
	err error
	at  time.Time
}

func (c *listenersCache) get(instanceID string) (listenersEntry, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.entries[instanceID]
	return e, ok && time.Since(e.at) <= listenersTTL
}

func (c *listenersCache) put(instanceID string, e listenersEntry) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e.at = time.Now()
	if len(c.entries) >= 1024 {
		for k, old := range c.entries {
			if e.at.Sub(old.at) > listenersTTL {
				delete(c.entries, k)
			}
		}
	}
	c.entries[instanceID] = e
}

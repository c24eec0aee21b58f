package worker

import (
	"context"
	"fmt"
	"strings"

	"github.com/berth-platform/berth/internal/model"
	"github.com/berth-platform/berth/internal/store"
)

// servesDependents reports whether a component in status s has at least
// one ready instance (or healthy endpoint) for its dependents to use.
func servesDependents(s model.ComponentStatus) bool {
	return s == model.StatusRunning || s == model.StatusUpgrade || s == model.StatusSomeAbnormal
}

// waitingFor lists c's dependencies that are not ready yet, each with its
// own status, e.g. "db (closed)".
func waitingFor(ctx context.Context, st store.Store, c *model.Component) ([]string, error) {
	deps, err := unreadyDependencies(ctx, st, c)
	if err != nil {
		return nil, err
	}
	var waits []string
	for _, dep := range deps {
		w := fmt.Sprintf("%s (%s", dep.Alias, dep.Status)
		if dep.StatusMessage != "" && dep.Status != model.StatusWaiting {
			w += ": " + dep.StatusMessage
		}
		waits = append(waits, w+")")
	}
	return waits, nil
}

// WaitingOn names the dependencies of c that are not ready yet (the ones
// a waiting component waits for).
func WaitingOn(ctx context.Context, st store.Store, c *model.Component) ([]string, error) {
	deps, err := unreadyDependencies(ctx, st, c)
	if err != nil {
		return nil, err
	}
	names := make([]string, len(deps))
	for i, dep := range deps {
		names[i] = dep.Alias
	}
	return names, nil
}

// unreadyDependencies are the components c depends on that serve no one yet.
func unreadyDependencies(ctx context.Context, st store.Store, c *model.Component) ([]*model.Component, error) {
	deps, err := st.ListDependencies(ctx, c.Team)
	if err != nil {
		return nil, fmt.Errorf("list dependencies: %w", err)
	}
	var out []*model.Component
	for _, d := range deps {
		if d.From != c.Alias {
			continue
		}
		dep, err := st.GetComponentByAlias(ctx, c.Team, d.To)
		if err != nil {
			return nil, fmt.Errorf("dependency %s: %w", d.To, err)
		}
		if !servesDependents(dep.Status) {
			out = append(out, dep)
		}
	}
	return out, nil
}

// waitingMessage is the status message of a component held back by its
// dependencies (等待启动).
func waitingMessage(waits []string) string {
	return "waiting for its dependencies to be ready: " + strings.Join(waits, ", ") +
		"; it starts by itself once they are"
}

// startOrder sorts components so that each comes after the components it
// depends on (within the list); components in a cycle, which the API
// refuses, keep their order.
func startOrder(comps []model.Component, deps []model.Dependency) []model.Component {
	in := map[string]bool{}
	for _, c := range comps {
		in[c.Alias] = true
	}
	needs := map[string][]string{}
	for _, d := range deps {
		if in[d.From] && in[d.To] {
			needs[d.From] = append(needs[d.From], d.To)
		}
	}
	var out []model.Component
	placed := map[string]bool{}
	visiting := map[string]bool{}
	byAlias := map[string]model.Component{}
	for _, c := range comps {
		byAlias[c.Alias] = c
	}
	var visit func(alias string)
	visit = func(alias string) {
		if placed[alias] || visiting[alias] {
			return
		}
		visiting[alias] = true
		for _, dep := range needs[alias] {
			visit(dep)
		}
		placed[alias] = true
		out = append(out, byAlias[alias])
	}
	for _, c := range comps {
		visit(c.Alias)
	}
	return out
}

// pendingRestart says which injected variables differ between what the
// instances run with and what the dependencies offer now, or "".
func pendingRestart(running, fresh []string) string {
	old := map[string]string{}
	for _, kv := range running {
		k, v, _ := strings.Cut(kv, "=")
		old[k] = v
	}
	var changed []string
	seen := map[string]bool{}
	for _, kv := range fresh {
		k, v, _ := strings.Cut(kv, "=")
		seen[k] = true
		if ov, ok := old[k]; !ok || ov != v {
			changed = append(changed, k)
		}
	}
	for k := range old {
		if !seen[k] {
			changed = append(changed, k)
		}
	}
	if len(changed) == 0 {
		return ""
	}
	return "the connection info from its dependencies changed (" + strings.Join(changed, ", ") + "); restart it to apply"
}

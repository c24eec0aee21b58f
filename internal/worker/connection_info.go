package worker

import (
	"context"
	"fmt"
	"net"
	"sort"
	"strconv"
	"strings"

	"github.com/berth-platform/berth/internal/model"
	"github.com/berth-platform/berth/internal/store"
)

// EnvVar is one variable a component's instances see, and where it comes
// from.
type EnvVar struct {
	Name   string `json:"name"`
	Value  string `json:"value"`
	Origin string `json:"origin"` // "component", or "dependency <alias> ..."
	Secret bool   `json:"secret"`
}

// AddressSource gives the stable inner address (host:port) of a
// component's port; nil when no runtime runs components.
type AddressSource func(ctx context.Context, componentID string, port int) (string, error)

// ConnectionEnv is the connection info c gets from its dependencies: for
// each inner port of each dependency <ALIAS>_HOST and <ALIAS>_PORT, then
// the dependency's variables of scope outer and both. Sorted by name, so
// that a change is a change of content, not of order.
func ConnectionEnv(ctx context.Context, st store.Store, addr AddressSource, c *model.Component) ([]EnvVar, error) {
	deps, err := st.ListDependencies(ctx, c.Team)
	if err != nil {
		return nil, fmt.Errorf("list dependencies: %w", err)
	}
	lookup := func(alias string) (*model.Component, error) { return st.GetComponentByAlias(ctx, c.Team, alias) }
	return connectionEnv(ctx, deps, lookup, addr, c)
}

// connectionEnv is ConnectionEnv over a team's dependencies and a way to
// find its components, so that the reconciler, which has them all at hand,
// reads nothing again.
func connectionEnv(ctx context.Context, deps []model.Dependency, lookup func(alias string) (*model.Component, error),
	addr AddressSource, c *model.Component) ([]EnvVar, error) {
	var out []EnvVar
	seen := map[string]bool{}
	add := func(v EnvVar) {
		// Two dependencies offering the same name: the first (by alias) wins,
		// deterministically.
		if !seen[v.Name] {
			seen[v.Name] = true
			out = append(out, v)
		}
	}
	var targets []string
	for _, d := range deps {
		if d.From == c.Alias {
			targets = append(targets, d.To)
		}
	}
	sort.Strings(targets)
	for _, alias := range targets {
		dep, err := lookup(alias)
		if err != nil {
			return nil, fmt.Errorf("dependency %s: %w", alias, err)
		}
		for _, p := range dep.Ports {
			if !p.Inner {
				continue
			}
			host := dep.Alias
			if addr != nil {
				if a, err := addr(ctx, dep.ID, p.Port); err == nil {
					host, _, _ = net.SplitHostPort(a)
				}
			}
			origin := fmt.Sprintf("dependency %s (port %d)", dep.Alias, p.Port)
			add(EnvVar{Name: p.Alias + "_HOST", Value: host, Origin: origin})
			add(EnvVar{Name: p.Alias + "_PORT", Value: strconv.Itoa(p.Port), Origin: origin})
		}
		for _, e := range dep.Envs {
			if e.Scope == model.ScopeOuter || e.Scope == model.ScopeBoth {
				add(EnvVar{Name: e.Name, Value: e.Value, Secret: e.Secret, Origin: fmt.Sprintf("dependency %s (env of scope %s)", dep.Alias, e.Scope)})
			}
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

// EffectiveEnv is what c's instances see: its own variables (scope inner
// and both), PORT unless they set it, then the injected ones, then ${NAME}
// references expanded.
func EffectiveEnv(c *model.Component, injected []EnvVar) []EnvVar {
	var out []EnvVar
	own := map[string]bool{}
	for _, e := range c.Envs {
		if e.Scope == model.ScopeOuter {
			continue
		}
		own[e.Name] = true
		out = append(out, EnvVar{Name: e.Name, Value: e.Value, Secret: e.Secret, Origin: "component"})
	}
	if port := c.MainPort(); port > 0 && !own["PORT"] {
		// The Heroku/Rainbond convention, at run time too, so an image built
		// for another port follows the component's; a dependency's PORT
		// would point the app at someone else's port.
		own["PORT"] = true
		out = append(out, EnvVar{Name: "PORT", Value: strconv.Itoa(port), Origin: "berth (the component's first http port, else its first port)"})
	}
	for _, v := range injected {
		if !own[v.Name] {
			out = append(out, v)
		}
	}
	return expand(out)
}

// expand replaces ${NAME} with NAME's value, following chains a few levels
// deep; unknown names stay as written, so a typo is visible in the app.
func expand(vars []EnvVar) []EnvVar {
	values := map[string]string{}
	secret := map[string]bool{}
	for _, v := range vars {
		values[v.Name] = v.Value
		secret[v.Name] = v.Secret
	}
	// A value built from a secret is a secret too, or ${PASSWORD} would
	// show it wherever values are shown.
	for round := 0; round < 5; round++ {
		changed := false
		for i := range vars {
			if vars[i].Secret {
				continue
			}
			for name := range secret {
				if secret[name] && strings.Contains(vars[i].Value, "${"+name+"}") {
					vars[i].Secret, secret[vars[i].Name], changed = true, true, true
					break
				}
			}
		}
		if !changed {
			break
		}
	}
	for round := 0; round < 5; round++ {
		changed := false
		for i := range vars {
			if !strings.Contains(vars[i].Value, "${") {
				continue
			}
			next := expandOnce(vars[i].Value, values)
			if next != vars[i].Value {
				vars[i].Value, values[vars[i].Name], changed = next, next, true
			}
		}
		if !changed {
			break
		}
	}
	return vars
}

func expandOnce(s string, values map[string]string) string {
	var b strings.Builder
	for {
		i := strings.Index(s, "${")
		if i < 0 {
			b.WriteString(s)
			return b.String()
		}
		j := strings.IndexByte(s[i:], '}')
		if j < 0 {
			b.WriteString(s)
			return b.String()
		}
		name := s[i+2 : i+j]
		b.WriteString(s[:i])
		if v, ok := values[name]; ok {
			b.WriteString(v)
		} else {
			b.WriteString(s[i : i+j+1])
		}
		s = s[i+j+1:]
	}
}

// envList turns variables into NAME=value.
func envList(vars []EnvVar) []string {
	out := make([]string, 0, len(vars))
	for _, v := range vars {
		out = append(out, v.Name+"="+v.Value)
	}
	return out
}

// envVars reads NAME=value back, for a component's stored snapshot.
func envVars(list []string, origin string) []EnvVar {
	out := make([]EnvVar, 0, len(list))
	for _, kv := range list {
		name, value, _ := strings.Cut(kv, "=")
		out = append(out, EnvVar{Name: name, Value: value, Origin: origin})
	}
	return out
}

package worker

import (
	"strings"
	"testing"

	"github.com/berth-platform/berth/internal/model"
)

func TestEffectiveEnvOwnWinsAndReferencesExpand(t *testing.T) {
	c := &model.Component{Envs: []model.Env{
		{Name: "DSN", Value: "postgres://${DB_USER}:${DB_PASSWORD}@${DB_HOST}:${DB_PORT}/x", Scope: model.ScopeInner},
		{Name: "DB_USER", Value: "own", Scope: model.ScopeBoth},
		{Name: "FOR_DEPENDENTS", Value: "x", Scope: model.ScopeOuter},
		{Name: "TYPO", Value: "${NOPE}", Scope: model.ScopeInner},
	}}
	injected := []EnvVar{
		{Name: "DB_HOST", Value: "10.0.0.5", Origin: "dependency db (port 5432)"},
		{Name: "DB_PORT", Value: "5432", Origin: "dependency db (port 5432)"},
		{Name: "DB_USER", Value: "theirs", Origin: "dependency db (env of scope outer)"},
		{Name: "DB_PASSWORD", Value: "s3cret", Secret: true, Origin: "dependency db (env of scope both)"},
	}
	got := map[string]EnvVar{}
	for _, v := range EffectiveEnv(c, injected) {
		got[v.Name] = v
	}
	if _, ok := got["FOR_DEPENDENTS"]; ok {
		t.Error("a variable of scope outer reached the component itself")
	}
	if got["DB_USER"].Value != "own" || got["DB_USER"].Origin != "component" {
		t.Errorf("own value must win: %+v", got["DB_USER"])
	}
	if d := got["DSN"]; d.Value != "postgres://own:s3cret@10.0.0.5:5432/x" || !d.Secret {
		t.Errorf("DSN: %+v (a value built from a secret must be secret)", d)
	}
	if got["TYPO"].Value != "${NOPE}" {
		t.Errorf("an unknown reference must stay visible: %q", got["TYPO"].Value)
	}
}

func TestPendingRestartNamesTheChangedVariables(t *testing.T) {
	if msg := pendingRestart([]string{"A=1", "B=2"}, []string{"A=1", "B=2"}); msg != "" {
		t.Errorf("no change: %q", msg)
	}
	msg := pendingRestart([]string{"A=1", "B=2"}, []string{"A=9", "C=3"})
	for _, name := range []string{"A", "B", "C"} {
		if !strings.Contains(msg, name) {
			t.Errorf("%q does not name %s", msg, name)
		}
	}
}

func TestStartOrderPutsDependenciesFirst(t *testing.T) {
	comps := []model.Component{{Alias: "web"}, {Alias: "api"}, {Alias: "db"}, {Alias: "other"}}
	deps := []model.Dependency{{From: "web", To: "api"}, {From: "api", To: "db"}}
	var order []string
	for _, c := range startOrder(comps, deps) {
		order = append(order, c.Alias)
	}
	if len(order) != 4 || order[0] != "db" || order[1] != "api" || order[2] != "web" {
		t.Errorf("order: %v", order)
	}
}

// PORT follows the component's ports at run time (an image built for 5000
// listens where berth probes), unless the component sets it itself; a
// dependency's PORT never points the app elsewhere.
func TestEffectiveEnvSetsPORTFromTheComponentsPorts(t *testing.T) {
	port := func(c *model.Component, injected ...EnvVar) string {
		for _, v := range EffectiveEnv(c, injected) {
			if v.Name == "PORT" {
				return v.Value
			}
		}
		return ""
	}
	c := &model.Component{Ports: []model.Port{{Port: 9000, Protocol: model.ProtoTCP}, {Port: 8080, Protocol: model.ProtoHTTP}}}
	if got := port(c, EnvVar{Name: "PORT", Value: "5432", Origin: "dependency db (env of scope outer)"}); got != "8080" {
		t.Errorf("first http port: PORT=%q, want 8080", got)
	}
	if got := port(&model.Component{Ports: []model.Port{{Port: 6379, Protocol: model.ProtoTCP}}}); got != "6379" {
		t.Errorf("first port: PORT=%q, want 6379", got)
	}
	c.Envs = []model.Env{{Name: "PORT", Value: "7000", Scope: model.ScopeInner}}
	if got := port(c); got != "7000" {
		t.Errorf("the component's own PORT must win: %q", got)
	}
	if got := port(&model.Component{}); got != "" {
		t.Errorf("no ports, no PORT: %q", got)
	}
}

package worker

import (
	"context"
	"testing"

	"github.com/berth-platform/berth/internal/model"
	"github.com/berth-platform/berth/internal/runtime"
	"github.com/berth-platform/berth/internal/store"
)

// hinter is a runtime that can tell what an instance listens on.
type hinter struct{ runtime.Driver }

func (hinter) ListenHint(componentID, upstream string) string {
	return "hint for " + componentID + " at " + upstream
}

// A component's routes ask the runtime about their own component, for the
// upstream that refused; a runtime that cannot tell gives nothing.
func TestRoutesAskTheRuntimeWhyAnUpstreamRefused(t *testing.T) {
	ctx := context.Background()
	st, err := store.Open(ctx, "", t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	must(t, st.CreateTeam(ctx, &model.Team{Name: "shop"}))
	must(t, st.CreateApp(ctx, &model.App{Team: "shop", Name: "web"}))
	c := &model.Component{Team: "shop", App: "web", Alias: "front", Kind: model.KindImage, Image: "busybox", Desired: model.DesiredRunning,
		Instances: 1, DeployVersion: 1, Ports: []model.Port{{Port: 8080, Protocol: model.ProtoHTTP, Alias: "P", Outer: true}}}
	must(t, st.CreateComponent(ctx, c))

	sync := NewGatewaySync(st, nil, nil, "apps.test")
	state, err := sync.build(ctx)
	must(t, err)
	if len(state.HTTP) != 1 || state.HTTP[0].Hint != nil {
		t.Fatalf("without hints: %+v", state.HTTP)
	}
	sync.Hints = NewReconciler(st, hinter{}).ListenHint
	state, err = sync.build(ctx)
	must(t, err)
	if len(state.HTTP) != 1 || state.HTTP[0].Hint == nil {
		t.Fatalf("with hints: %+v", state.HTTP)
	}
	if got, want := state.HTTP[0].Hint("10.1.2.3:8080"), "hint for "+c.ID+" at 10.1.2.3:8080"; got != want {
		t.Errorf("hint = %q, want %q", got, want)
	}
	if got := NewReconciler(st, &removals{}).ListenHint(c.ID, "10.1.2.3:8080"); got != "" {
		t.Errorf("a runtime without listeners hinted %q", got)
	}
}

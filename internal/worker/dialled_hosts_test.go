package worker

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/berth-platform/berth/internal/model"
	"github.com/berth-platform/berth/internal/netguard"
	"github.com/berth-platform/berth/internal/store"
)

func noHostAddrs() []netip.Addr { return nil }

// A stored image component whose registry is the host's loopback (one
// saved before the rule, or a name that now resolves there) is refused
// before the runtime pulls; the hub, on loopback too, is not.
func TestReconcilerRefusesARegistryOnTheHost(t *testing.T) {
	st, err := store.Open(context.Background(), "", t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	drv := &recordingDriver{}
	r := NewReconciler(st, drv)
	r.Hosts = &HostGuard{Policy: &netguard.Policy{HostAddrs: noHostAddrs}, HubHost: func() string { return testHub }, Registry: "127.0.0.1:5000"}
	c := &model.Component{ID: "cmp-1", Team: "shop", App: "web", Alias: "probe", Kind: model.KindImage,
		Image: "127.0.0.1:6379/x:1", Desired: model.DesiredRunning, DeployVersion: 1, Instances: 1}
	var he *netguard.HostError
	if err := r.Apply(context.Background(), c, nil); !errors.As(err, &he) || len(drv.applied) > 0 {
		t.Fatalf("a loopback registry: %v, %d applies; want refused before the runtime", err, len(drv.applied))
	}
	// The hub, --registry and outside registries are fine.
	for _, image := range []string{testHub + "/shop/web:v1", "localhost:5000/berth/shop/web:v2", "nginx:1", "192.0.2.10:5000/x:1"} {
		c.Image = image
		if err := r.Apply(context.Background(), c, nil); err != nil {
			t.Errorf("%s: %v", image, err)
		}
	}
}

// A re-tag's pull dials through the guard: the name is checked at the
// connection itself, so a registry at the host's loopback is never
// reached.
func TestRetagPullDialsThroughTheGuard(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	var reached atomic.Int32
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			reached.Add(1)
			c.Close()
		}
	}()
	g := &HostGuard{Policy: &netguard.Policy{HostAddrs: noHostAddrs}, HubHost: func() string { return testHub }}
	image := "localhost:" + portOf(ln.Addr()) + "/x:1"
	ref, err := name.ParseReference(image, name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	opts := append([]remote.Option{remote.WithContext(context.Background())}, g.pullOptions(image)...)
	var he *netguard.HostError
	if _, err := remote.Image(ref, opts...); !errors.As(err, &he) {
		t.Fatalf("pull from the host's loopback: %v, want refused", err)
	}
	if n := reached.Load(); n != 0 {
		t.Fatalf("the refused pull connected %d times", n)
	}
	if len(g.pullOptions(testHub+"/shop/web:v1")) != 0 {
		t.Error("the hub's images went through the guard")
	}
}

func portOf(a net.Addr) string {
	_, p, _ := net.SplitHostPort(a.String())
	return p
}

// BuildKit pulls a Dockerfile's images from the host: one at the host's
// loopback is refused with its line; the hub's and outside ones are not.
func TestDockerfileImagesOnTheHostAreRefused(t *testing.T) {
	g := &HostGuard{Policy: &netguard.Policy{HostAddrs: noHostAddrs}, HubHost: func() string { return testHub }}
	ok := "FROM " + testHub + "/berth/base:1 AS base\nFROM golang:1.22\nCOPY --from=base /x /x\n"
	if err := g.checkDockerfile(context.Background(), []byte(ok), nil); err != nil {
		t.Fatalf("hub and Docker Hub images: %v", err)
	}
	bad := "ARG REG=127.0.0.1:2375\nFROM golang:1.22\nCOPY --from=${REG}/x:1 /x /x\n"
	var he *netguard.HostError
	err := g.checkDockerfile(context.Background(), []byte(bad), nil)
	if !errors.As(err, &he) || !strings.Contains(err.Error(), "line 3") {
		t.Fatalf("COPY --from a loopback registry: %v, want refused naming line 3", err)
	}
}

// The operator's proxy may be on loopback: a re-tag dials it unchecked.
func TestEnvProxiesNamesTheOperatorsProxy(t *testing.T) {
	t.Setenv("HTTPS_PROXY", "http://127.0.0.1:3128")
	if !envProxies()["127.0.0.1:3128"] {
		t.Fatalf("proxies %v lack 127.0.0.1:3128", envProxies())
	}
}

// At start-up every component is applied again; components sharing a
// registry cost one check of its host, not one each.
func TestRegistryHostCheckedOncePerHost(t *testing.T) {
	var checks int
	policy := &netguard.Policy{HostAddrs: func() []netip.Addr { checks++; return nil }}
	g := &HostGuard{Policy: policy}
	for range 3 {
		if err := g.checkImage(context.Background(), "192.0.2.10:5000/shop/web:v1"); err != nil {
			t.Fatal(err)
		}
	}
	if checks != 1 {
		t.Errorf("the registry's host was checked %d times for three components, want once", checks)
	}
	if err := g.checkImage(context.Background(), "127.0.0.1:5000/shop/web:v1"); err == nil {
		t.Error("a registry on the host's loopback passed")
	}
}

package source

import (
	"bytes"
	"context"
	"errors"
	"net"
	"net/netip"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/berth-platform/berth/internal/netguard"
	"github.com/berth-platform/berth/internal/testgit"
)

func allowing(t *testing.T, cidrs ...string) *netguard.Policy {
	t.Helper()
	allowed, err := netguard.ParsePrefixes(cidrs)
	if err != nil {
		t.Fatal(err)
	}
	return &netguard.Policy{Allowed: allowed, HostAddrs: func() []netip.Addr { return nil }}
}

func TestCloneRefusesTheHostsLoopback(t *testing.T) {
	// A service bound to the host's loopback, which the tenant names.
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
	url := "http://" + ln.Addr().String() + "/x.git"
	var log bytes.Buffer
	dir := filepath.Join(t.TempDir(), "src")
	_, err = Clone(ctxT(t), GitSpec{URL: url, Guard: allowing(t)}, dir, &log)
	var he *netguard.HostError
	if !errors.Is(err, ErrHostNotAllowed) || !errors.As(err, &he) || !strings.Contains(err.Error(), "--allow-endpoint-cidr") {
		t.Fatalf("clone from the host's loopback: %v, want refused\n%s", err, log.String())
	}
	if _, err := Refresh(ctxT(t), GitSpec{URL: url, Guard: allowing(t)}, dir, &log); !errors.Is(err, ErrHostNotAllowed) {
		t.Fatalf("refresh: %v, want refused", err)
	}
	if n := reached.Load(); n != 0 {
		t.Fatalf("the refused clone connected %d times", n)
	}
}

func TestCloneThroughAPinnedName(t *testing.T) {
	f := testgit.Serve(t, "", "")
	f.Commit(f.Repo("app"), "app", map[string]string{"main.go": "package main\n"})
	// localhost is a name: curl gets the checked addresses as its resolve list.
	url := strings.Replace(f.URL("app"), "127.0.0.1", "localhost", 1)
	var log bytes.Buffer
	if _, err := Clone(ctxT(t), GitSpec{URL: url, Guard: allowing(t, "127.0.0.0/8", "::1")}, t.TempDir(), &log); err != nil {
		t.Fatalf("clone with the loopback allowed: %v\n%s", err, log.String())
	}
}

func TestCloneRefusesASubmoduleOnTheHost(t *testing.T) {
	f := testgit.Serve(t, "", "")
	app := superproject(f, "withsub", "lib", "vendor/lib", map[string]string{"lib.txt": "library\n"})
	// The repository is allowed (127.0.0.1), its submodule names another
	// loopback address of the host, which is not.
	f.Git(app, "config", "-f", ".gitmodules", "submodule.vendor/lib.url", strings.Replace(f.URL("lib"), "127.0.0.1", "127.0.0.2", 1))
	f.Commit(app, "add lib", nil)
	var log bytes.Buffer
	_, err := Clone(ctxT(t), GitSpec{URL: f.URL("withsub"), Submodules: true, Guard: allowing(t, "127.0.0.1")}, t.TempDir(), &log)
	if !errors.Is(err, ErrHostNotAllowed) || !strings.Contains(err.Error(), "127.0.0.2") {
		t.Fatalf("submodule on 127.0.0.2: %v, want refused\n%s", err, log.String())
	}

	// Relative and allowed submodules still come, level by level.
	f.Git(app, "config", "-f", ".gitmodules", "submodule.vendor/lib.url", "../lib.git")
	f.Commit(app, "relative lib", nil)
	dir := t.TempDir()
	if _, err := Clone(ctxT(t), GitSpec{URL: f.URL("withsub"), Submodules: true, Guard: allowing(t, "127.0.0.1")}, dir, &log); err != nil {
		t.Fatalf("allowed submodule: %v\n%s", err, log.String())
	}
	if got := readFile(t, filepath.Join(dir, "vendor/lib/lib.txt")); got != "library\n" {
		t.Fatalf("submodule content %q", got)
	}
}

func TestCheckRemoteHost(t *testing.T) {
	ctx := context.Background()
	guard := &netguard.Policy{HostAddrs: func() []netip.Addr { return []netip.Addr{netip.MustParseAddr("192.0.2.7")} }}
	for _, u := range []string{"http://127.0.0.1:8080/x.git", "https://[::1]/x.git", "ssh://git@192.0.2.7/x.git", "git@169.254.169.254:x.git", "https://localhost/x.git"} {
		var he *netguard.HostError
		if err := CheckRemoteHost(ctx, guard, u); !errors.As(err, &he) {
			t.Errorf("%s: %v, want refused", u, err)
		}
	}
	for _, u := range []string{"https://192.0.2.8/x.git", "git@10.0.0.1:x.git", "not a url"} {
		if err := CheckRemoteHost(ctx, guard, u); err != nil {
			t.Errorf("%s: %v, want accepted", u, err)
		}
	}
}

package containerd

import (
	"context"
	"errors"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	rt "github.com/berth-platform/berth/internal/runtime"
)

func TestPullFromLoopbackRegistry(t *testing.T) {
	env := newEnv(t)
	reg := startRegistry(t, registryOpts{throttleBlob: true})
	// ~8 MiB at ~5 MiB/s: long enough for progress lines.
	ref := reg.push(t, "test/big:v1", bigImage(t, 8<<20), "", "")

	var (
		mu    sync.Mutex
		lines []string
	)
	progress := func(l string) {
		mu.Lock()
		lines = append(lines, l)
		mu.Unlock()
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	start := time.Now()
	if err := env.engine.Pull(ctx, ref, nil, progress); err != nil {
		t.Fatal(err)
	}
	t.Logf("pull took %s", time.Since(start))
	mu.Lock()
	defer mu.Unlock()
	for _, l := range lines {
		t.Log(l)
	}
	var sawProgress bool
	for _, l := range lines {
		if strings.HasPrefix(l, "pulling sha256:") && strings.Contains(l, "MiB/") {
			sawProgress = true
		}
	}
	if !sawProgress {
		t.Errorf("no progress line like 'pulling sha256:… x/yMiB'")
	}
	if len(lines) == 0 || !strings.HasPrefix(lines[len(lines)-1], "pulled ") {
		t.Errorf("last line should say pulled: %q", lines)
	}
	ok, err := env.engine.HasImage(ctx, ref)
	if err != nil || !ok {
		t.Fatalf("HasImage = %v, %v", ok, err)
	}
	// Pulling again is cheap and fine.
	if err := env.engine.Pull(ctx, ref, nil, nil); err != nil {
		t.Fatal(err)
	}
}

func TestPullErrors(t *testing.T) {
	env := newEnv(t)
	img := busyboxImage(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()

	check := func(t *testing.T, err, want error, contains ...string) {
		t.Helper()
		if err == nil {
			t.Fatal("pull succeeded, want error")
		}
		t.Logf("error: %v", err)
		if !errors.Is(err, want) {
			t.Fatalf("errors.Is(%v) is false for %v", want, err)
		}
		var pe *PullError
		if !errors.As(err, &pe) || pe.Advice == "" || pe.Reason() == "" {
			t.Fatalf("want a *PullError with advice, got %#v", err)
		}
		for _, c := range contains {
			if !strings.Contains(err.Error(), c) {
				t.Errorf("message lacks %q", c)
			}
		}
	}

	t.Run("not found", func(t *testing.T) {
		reg := startRegistry(t, registryOpts{})
		reg.push(t, "test/busybox:v1", img, "", "")
		err := env.engine.Pull(ctx, reg.host+"/test/busybox:nope", nil, nil)
		check(t, err, ErrImageNotFound, "image not found")
		err = env.engine.Pull(ctx, reg.host+"/test/missing:v1", nil, nil)
		check(t, err, ErrImageNotFound)
	})

	t.Run("unauthorized", func(t *testing.T) {
		reg := startRegistry(t, registryOpts{user: "berth", pass: "s3cret"})
		ref := reg.push(t, "test/busybox:v1", img, "berth", "s3cret")
		err := env.engine.Pull(ctx, ref, &rt.RegistryAuth{Username: "berth", Password: "wrong"}, nil)
		check(t, err, ErrUnauthorized, "denied", "username and password")
		err = env.engine.Pull(ctx, ref, nil, nil)
		check(t, err, ErrUnauthorized, "requires credentials")
		if err := env.engine.Pull(ctx, ref, &rt.RegistryAuth{Username: "berth", Password: "s3cret"}, nil); err != nil {
			t.Fatalf("right credentials: %v", err)
		}
	})

	t.Run("unreachable", func(t *testing.T) {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr := l.Addr().String()
		l.Close() // nothing listens there now
		err = env.engine.Pull(ctx, addr+"/test/busybox:v1", nil, nil)
		check(t, err, ErrRegistryUnreachable, "unreachable", addr)
		err = env.engine.Pull(ctx, addr+"/test/busybox:v1", &rt.RegistryAuth{PlainHTTP: true}, nil)
		check(t, err, ErrRegistryUnreachable)
	})

	t.Run("self-signed TLS", func(t *testing.T) {
		reg := startRegistry(t, registryOpts{tls: true})
		ref := reg.push(t, "test/busybox:v1", img, "", "")
		err := env.engine.Pull(ctx, ref, nil, nil)
		check(t, err, ErrUntrustedCertificate, "x509: certificate signed by unknown authority", "skip TLS verification")
		if err := env.engine.Pull(ctx, ref, &rt.RegistryAuth{SkipVerify: true}, nil); err != nil {
			t.Fatalf("with SkipVerify: %v", err)
		}
	})

	t.Run("plain HTTP explicitly", func(t *testing.T) {
		reg := startRegistry(t, registryOpts{})
		ref := reg.push(t, "test/busybox:v2", img, "", "")
		if err := env.engine.Pull(ctx, ref, &rt.RegistryAuth{PlainHTTP: true}, nil); err != nil {
			t.Fatal(err)
		}
	})
}

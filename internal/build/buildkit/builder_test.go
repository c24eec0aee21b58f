package buildkit

import (
	"archive/tar"
	"context"
	"errors"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
)

// TestBuilder builds on a real buildkitd against a registry with basic
// auth: a push that can be pulled by digest, a rebuild from the cache, a
// failing step, a cancellation and a timeout.
func TestBuilder(t *testing.T) {
	e := newEnv(t)
	auth := map[string]Auth{e.reg.Host: {Username: testUser, Password: testPass}}
	dockerfile := "FROM " + e.base + "\n" +
		"RUN --mount=type=cache,target=/cache echo hi > /hello && date >> /cache/runs\n" +
		"COPY app.txt /srv/app.txt\n"
	ctxDir := contextDir(t, map[string]string{"app.txt": "hello from the context\n"})
	ref := e.reg.Host + "/team/app:v1"

	var first Result
	t.Run("push", func(t *testing.T) {
		var out lines
		res, err := e.builder.Build(t.Context(), Request{
			ContextDir: ctxDir, DockerfileInline: dockerfile, Push: []string{ref}, Auth: auth,
			Timeout: 5 * time.Minute,
		}, out.add)
		if err != nil {
			t.Fatalf("build: %v\n%s", err, out.text())
		}
		t.Logf("cold build: %s, %d steps, %d cached, digest %s", res.Duration.Round(time.Millisecond), res.Steps, res.CacheHits, res.Digest)
		t.Logf("progress:\n%s", out.text())
		if !strings.HasPrefix(res.Digest, "sha256:") {
			t.Fatalf("digest %q", res.Digest)
		}
		if res.Steps != 2 {
			t.Errorf("steps = %d, want 2 (RUN, COPY)", res.Steps)
		}
		for _, want := range []string{"2/3] RUN", "3/3] COPY app.txt"} {
			if !out.has(LineStart, want) {
				t.Errorf("no start line for %q", want)
			}
		}
		if !out.has(LineDone, "DONE") {
			t.Error("no DONE line")
		}
		first = res

		// Pullable by digest, with the RUN's and the COPY's files.
		dref, err := name.NewDigest(e.reg.Host+"/team/app@"+res.Digest, name.Insecure)
		if err != nil {
			t.Fatal(err)
		}
		img, err := remote.Image(dref, remote.WithAuth(&authn.Basic{Username: testUser, Password: testPass}))
		if err != nil {
			t.Fatalf("pull %s: %v", dref, err)
		}
		files := imageFiles(t, img)
		if files["hello"] != "hi\n" || files["srv/app.txt"] != "hello from the context\n" {
			t.Errorf("image files: hello=%q srv/app.txt=%q", files["hello"], files["srv/app.txt"])
		}
		if _, ok := files["cache/runs"]; ok {
			t.Error("the cache mount ended up in the image")
		}
	})

	t.Run("cached", func(t *testing.T) {
		if first.Digest == "" {
			t.Skip("first build failed")
		}
		var out lines
		res, err := e.builder.Build(t.Context(), Request{
			ContextDir: ctxDir, DockerfileInline: dockerfile, Push: []string{ref}, Auth: auth,
		}, out.add)
		if err != nil {
			t.Fatalf("rebuild: %v\n%s", err, out.text())
		}
		t.Logf("warm build: %s, %d steps, %d cached", res.Duration.Round(time.Millisecond), res.Steps, res.CacheHits)
		t.Logf("progress:\n%s", out.text())
		if res.Steps == 0 || res.CacheHits != res.Steps {
			t.Errorf("cache hits %d of %d steps, want all", res.CacheHits, res.Steps)
		}
		if !out.has(LineCached, "RUN") {
			t.Error("no CACHED line for the RUN step")
		}
		if res.Digest != first.Digest {
			t.Errorf("unchanged rebuild has digest %s, first %s", res.Digest, first.Digest)
		}
	})

	t.Run("failure", func(t *testing.T) {
		var out lines
		df := "FROM " + e.base + "\n" +
			"RUN echo compiling main.go; for i in 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20 21 22 23 24 25 26 27 28 29 30 31 32 33 34 35; do echo line $i; done; " +
			"echo './main.go:3:2: undefined: foo' >&2; exit 3\n"
		_, err := e.builder.Build(t.Context(), Request{ContextDir: ctxDir, DockerfileInline: df, Auth: auth}, out.add)
		var be *BuildError
		if !errors.As(err, &be) {
			t.Fatalf("error %T %v, want *BuildError\n%s", err, err, out.text())
		}
		t.Logf("error: %v\ndetail:\n%s", err, be.Detail())
		if !strings.Contains(be.Step, "[2/2] RUN echo compiling") {
			t.Errorf("step %q", be.Step)
		}
		if !strings.Contains(be.Err.Error(), "exit code: 3") {
			t.Errorf("err %q lacks the exit code", be.Err)
		}
		joined := strings.Join(be.Output, "\n")
		if !strings.Contains(joined, "./main.go:3:2: undefined: foo") || !strings.Contains(joined, "line 35") {
			t.Errorf("output lacks the compiler's message:\n%s", joined)
		}
		if len(be.Output) > 30 || strings.Contains(joined, "compiling main.go") {
			t.Errorf("output keeps %d lines, want the last 30", len(be.Output))
		}
		if !out.has(LineError, "exit code: 3") {
			t.Error("no ERROR line")
		}
	})

	// A RUN that never ends: a nonce keeps it out of the cache.
	sleeper := "FROM " + e.base + "\nRUN echo started-" + time.Now().Format("150405.000000") + " && sleep 600\n"

	t.Run("cancel", func(t *testing.T) {
		ctx, cancel := context.WithCancel(t.Context())
		defer cancel()
		var out lines
		progress := func(l Line) {
			out.add(l)
			if l.Kind == LineLog && strings.Contains(l.Text, "started-") {
				cancel()
			}
		}
		start := time.Now()
		_, err := e.builder.Build(ctx, Request{ContextDir: ctxDir, DockerfileInline: sleeper, Auth: auth}, progress)
		took := time.Since(start)
		t.Logf("cancelled build returned after %s: %v", took.Round(time.Millisecond), err)
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("error %v, want context.Canceled\n%s", err, out.text())
		}
		if took > time.Minute {
			t.Errorf("cancellation took %s", took)
		}
	})

	t.Run("timeout", func(t *testing.T) {
		var out lines
		sleeper := strings.Replace(sleeper, "started-", "started-again-", 1)
		_, err := e.builder.Build(t.Context(), Request{ContextDir: ctxDir, DockerfileInline: sleeper, Auth: auth, Timeout: 3 * time.Second}, out.add)
		var te *TimeoutError
		if !errors.As(err, &te) {
			t.Fatalf("error %T %v, want *TimeoutError\n%s", err, err, out.text())
		}
		if want := "build timed out after 3s; raise the build timeout"; err.Error() != want {
			t.Errorf("message %q, want %q", err, want)
		}
	})

	t.Run("bad-auth", func(t *testing.T) {
		_, err := e.builder.Build(t.Context(), Request{ContextDir: ctxDir, DockerfileInline: dockerfile, Push: []string{ref},
			Auth: map[string]Auth{e.reg.Host: {Username: testUser, Password: "wrong"}}}, nil)
		var be *BuildError
		if !errors.As(err, &be) {
			t.Fatalf("error %T %v, want *BuildError", err, err)
		}
		t.Logf("error: %v", err)
		if !strings.Contains(strings.ToLower(err.Error()), "unauthorized") && !strings.Contains(err.Error(), "401") {
			t.Errorf("error does not say the registry refused: %v", err)
		}
	})
}

func TestBuilderNoDaemon(t *testing.T) {
	b := NewBuilder(BuilderConfig{Address: "unix:///tmp/berth-no-such-buildkitd.sock"})
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	_, err := b.Build(ctx, Request{ContextDir: t.TempDir(), DockerfileInline: "FROM scratch\n"}, nil)
	if err == nil || !strings.Contains(err.Error(), "does not answer") {
		t.Fatalf("build without buildkitd: %v", err)
	}
	var be *BuildError
	if errors.As(err, &be) {
		t.Error("an unreachable buildkitd is reported as a build failure")
	}
}

// imageFiles reads the regular files of img's flattened file system.
func imageFiles(t *testing.T, img v1.Image) map[string]string {
	t.Helper()
	rc := mutate.Extract(img)
	defer rc.Close()
	files := map[string]string{}
	tr := tar.NewReader(rc)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return files
		}
		if err != nil {
			t.Fatal(err)
		}
		if h.Typeflag == tar.TypeReg && h.Size < 1<<20 {
			b, err := io.ReadAll(tr)
			if err != nil {
				t.Fatal(err)
			}
			files[strings.TrimPrefix(h.Name, "/")] = string(b)
		}
	}
}

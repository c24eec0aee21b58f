package buildkit

import (
	"context"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/registry"

	"github.com/berth-platform/berth/internal/build/baseimage"
)

func TestTmpE2EBaseImages(t *testing.T) {
	if os.Getenv("BK_E2E") == "" {
		t.Skip()
	}
	srv := httptest.NewServer(registry.New())
	defer srv.Close()
	host := strings.TrimPrefix(srv.URL, "http://")
	if _, err := baseimage.Prepare(context.Background(), baseimage.Options{Registry: host, WorkDir: "/var/cache/berth-test/baseimage", Languages: []string{"go", "static"}}); err != nil {
		t.Fatal(err)
	}
	dir := shortDir(t)
	d := NewDaemon(DaemonConfig{Dir: filepath.Join(dir, "bk"), LogPath: filepath.Join(dir, "bk.log"), Registries: []RegistryConfig{{Host: host, PlainHTTP: true}}})
	if err := d.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	defer d.Stop(10 * time.Second)
	b := NewBuilder(BuilderConfig{Address: d.Address(), InsecureRegistries: []string{host}})
	ctxDir := contextDir(t, map[string]string{
		"go.mod":     "module hello\n\ngo 1.23\n",
		"main.go":    "package main\n\nimport \"fmt\"\n\nfunc main() { fmt.Println(\"hello from berth\") }\n",
		"index.html": "<h1>hi</h1>\n",
	})
	df := "FROM " + host + "/berth/base-go-builder AS build\nWORKDIR /src\nCOPY go.mod main.go ./\n" +
		"RUN --mount=type=cache,target=/root/.cache/go-build go build -o /out/hello . && /out/hello\n" +
		"FROM " + host + "/berth/base-go-runner\nCOPY --from=build /out/hello /app/hello\nCMD [\"/app/hello\"]\n"
	for i := 0; i < 2; i++ {
		var out lines
		res, err := b.Build(context.Background(), Request{ContextDir: ctxDir, DockerfileInline: df, Push: []string{host + "/app/hello:v1"}}, out.add)
		if err != nil {
			t.Fatalf("%v\n%s", err, out.text())
		}
		t.Logf("go build %d: %s steps=%d cached=%d\n%s", i, res.Duration, res.Steps, res.CacheHits, out.text())
	}
	sdf := "FROM " + host + "/berth/base-static-runner\nCOPY index.html /usr/share/nginx/html/\n"
	res, err := b.Build(context.Background(), Request{ContextDir: ctxDir, DockerfileInline: sdf, Push: []string{host + "/app/site:v1"}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("static: %s", res.Duration)
}

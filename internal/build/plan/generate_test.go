package plan

import (
	"errors"
	"flag"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/moby/buildkit/frontend/dockerfile/instructions"
	"github.com/moby/buildkit/frontend/dockerfile/linter"
	"github.com/moby/buildkit/frontend/dockerfile/parser"

	"github.com/berth-platform/berth/internal/model"
)

var update = flag.Bool("update", false, "rewrite the golden Dockerfiles in testdata/golden")

// parsed is a generated Dockerfile read back by BuildKit's own parser.
type parsed struct {
	stages []instructions.Stage
}

// parseDockerfile fails the test unless BuildKit's dockerfile frontend
// (the one built into buildkitd v0.18, no # syntax line) accepts the file
// without a lint warning.
func parseDockerfile(t *testing.T, content string) parsed {
	t.Helper()
	first, _, _ := strings.Cut(content, "\n")
	if strings.HasPrefix(strings.ToLower(strings.ReplaceAll(first, " ", "")), "#syntax") || strings.Contains(first, "=") {
		t.Fatalf("the first line %q is a parser directive; none may be used", first)
	}
	res, err := parser.Parse(strings.NewReader(content))
	if err != nil {
		t.Fatalf("parse: %v\n%s", err, content)
	}
	if len(res.Warnings) > 0 {
		t.Fatalf("parser warnings %+v\n%s", res.Warnings, content)
	}
	var warnings []string
	lint := linter.New(&linter.Config{Warn: func(rule, desc, url, msg string, loc []parser.Range) {
		warnings = append(warnings, rule+": "+msg)
	}})
	stages, _, err := instructions.Parse(res.AST, lint)
	if err != nil {
		t.Fatalf("instructions: %v\n%s", err, content)
	}
	if len(warnings) > 0 {
		t.Fatalf("lint warnings %v\n%s", warnings, content)
	}
	return parsed{stages: stages}
}

func (p parsed) names() []string {
	var out []string
	for _, s := range p.stages {
		out = append(out, s.Name)
	}
	return out
}

func (p parsed) bases() []string {
	var out []string
	for _, s := range p.stages {
		out = append(out, s.BaseName)
	}
	return out
}

// cacheTargets lists the cache mount targets of a stage's RUN commands.
func (p parsed) cacheTargets(t *testing.T, stage int) []string {
	t.Helper()
	var out []string
	for _, c := range p.stages[stage].Commands {
		run, ok := c.(*instructions.RunCommand)
		if !ok {
			continue
		}
		if err := run.Expand(func(w string) (string, error) { return w, nil }); err != nil {
			t.Fatal(err)
		}
		for _, m := range instructions.GetMounts(run) {
			if m.Type != instructions.MountTypeCache {
				t.Fatalf("mount %+v is not a cache mount", m)
			}
			if !slices.Contains(out, m.Target) {
				out = append(out, m.Target)
			}
		}
	}
	slices.Sort(out)
	return out
}

// order returns the positions of the first command of stage whose text
// contains each needle, -1 for none.
func (p parsed) order(stage int, needles ...string) []int {
	var out []int
	for _, n := range needles {
		pos := -1
		for i, c := range p.stages[stage].Commands {
			if strings.Contains(c.(interface{ String() string }).String(), n) {
				pos = i
				break
			}
		}
		out = append(out, pos)
	}
	return out
}

func detectT(t *testing.T, dir string) Detection {
	t.Helper()
	det, err := Detect(td(dir), "")
	if err != nil {
		t.Fatal(err)
	}
	return det
}

func TestGenerate(t *testing.T) {
	for _, tc := range []struct {
		dir    string
		stages []string
		caches []string // of the build stage
		// deps: the manifest copy, the install and the source copy, which
		// must come in this order so unchanged dependencies reuse layers.
		deps []string
		port int
		cmd  []string
	}{
		{dir: "go", stages: []string{"build", "runtime"}, caches: []string{"/go/pkg/mod", "/root/.cache/go-build"},
			deps: []string{"go.mod go.sum*", "go mod download", "COPY . ."}, port: 5000, cmd: []string{"/app/bin/hello"}},
		{dir: "go-cmd", stages: []string{"build", "runtime"}, caches: []string{"/go/pkg/mod", "/root/.cache/go-build"},
			port: 5000, cmd: []string{"/app/bin/shop"}},
		{dir: "go-vendor", stages: []string{"build", "runtime"}, caches: []string{"/go/pkg/mod", "/root/.cache/go-build"},
			port: 5000, cmd: []string{"/app/bin/v"}},
		{dir: "node-npm", stages: []string{"build", "runtime"}, caches: []string{"/root/.npm"},
			deps: []string{"package.json package-lock.json", "npm ci", "COPY . ."}, port: 5000, cmd: []string{"node", "dist/server.js"}},
		{dir: "node-yarn", stages: []string{"build", "runtime"}, caches: []string{"/root/.cache/yarn", "/root/.npm"},
			deps: []string{"package.json yarn.lock", "yarn install --non-interactive --frozen-lockfile", "COPY . ."}, port: 5000, cmd: []string{"node", "index.js"}},
		{dir: "node-pnpm", stages: []string{"build", "runtime"}, caches: []string{"/root/.cache/pnpm", "/root/.npm"},
			deps: []string{"package.json pnpm-lock.yaml", "pnpm install --store-dir /root/.cache/pnpm --frozen-lockfile", "COPY . ."}, port: 5000, cmd: []string{"node", "index.js"}},
		{dir: "node-static", stages: []string{"build", "runtime"}, caches: []string{"/root/.cache/yarn", "/root/.npm"}, port: 80},
		{dir: "node-entry", stages: []string{"build", "runtime"}, caches: []string{"/root/.npm"}, port: 5000, cmd: []string{"node", "app.js"}},
		{dir: "node-hooks", stages: []string{"build", "runtime"}, caches: []string{"/root/.npm"}, port: 5000, cmd: []string{"node", "index.js"}},
		{dir: "python-requirements", stages: []string{"build", "runtime"}, caches: []string{"/root/.cache/pip"},
			deps: []string{"COPY requirements.txt", "-r requirements.txt", "COPY . ."}, port: 5000, cmd: []string{"sh", "-c", "exec python3 app.py"}},
		{dir: "python-local-req", stages: []string{"build", "runtime"}, caches: []string{"/root/.cache/pip"}, port: 5000, cmd: []string{"sh", "-c", "exec python3 main.py"}},
		{dir: "python-poetry", stages: []string{"build", "runtime"}, caches: []string{"/root/.cache/pip"},
			deps: []string{"WORKDIR /app", "'fastapi==0.110.0' 'starlette==0.36.3'", "COPY . ."}, port: 5000, cmd: []string{"sh", "-c", "exec python3 main.py"}},
		{dir: "python-pipenv", stages: []string{"build", "runtime"}, caches: []string{"/root/.cache/pip"},
			deps: []string{"WORKDIR /app", "'flask==3.0.0' 'werkzeug==3.0.1'", "COPY . ."}, port: 5000, cmd: []string{"sh", "-c", "exec python3 app.py"}},
		{dir: "python-pyproject", stages: []string{"build", "runtime"}, caches: []string{"/root/.cache/pip"}, port: 5000, cmd: []string{"sh", "-c", "exec python3 server.py"}},
		{dir: "python-django", stages: []string{"build", "runtime"}, caches: []string{"/root/.cache/pip"}, port: 5000,
			cmd: []string{"sh", "-c", "exec python3 manage.py runserver 0.0.0.0:$PORT"}},
		{dir: "procfile", stages: []string{"build", "runtime"}, caches: []string{"/root/.cache/pip"}, port: 5000,
			cmd: []string{"sh", "-c", "exec gunicorn app:app --bind 0.0.0.0:$PORT"}},
		{dir: "maven", stages: []string{"build", "runtime"}, caches: []string{"/root/.m2"},
			deps: []string{"COPY pom.xml", "dependency:go-offline", "COPY . ."}, port: 5000,
			cmd: []string{"sh", "-c", "exec java -Dserver.port=$PORT $JAVA_OPTS -jar /app/app.jar"}},
		{dir: "maven-war", stages: []string{"build", "runtime"}, caches: []string{"/root/.m2"}, port: 8080},
		{dir: "maven-multi", stages: []string{"build", "runtime"}, caches: []string{"/root/.m2"}, port: 5000,
			cmd: []string{"sh", "-c", "exec java -Dserver.port=$PORT $JAVA_OPTS -jar /app/app.jar"}},
		{dir: "gradle", stages: []string{"build", "runtime"}, caches: []string{"/root/.gradle"}, port: 5000,
			cmd: []string{"sh", "-c", "exec java -Dserver.port=$PORT $JAVA_OPTS -jar /app/app.jar"}},
		{dir: "jar", stages: []string{"runtime"}, port: 5000, cmd: []string{"sh", "-c", "exec java -Dserver.port=$PORT $JAVA_OPTS -jar /app/app.jar"}},
		{dir: "war", stages: []string{"runtime"}, port: 8080},
		{dir: "php-composer", stages: []string{"build", "runtime"}, caches: []string{"/root/.cache/composer"},
			deps: []string{"composer.json composer.lock*", "composer install", "COPY . ."}, port: 80},
		{dir: "php-plain", stages: []string{"runtime"}, port: 80},
		{dir: "static", stages: []string{"runtime"}, port: 80},
		{dir: "ruby", stages: []string{"build", "runtime"}, caches: []string{"/root/.cache/bundle"},
			deps: []string{"Gemfile Gemfile.lock*", "bundle install", "COPY . ."}, port: 5000,
			cmd: []string{"sh", "-c", "exec bundle exec rackup --host 0.0.0.0 --port $PORT"}},
		{dir: "dotnet", stages: []string{"build", "runtime"}, caches: []string{"/root/.nuget/packages"}, port: 5000, cmd: []string{"dotnet", "Shop.Web.dll"}},
		{dir: "dotnet-single", stages: []string{"build", "runtime"}, caches: []string{"/root/.nuget/packages"},
			deps: []string{`"hello.csproj"`, "dotnet restore", "COPY . ."}, port: 5000, cmd: []string{"dotnet", "hello.dll"}},
		{dir: "rainbondfile-buildpath", stages: []string{"build", "runtime"}, caches: []string{"/go/pkg/mod", "/root/.cache/go-build"},
			port: 8080, cmd: []string{"sh", "-c", "exec api --listen :$PORT"}},
	} {
		t.Run(tc.dir, func(t *testing.T) {
			det := detectT(t, tc.dir)
			plan, err := Generate(det, Options{})
			if err != nil {
				t.Fatal(err)
			}
			golden(t, tc.dir, plan.Dockerfile)
			p := parseDockerfile(t, plan.Dockerfile)
			if got := p.names(); !reflect.DeepEqual(got, tc.stages) || !reflect.DeepEqual(plan.Stages, tc.stages) {
				t.Fatalf("stages %v / plan %v, want %v", got, plan.Stages, tc.stages)
			}
			if !reflect.DeepEqual(p.bases(), plan.Images) {
				t.Fatalf("plan images %v, Dockerfile pulls %v", plan.Images, p.bases())
			}
			defaults := DefaultBaseImages()
			for _, img := range plan.Images {
				if !isDefaultImage(defaults, img) {
					t.Errorf("image %s is not one of the defaults", img)
				}
			}
			if len(tc.stages) == 2 {
				if got := p.cacheTargets(t, 0); !reflect.DeepEqual(got, tc.caches) {
					t.Errorf("build stage cache mounts %v, want %v", got, tc.caches)
				}
				if pos := p.order(1, "--from=build"); pos[0] < 0 {
					t.Errorf("the runtime stage copies nothing from the build stage")
				}
			}
			if got := p.cacheTargets(t, len(tc.stages)-1); len(tc.stages) == 2 && len(got) > 0 {
				t.Errorf("the runtime stage uses cache mounts %v", got)
			}
			if tc.deps != nil {
				pos := p.order(0, tc.deps...)
				if pos[0] < 0 || pos[1] <= pos[0] || pos[2] <= pos[1] {
					t.Errorf("dependency steps %q at %v, want increasing positions", tc.deps, pos)
				}
			}
			if plan.Port != tc.port {
				t.Errorf("port %d, want %d", plan.Port, tc.port)
			}
			if !reflect.DeepEqual(plan.Cmd, tc.cmd) {
				t.Errorf("cmd %q, want %q", plan.Cmd, tc.cmd)
			}
			if plan.UserDockerfile || plan.DockerfilePath != "" || plan.Context != det.BuildPath {
				t.Errorf("plan %+v", plan)
			}
			if !slices.Contains(plan.Ignore, ".git") {
				t.Errorf("ignore %v lacks .git", plan.Ignore)
			}
		})
	}
}

func isDefaultImage(set BaseImages, img string) bool {
	for _, bi := range set {
		if bi.Builder == img || bi.Runner == img {
			return true
		}
	}
	return false
}

// golden compares a generated Dockerfile with testdata/golden/<name>, so a
// change in the plans shows up in review as a diff of the files.
func golden(t *testing.T, name, got string) {
	t.Helper()
	p := filepath.Join("testdata", "golden", name+".Dockerfile")
	if *update {
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(p)
	if err != nil {
		t.Fatalf("%v (run go test -update to create the golden files)", err)
	}
	if string(want) != got {
		t.Errorf("Dockerfile differs from %s (go test -update rewrites it):\n--- got\n%s--- want\n%s", p, got, want)
	}
}

func TestGenerateNodeStatic(t *testing.T) {
	plan, err := Generate(detectT(t, "node-static"), Options{})
	if err != nil {
		t.Fatal(err)
	}
	p := parseDockerfile(t, plan.Dockerfile)
	if p.stages[1].BaseName != "nginx:alpine" || plan.Cmd != nil {
		t.Fatalf("static front-end should run on the static runner with its own command: %v %v", p.bases(), plan.Cmd)
	}
	if pos := p.order(1, "/out-site/ /usr/share/nginx/html/"); pos[0] < 0 {
		t.Fatalf("build output not served:\n%s", plan.Dockerfile)
	}
	if pos := p.order(0, "yarn run build"); pos[0] < 0 {
		t.Fatalf("build script not run:\n%s", plan.Dockerfile)
	}
}

func TestGenerateRainbondfile(t *testing.T) {
	det := detectT(t, "rainbondfile-buildpath")
	// The component's own port wins: berth probes and routes it.
	declared, err := Generate(det, Options{Port: 3000})
	if err != nil || declared.Port != 3000 || !strings.Contains(declared.Dockerfile, " PORT=3000 ") {
		t.Fatalf("a component declaring port 3000 gets port %d, err %v:\n%s", declared.Port, err, declared.Dockerfile)
	}
	plan, err := Generate(det, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if plan.Context != "services/api" || plan.Port != 8080 {
		t.Fatalf("context %q port %d", plan.Context, plan.Port)
	}
	if !strings.Contains(plan.Dockerfile, "ENV PATH=/app/bin:$PATH PORT=8080 LOG_LEVEL=debug WORKERS=4\n") {
		t.Fatalf("runtime env missing:\n%s", plan.Dockerfile)
	}
	if !strings.Contains(plan.Dockerfile, "EXPOSE 8080\n") {
		t.Fatalf("EXPOSE missing:\n%s", plan.Dockerfile)
	}
}

func TestGeneratePortOption(t *testing.T) {
	plan, err := Generate(detectT(t, "go"), Options{Port: 8081})
	if err != nil || plan.Port != 8081 || !strings.Contains(plan.Dockerfile, "PORT=8081") {
		t.Fatalf("port option ignored: %d %v", plan.Port, err)
	}
}

func TestGenerateBuildEnv(t *testing.T) {
	env := map[string]string{
		"BUILD_GOPROXY":       "http://127.0.0.1:3000/mod",
		"GONOSUMDB":           "*",
		"GOFLAGS":             "-mod=mod -buildvcs=false",
		"BUILD_PATH":          "/evil",
		"NPM_CONFIG_REGISTRY": "http://127.0.0.1:4873/",
	}
	plan, err := Generate(detectT(t, "go"), Options{BuildEnv: env})
	if err != nil {
		t.Fatal(err)
	}
	p := parseDockerfile(t, plan.Dockerfile)
	if !reflect.DeepEqual(plan.BuildArgs, env) {
		t.Fatalf("build args %v", plan.BuildArgs)
	}
	for _, v := range env {
		if len(v) > 3 && strings.Contains(plan.Dockerfile, v) {
			t.Fatalf("value %q is written into the Dockerfile; it must travel as a build arg", v)
		}
	}
	var args []string
	envs := map[string]string{}
	for _, c := range p.stages[0].Commands {
		switch c := c.(type) {
		case *instructions.ArgCommand:
			for _, a := range c.Args {
				args = append(args, a.Key)
			}
		case *instructions.EnvCommand:
			for _, kv := range c.Env {
				envs[kv.Key] = kv.Value
			}
		}
	}
	if want := []string{"BUILD_GOPROXY", "BUILD_PATH", "GOFLAGS", "GONOSUMDB", "NPM_CONFIG_REGISTRY"}; !reflect.DeepEqual(args, want) {
		t.Fatalf("ARGs %v, want %v", args, want)
	}
	if envs["GOPROXY"] != "${BUILD_GOPROXY}" || envs["GONOSUMDB"] != "${GONOSUMDB}" || envs["NPM_CONFIG_REGISTRY"] != "${NPM_CONFIG_REGISTRY}" {
		t.Fatalf("build stage env %v", envs)
	}
	if envs["GOFLAGS"] != "${GOFLAGS}" {
		t.Fatalf("the user's GOFLAGS must override berth's default: %v", envs)
	}
	if _, bad := envs["PATH"]; bad {
		t.Fatalf("BUILD_PATH must not set PATH: %v", envs)
	}
	pos := p.order(0, "GOFLAGS=-mod=mod", "ENV BUILD_GOPROXY", "go mod download")
	if pos[0] < 0 || pos[1] <= pos[0] || pos[2] <= pos[1] {
		t.Fatalf("the build env must come after berth's defaults and before the downloads: %v\n%s", pos, plan.Dockerfile)
	}
	for _, c := range p.stages[1].Commands {
		if _, ok := c.(*instructions.ArgCommand); ok {
			t.Fatalf("the runtime stage declares build args:\n%s", plan.Dockerfile)
		}
	}

	var ve *model.ValidationError
	if _, err := Generate(detectT(t, "go"), Options{BuildEnv: map[string]string{"A-B": "x"}}); !errors.As(err, &ve) {
		t.Fatalf("invalid name accepted: %v", err)
	}
}

func TestGenerateMavenMirror(t *testing.T) {
	plan, err := Generate(detectT(t, "maven"), Options{BuildEnv: map[string]string{"BUILD_MAVEN_MIRROR_URL": "http://127.0.0.1:8081/repo"}})
	if err != nil {
		t.Fatal(err)
	}
	parseDockerfile(t, plan.Dockerfile)
	if !strings.Contains(plan.Dockerfile, "mvn -B -s /usr/local/etc/berth-maven-settings.xml -DskipTests package") ||
		!strings.Contains(plan.Dockerfile, `"$MAVEN_MIRROR_URL"`) {
		t.Fatalf("maven mirror not configured:\n%s", plan.Dockerfile)
	}
}

func TestGenerateOfflineImages(t *testing.T) {
	images := OfflineBaseImages("127.0.0.1:5000/")
	for _, dir := range []string{"go", "node-npm", "node-yarn", "node-static", "python-requirements", "python-poetry", "maven", "jar", "static"} {
		t.Run(dir, func(t *testing.T) {
			plan, err := Generate(detectT(t, dir), Options{BaseImages: images})
			if err != nil {
				t.Fatal(err)
			}
			p := parseDockerfile(t, plan.Dockerfile)
			for _, b := range p.bases() {
				if !strings.HasPrefix(b, "127.0.0.1:5000/berth/base-") {
					t.Errorf("image %s is not an offline base image", b)
				}
			}
		})
	}
	var nb *NoBaseImageError
	for _, dir := range []string{"dotnet", "gradle", "war", "ruby", "php-composer"} {
		if _, err := Generate(detectT(t, dir), Options{BaseImages: images}); !errors.As(err, &nb) {
			t.Errorf("%s with offline images: %v, want NoBaseImageError", dir, err)
		}
	}
	merged := DefaultBaseImages().Merge(images)
	if plan, err := Generate(detectT(t, "dotnet"), Options{BaseImages: merged}); err != nil || !strings.Contains(plan.Dockerfile, "mcr.microsoft.com") {
		t.Fatalf("merged sets should fall back to the defaults: %v", err)
	}
	if merged[Go].Builder != "127.0.0.1:5000/berth/base-go-builder" {
		t.Fatalf("merge kept %s", merged[Go].Builder)
	}
}

func TestGenerateMirrorAndCacheScope(t *testing.T) {
	plan, err := Generate(detectT(t, "dotnet-single"), Options{MirrorPrefix: "mirror.local:5000/hub", CacheScope: "team-a"})
	if err != nil {
		t.Fatal(err)
	}
	p := parseDockerfile(t, plan.Dockerfile)
	want := []string{"mirror.local:5000/hub/mcr.microsoft.com/dotnet/sdk:8.0", "mirror.local:5000/hub/mcr.microsoft.com/dotnet/aspnet:8.0"}
	if !reflect.DeepEqual(p.bases(), want) {
		t.Fatalf("images %v, want %v", p.bases(), want)
	}
	if !strings.Contains(plan.Dockerfile, "--mount=type=cache,target=/root/.nuget/packages,id=team-a/root/.nuget/packages") {
		t.Fatalf("cache mounts are not scoped:\n%s", plan.Dockerfile)
	}
	for in, want := range map[string]string{
		"golang:1.22-bookworm":                "m.io/golang:1.22-bookworm",
		"node:20":                             "m.io/library/node:20",
		"bitnami/redis:7":                     "m.io/bitnami/redis:7",
		"docker.io/library/nginx:alpine":      "m.io/library/nginx:alpine",
		"ghcr.io/o/i:1":                       "m.io/ghcr.io/o/i:1",
		"localhost:5000/x":                    "m.io/localhost:5000/x",
		"m.io/already/there":                  "m.io/already/there",
		"mcr.microsoft.com/dotnet/sdk:8.0":    "m.io/mcr.microsoft.com/dotnet/sdk:8.0",
		"127.0.0.1:5000/berth/base-go-runner": "m.io/127.0.0.1:5000/berth/base-go-runner",
	} {
		if in == "golang:1.22-bookworm" {
			want = "m.io/library/golang:1.22-bookworm"
		}
		if got := withMirror("m.io/", in); got != want {
			t.Errorf("withMirror(%s) = %s, want %s", in, got, want)
		}
	}
}

func TestGenerateUserDockerfile(t *testing.T) {
	det := detectT(t, "dockerfile")
	plan, err := Generate(det, Options{MirrorPrefix: "m.io", BuildEnv: map[string]string{"X": "1"}})
	if err != nil {
		t.Fatal(err)
	}
	content, _ := os.ReadFile(td("dockerfile/Dockerfile"))
	if plan.Dockerfile != string(content) || !plan.UserDockerfile || plan.DockerfilePath != "Dockerfile" {
		t.Fatalf("the user's Dockerfile must be used as is: %+v", plan)
	}
	if !reflect.DeepEqual(plan.Stages, []string{"base", "stage-1"}) || plan.Port != 8080 || !reflect.DeepEqual(plan.Images, []string{"alpine:3.20"}) {
		t.Fatalf("stages %v port %d images %v", plan.Stages, plan.Port, plan.Images)
	}

	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "Dockerfile"), []byte("FROM alpine\nRUN <<EOF\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	det, err = Detect(dir, "")
	if err != nil {
		t.Fatal(err)
	}
	var me *ManifestError
	if _, err := Generate(det, Options{}); !errors.As(err, &me) {
		t.Fatalf("broken Dockerfile: %v", err)
	}
}

func TestGenerateStartCommandErrors(t *testing.T) {
	var se *StartCommandError
	if _, err := Generate(detectT(t, "python-noentry"), Options{}); !errors.As(err, &se) || !strings.Contains(err.Error(), "Procfile") {
		t.Fatalf("python without an entry: %v", err)
	}
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "package.json"), []byte(`{"name":"x"}`), 0o644); err != nil {
		t.Fatal(err)
	}
	det, err := Detect(dir, "")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Generate(det, Options{}); !errors.As(err, &se) {
		t.Fatalf("node without a start: %v", err)
	}
}

func TestShellCmd(t *testing.T) {
	g := &gen{}
	g.shellCmd("python3 manage.py migrate && gunicorn x.wsgi")
	if !reflect.DeepEqual(g.cmd, []string{"sh", "-c", "python3 manage.py migrate && gunicorn x.wsgi"}) {
		t.Fatalf("a compound command must not be exec'd: %q", g.cmd)
	}
}

func TestGenerateNodeMainBuiltByScript(t *testing.T) {
	dir := t.TempDir()
	pkg := `{"name":"api","main":"./dist/index.js","scripts":{"build":"tsc"}}`
	if err := os.WriteFile(filepath.Join(dir, "package.json"), []byte(pkg), 0o644); err != nil {
		t.Fatal(err)
	}
	// A file whose name would end the Dockerfile line is never used.
	if err := os.WriteFile(filepath.Join(dir, "x\nRUN evil.jar"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	det, err := Detect(dir, "")
	if err != nil {
		t.Fatal(err)
	}
	plan, err := Generate(det, Options{})
	if err != nil {
		t.Fatal(err)
	}
	parseDockerfile(t, plan.Dockerfile)
	if !reflect.DeepEqual(plan.Cmd, []string{"node", "dist/index.js"}) {
		t.Fatalf("cmd %q: main produced by the build script should be started", plan.Cmd)
	}
	if strings.Contains(plan.Dockerfile, "evil") {
		t.Fatalf("a file name leaked into the Dockerfile:\n%s", plan.Dockerfile)
	}
	if _, err := Detect(dir, "jar"); err == nil {
		t.Fatal("a jar with a newline in its name was picked")
	}
}

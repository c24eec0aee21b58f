package plan

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/berth-platform/berth/internal/model"
)

func td(name string) string { return filepath.Join("testdata", name) }

func TestDetect(t *testing.T) {
	for _, tc := range []struct {
		dir       string
		override  string
		lang      Language
		tool      string
		decidedBy string
		details   map[string]string
	}{
		{dir: "dockerfile", lang: Dockerfile, tool: "docker", decidedBy: "Dockerfile"},
		{dir: "maven", lang: JavaMaven, tool: "maven", decidedBy: "pom.xml",
			details: map[string]string{DetailPackaging: "jar", DetailWrapper: "mvnw"}},
		{dir: "maven-war", lang: JavaMaven, tool: "maven", decidedBy: "pom.xml", details: map[string]string{DetailPackaging: "war"}},
		{dir: "maven-multi", lang: JavaMaven, tool: "maven", decidedBy: "pom.xml", details: map[string]string{DetailMultiModule: "true"}},
		{dir: "gradle", lang: JavaGradle, tool: "gradle", decidedBy: "build.gradle.kts",
			details: map[string]string{DetailMultiModule: "true", DetailWrapper: "gradlew"}},
		{dir: "jar", lang: JavaJar, tool: "jar", decidedBy: "demo-0.1.jar", details: map[string]string{DetailArtifact: "demo-0.1.jar"}},
		{dir: "war", lang: JavaWar, tool: "war", decidedBy: "shop.war"},
		{dir: "node-npm", lang: NodeJS, tool: "npm", decidedBy: "package.json", details: map[string]string{
			DetailLockfile: "package-lock.json", DetailBuildScript: "tsc", DetailStartScript: "node dist/server.js",
			DetailEntry: "server.js", DetailNodeEngine: ">=18"}},
		// yarn.lock beats package-lock.json: the repository is moving to yarn.
		{dir: "node-yarn", lang: NodeJS, tool: "yarn", decidedBy: "package.json", details: map[string]string{DetailLockfile: "yarn.lock"}},
		{dir: "node-pnpm", lang: NodeJS, tool: "pnpm", decidedBy: "package.json",
			details: map[string]string{DetailLockfile: "pnpm-lock.yaml", DetailPackageManager: "pnpm@8.15.4+sha256.abc"}},
		{dir: "node-static", lang: NodeJS, tool: "yarn", decidedBy: "package.json", details: map[string]string{DetailBuildScript: "vite build"}},
		{dir: "node-entry", lang: NodeJS, tool: "npm", decidedBy: "package.json", details: map[string]string{DetailEntry: "app.js"}},
		{dir: "node-hooks", lang: NodeJS, tool: "npm", decidedBy: "package.json", details: map[string]string{DetailInstallHooks: "true"}},
		{dir: "python-requirements", lang: Python, tool: "pip", decidedBy: "requirements.txt",
			details: map[string]string{DetailRequirements: "requirements.txt", DetailGunicorn: "true", DetailEntry: "app.py"}},
		{dir: "python-local-req", lang: Python, tool: "pip", decidedBy: "requirements.txt", details: map[string]string{DetailLocalRequires: "true"}},
		{dir: "python-poetry", lang: Python, tool: "poetry", decidedBy: "pyproject.toml",
			details: map[string]string{DetailLockfile: "poetry.lock", DetailRequirementSet: "fastapi==0.110.0\nstarlette==0.36.3"}},
		{dir: "python-pipenv", lang: Python, tool: "pipenv", decidedBy: "Pipfile",
			details: map[string]string{DetailLockfile: "Pipfile.lock", DetailRequirementSet: "flask==3.0.0\nwerkzeug==3.0.1"}},
		{dir: "python-pipfile-nolock", lang: Python, tool: "pipenv", decidedBy: "Pipfile",
			details: map[string]string{DetailRequirementSet: "django>=4.2\nrequests\nuvicorn==0.29.0"}},
		{dir: "python-pyproject", lang: Python, tool: "pip", decidedBy: "pyproject.toml", details: map[string]string{DetailPyProject: "true", DetailEntry: "server.py"}},
		{dir: "python-django", lang: Python, tool: "pip", decidedBy: "requirements.txt", details: map[string]string{DetailDjango: "mysite.wsgi"}},
		{dir: "go", lang: Go, tool: "go", decidedBy: "go.mod", details: map[string]string{
			DetailGoModule: "example.com/hello", DetailGoVersion: "1.22", DetailGoMain: "."}},
		{dir: "go-cmd", lang: Go, tool: "go", decidedBy: "go.mod", details: map[string]string{
			DetailGoMain: "./cmd/shop", DetailGoLocalReplace: "true"}},
		{dir: "go-vendor", lang: Go, tool: "go", decidedBy: "go.mod", details: map[string]string{DetailGoVendor: "true"}},
		{dir: "php-composer", lang: PHP, tool: "composer", decidedBy: "composer.json", details: map[string]string{DetailComposer: "true"}},
		{dir: "php-plain", lang: PHP, tool: "php", decidedBy: "index.php"},
		{dir: "static", lang: Static, tool: "static", decidedBy: "index.html"},
		{dir: "ruby", lang: Ruby, tool: "bundler", decidedBy: "Gemfile", details: map[string]string{DetailRack: "true", DetailLockfile: "Gemfile.lock"}},
		{dir: "dotnet", lang: DotNet, tool: "dotnet", decidedBy: "src/Web/Web.csproj",
			details: map[string]string{DetailAssembly: "Shop.Web", DetailRestoreAll: "true"}},
		{dir: "dotnet-single", lang: DotNet, tool: "dotnet", decidedBy: "hello.csproj", details: map[string]string{DetailAssembly: "hello"}},
		// Overrides, in berth's and in Rainbond's spelling.
		{dir: "node-static", override: "static", lang: Static, tool: "static", decidedBy: "index.html"},
		{dir: "node-yarn", override: "Node.js", lang: NodeJS, tool: "yarn", decidedBy: "package.json"},
		{dir: "python-requirements", override: "static", lang: Static, tool: "static"},
		{dir: "maven", override: "java", lang: JavaMaven, tool: "maven", decidedBy: "pom.xml"},
		{dir: "dockerfile", override: "NodeJS", lang: NodeJS, tool: "npm", decidedBy: "package.json"},
	} {
		t.Run(tc.dir+"/"+tc.override, func(t *testing.T) {
			det, err := Detect(td(tc.dir), tc.override)
			if err != nil {
				t.Fatal(err)
			}
			if det.Language != tc.lang || det.Tool != tc.tool || det.DecidedBy != tc.decidedBy {
				t.Fatalf("got %s/%s decided by %q, want %s/%s by %q", det.Language, det.Tool, det.DecidedBy, tc.lang, tc.tool, tc.decidedBy)
			}
			if (tc.override != "") != (det.ForcedBy == "override") {
				t.Fatalf("ForcedBy = %q", det.ForcedBy)
			}
			for k, want := range tc.details {
				if got := det.Details[k]; got != want {
					t.Errorf("Details[%s] = %q, want %q", k, got, want)
				}
			}
			if abs, _ := filepath.Abs(td(tc.dir)); det.Dir != abs {
				t.Errorf("Dir = %s, want %s", det.Dir, abs)
			}
		})
	}
}

func TestDetectNothingListsFiles(t *testing.T) {
	_, err := Detect(td("empty"), "")
	var nd *NothingDetectedError
	if !errors.As(err, &nd) || !errors.Is(err, ErrNothingDetected) {
		t.Fatalf("err = %v, want *NothingDetectedError", err)
	}
	msg := err.Error()
	for _, want := range []string{"Dockerfile", "pom.xml", "build.gradle", "*.jar", "*.war", "package.json",
		"requirements.txt", "pyproject.toml", "Pipfile", "go.mod", "composer.json", "index.php", "index.html",
		"Gemfile", "*.csproj", "README.md, docs/", "repository root", "build path"} {
		if !strings.Contains(msg, want) {
			t.Errorf("message does not mention %q:\n%s", want, msg)
		}
	}
}

func TestDetectProcfile(t *testing.T) {
	det, err := Detect(td("procfile"), "")
	if err != nil {
		t.Fatal(err)
	}
	want := "gunicorn app:app --bind 0.0.0.0:$PORT"
	if det.ProcfileCmd != want || det.Cmd != want {
		t.Fatalf("Procfile cmd %q / Cmd %q, want the web process %q", det.ProcfileCmd, det.Cmd, want)
	}
}

func TestDetectRainbondfile(t *testing.T) {
	det, err := Detect(td("rainbondfile-buildpath"), "")
	if err != nil {
		t.Fatal(err)
	}
	if det.Language != Go || det.ForcedBy != "rainbondfile" || det.BuildPath != "services/api" ||
		det.DecidedBy != "services/api/go.mod" || !strings.HasSuffix(det.Dir, filepath.FromSlash("rainbondfile-buildpath/services/api")) {
		t.Fatalf("detection %+v", det)
	}
	if det.Cmd != "api --listen :$PORT" {
		t.Fatalf("Cmd = %q", det.Cmd)
	}
	rf := det.Rainbondfile
	if rf == nil || len(rf.Ports) != 2 || rf.Ports[0] != (RainbondPort{8080, "http"}) || rf.Ports[1] != (RainbondPort{9090, "grpc"}) {
		t.Fatalf("ports %+v (Rainbond's 'procotol' spelling must be read)", rf)
	}
	if rf.Envs["LOG_LEVEL"] != "debug" || rf.Envs["WORKERS"] != "4" {
		t.Fatalf("envs %+v", rf.Envs)
	}
	ports := rf.ModelPorts()
	if len(ports) != 2 || ports[1].Protocol != model.ProtoGRPC || !ports[0].Inner {
		t.Fatalf("model ports %+v", ports)
	}
	if envs := rf.ModelEnvs(); len(envs) != 2 || envs[0].Name != "LOG_LEVEL" || envs[0].Scope != model.ScopeInner {
		t.Fatalf("model envs %+v", envs)
	}

	// The rainbondfile's language beats detection; an override beats both.
	det, err = Detect(td("rainbondfile-language"), "")
	if err != nil || det.Language != Static || det.ForcedBy != "rainbondfile" {
		t.Fatalf("rainbondfile language: %+v, %v", det, err)
	}
	det, err = Detect(td("rainbondfile-language"), "nodejs")
	if err != nil || det.Language != NodeJS || det.ForcedBy != "override" {
		t.Fatalf("override over rainbondfile: %+v, %v", det, err)
	}

	var me *ManifestError
	if _, err := Detect(td("rainbondfile-bad"), ""); !errors.As(err, &me) || me.File != "rainbondfile" {
		t.Fatalf("bad rainbondfile: %v", err)
	}
}

func TestDetectBuildPathStaysInside(t *testing.T) {
	var be *BuildPathError
	if _, err := Detect(td("rainbondfile-escape"), ""); !errors.As(err, &be) {
		t.Fatalf("buildpath ../../: %v", err)
	}
	var ve *model.ValidationError
	if _, err := DetectSource(td("go"), model.Source{Subdir: "../node-npm"}); !errors.As(err, &ve) {
		t.Fatalf("subdir ../: %v", err)
	}

	root := t.TempDir()
	outside := t.TempDir()
	if err := os.WriteFile(filepath.Join(outside, "go.mod"), []byte("module x\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(outside, filepath.Join(root, "link")); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, "rainbondfile"), []byte("buildpath: link\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Detect(root, ""); !errors.As(err, &be) || !strings.Contains(err.Error(), "symlink") {
		t.Fatalf("buildpath through a symlink out of the tree: %v", err)
	}
	if _, err := DetectSource(root, model.Source{Subdir: "missing"}); !errors.As(err, &be) || !strings.Contains(err.Error(), "does not exist") {
		t.Fatalf("missing subdir: %v", err)
	}
}

func TestDetectSource(t *testing.T) {
	det, err := DetectSource(td("rainbondfile-buildpath"), model.Source{Subdir: "services/web", Language: "nodejs"})
	if err != nil || det.Language != NodeJS || det.BuildPath != "services/web" || det.DecidedBy != "services/web/package.json" {
		t.Fatalf("subdir: %+v, %v", det, err)
	}
	det, err = DetectSource(td("node-npm"), model.Source{Dockerfile: "server.js"})
	if err != nil || det.Language != Dockerfile || det.Details[DetailDockerfile] != "server.js" {
		t.Fatalf("custom Dockerfile: %+v, %v", det, err)
	}
	if _, err := DetectSource(td("node-npm"), model.Source{Dockerfile: "../go/main.go"}); err == nil {
		t.Fatal("a Dockerfile outside the build directory was accepted")
	}
}

func TestDetectOverrideErrors(t *testing.T) {
	var ue *UnknownLanguageError
	_, err := Detect(td("go"), "cobol")
	if !errors.As(err, &ue) || !strings.Contains(err.Error(), "java-maven") {
		t.Fatalf("unknown language: %v", err)
	}
	var mm *MarkerMissingError
	if _, err := Detect(td("go"), "jar"); !errors.As(err, &mm) || !strings.Contains(err.Error(), "*.jar") {
		t.Fatalf("jar without a jar: %v", err)
	}
	for _, lang := range []string{"dockerfile", "nodejs", "Java-maven", "gradle", "war", "java", "ruby", ".NetCore"} {
		if _, err := Detect(td("go"), lang); !errors.As(err, &mm) || mm.ForcedBy != "override" {
			t.Errorf("%s without its file: %v", lang, err)
		}
	}
	if _, err := Detect(td("static"), "go"); !errors.As(err, &mm) || !strings.Contains(err.Error(), "go mod init") {
		t.Errorf("go without go.mod: %v", err)
	}
}

func TestDetectRefusesBadManifest(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "package.json"), []byte("{not json"), 0o644); err != nil {
		t.Fatal(err)
	}
	var me *ManifestError
	if _, err := Detect(dir, ""); !errors.As(err, &me) || me.File != "package.json" {
		t.Fatalf("bad package.json: %v", err)
	}
}

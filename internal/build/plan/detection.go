package plan

import (
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"path"
	"path/filepath"
	"sort"
	"strings"

	"github.com/berth-platform/berth/internal/model"
)

// Detection is what Detect learned about a directory.
type Detection struct {
	Language Language
	// Tool builds the code: maven, gradle, jar, war, npm, yarn, pnpm, pip,
	// poetry, pipenv, go, composer, php, static, bundler, dotnet, docker.
	Tool string
	// DecidedBy is the file that decided the language, relative to the
	// source root (so it includes BuildPath). Empty when the language was
	// forced and its usual file is absent.
	DecidedBy string
	// ForcedBy is "override" or "rainbondfile" when the language was
	// chosen rather than detected.
	ForcedBy string
	// BuildPath is the directory the build happens in, relative to the
	// source root ("" for the root); it is the build context.
	BuildPath string
	// Dir is BuildPath as an absolute path.
	Dir string
	// Root is the source root as an absolute path. Everything berth reads
	// in it goes through os.Root opened here, never following a link out.
	Root string
	// Details are facts found on the way, keyed by the Detail* constants.
	Details map[string]string
	// Cmd is the start command the user gave: the rainbondfile's cmd, else
	// the Procfile's web process. Empty when none was given.
	Cmd          string
	ProcfileCmd  string
	Rainbondfile *Rainbondfile
}

// Keys of Detection.Details.
const (
	DetailDockerfile     = "dockerfile"      // path of the Dockerfile, relative to BuildPath
	DetailPackaging      = "packaging"       // maven: jar or war
	DetailMultiModule    = "multi_module"    // maven/gradle: "true" when modules are declared
	DetailWrapper        = "wrapper"         // mvnw or gradlew when present
	DetailArtifact       = "artifact"        // jar/war: the file to run, relative to BuildPath
	DetailLockfile       = "lockfile"        // the dependency lock file used
	DetailBuildScript    = "script.build"    // node: the build script
	DetailStartScript    = "script.start"    // node: the start script
	DetailEntry          = "entry"           // node/python: the file to run when no command is given
	DetailNodeEngine     = "engines.node"    // node: the wanted Node.js version (informative)
	DetailPackageManager = "package_manager" // node: package.json packageManager, e.g. pnpm@9.1.0
	DetailWorkspaces     = "workspaces"      // node: "true" for a workspace (monorepo) root
	DetailYarnBerry      = "yarn_berry"      // node: "true" for Yarn 2+
	DetailInstallHooks   = "install_hooks"   // node: "true" when install scripts need the sources
	DetailStartHooks     = "start_hooks"     // node: "true" when prestart/poststart scripts exist (npm start must run them)
	DetailRequirements   = "requirements"    // python: requirements file name
	DetailRequirementSet = "requirement_set" // python: requirements derived from a lock file, one a line
	DetailPyProject      = "pyproject"       // python: "true" when installed with pip install .
	DetailLocalRequires  = "local_requires"  // python: "true" when requirements.txt needs other files
	DetailGunicorn       = "gunicorn"        // python: "true" when gunicorn is a dependency
	DetailDjango         = "django"          // python: the project's WSGI module, e.g. mysite.wsgi
	DetailGoModule       = "module"          // go: module path
	DetailGoVersion      = "go_version"      // go: go directive (informative)
	DetailGoMain         = "main"            // go: the main package, e.g. ./cmd/api
	DetailGoVendor       = "vendor"          // go: "true" when vendor/modules.txt exists
	DetailGoLocalReplace = "local_replace"   // go: "true" when go.mod replaces with a local path
	DetailComposer       = "composer"        // php: "true" when composer.json exists
	DetailRack           = "rack"            // ruby: "true" when config.ru exists
	DetailProject        = "project"         // dotnet: the .csproj, relative to BuildPath
	DetailAssembly       = "assembly"        // dotnet: the assembly name
	DetailRestoreAll     = "restore_all"     // dotnet: "true" when restore needs the whole tree
)

// Detect decides how to build dir. override, when not empty, forces a
// language (berth's or Rainbond's names, see ParseLanguage). A rainbondfile
// in dir may move the build into its buildpath and force a language too;
// the override wins over it.
func Detect(dir string, override string) (Detection, error) {
	return detect(dir, "", override, "")
}

// DetectSource is Detect for a component's source: its Subdir becomes the
// base directory, its Language the override, and its Dockerfile (a path
// relative to the build directory) forces a Dockerfile build.
func DetectSource(root string, src model.Source) (Detection, error) {
	return detect(root, src.Subdir, src.Language, src.Dockerfile)
}

func detect(root, subdir, override, dockerfile string) (Detection, error) {
	rootAbs, err := filepath.Abs(root)
	if err != nil {
		return Detection{}, fmt.Errorf("detect: %w", err)
	}
	t, err := openTree(rootAbs)
	if err != nil {
		return Detection{}, err
	}
	defer t.close()
	base, err := resolveBuildPath(t, "", subdir)
	if err != nil {
		return Detection{}, err
	}
	det := Detection{Root: rootAbs}
	if det.Rainbondfile, err = findRainbondfile(t, base); err != nil {
		return Detection{}, err
	}
	buildPath := base
	if det.Rainbondfile != nil && det.Rainbondfile.BuildPath != "" {
		if buildPath, err = resolveBuildPath(t, base, det.Rainbondfile.BuildPath); err != nil {
			return Detection{}, err
		}
	}
	det.BuildPath = buildPath
	det.Dir = filepath.Join(rootAbs, filepath.FromSlash(buildPath))
	if det.ProcfileCmd, err = findProcfile(t, buildPath, base); err != nil {
		return Detection{}, err
	}
	det.Cmd = det.ProcfileCmd
	if det.Rainbondfile != nil && det.Rainbondfile.Cmd != "" {
		det.Cmd = det.Rainbondfile.Cmd
	}

	forced, forcedBy := override, "override"
	if forced == "" && det.Rainbondfile != nil && det.Rainbondfile.Language != "" {
		forced, forcedBy = det.Rainbondfile.Language, "rainbondfile"
	}
	d, err := readDir(t, buildPath)
	if err != nil {
		return Detection{}, err
	}
	var found Detection
	switch {
	case dockerfile != "":
		if found, err = userDockerfile(d, dockerfile); err != nil {
			return Detection{}, err
		}
		det.ForcedBy = "override"
	case forced != "":
		lang, ok := ParseLanguage(forced)
		if !ok {
			return Detection{}, &UnknownLanguageError{Name: forced, Source: forcedBy}
		}
		if found, err = detectForced(d, lang); err != nil {
			var mm *MarkerMissingError
			if errors.As(err, &mm) {
				mm.ForcedBy = forcedBy
			}
			return Detection{}, err
		}
		det.ForcedBy = forcedBy
	default:
		ok := false
		if found, ok, err = detectAuto(d); err != nil {
			return Detection{}, err
		}
		if !ok {
			return Detection{}, &NothingDetectedError{Dir: buildPath, Found: d.sample(10)}
		}
	}
	det.Language, det.Tool, det.Details = found.Language, found.Tool, found.Details
	if found.DecidedBy != "" {
		det.DecidedBy = path.Join(buildPath, found.DecidedBy)
	}
	if det.Details == nil {
		det.Details = map[string]string{}
	}
	slog.Debug("language detected", "language", det.Language, "tool", det.Tool, "decided_by", det.DecidedBy,
		"forced_by", det.ForcedBy, "build_path", det.BuildPath)
	return det, nil
}

// detector finds one language; found says whether its marker file exists.
// With forced set it returns its defaults even without the marker.
type detector func(d *dirInfo, forced bool) (det Detection, found bool, err error)

// detectors in Rainbond's order of precedence.
var detectors = []struct {
	lang Language
	fn   detector
}{
	{Dockerfile, detectDockerfile},
	{JavaMaven, func(d *dirInfo, forced bool) (Detection, bool, error) { return detectJava(d, "", forced) }},
	{NodeJS, detectNode},
	{Python, detectPython},
	{Go, detectGo},
	{PHP, detectPHP},
	{Static, detectStatic},
	{Ruby, detectRuby},
	{DotNet, detectDotNet},
}

func detectAuto(d *dirInfo) (Detection, bool, error) {
	for _, dt := range detectors {
		det, found, err := dt.fn(d, false)
		if err != nil || found {
			return det, found, err
		}
	}
	return Detection{}, false, nil
}

func detectForced(d *dirInfo, lang Language) (Detection, error) {
	switch lang {
	case "", JavaMaven, JavaGradle, JavaJar, JavaWar:
		det, _, err := detectJava(d, lang, true)
		return det, err
	}
	for _, dt := range detectors {
		if dt.lang == lang {
			det, _, err := dt.fn(d, true)
			return det, err
		}
	}
	return Detection{}, fmt.Errorf("no detector for %s", lang)
}

// findRainbondfile reads the rainbondfile in base, if there is one.
func findRainbondfile(t *srcTree, base string) (*Rainbondfile, error) {
	for _, name := range rainbondfileNames {
		p := path.Join(base, name)
		data, err := t.readFile(p)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err == nil {
			var rf *Rainbondfile
			if rf, err = parseRainbondfile(data); err == nil {
				return rf, nil
			}
		}
		return nil, &ManifestError{File: p, Err: err}
	}
	return nil, nil
}

// findProcfile returns the start command of the Procfile, which belongs
// with the code; Rainbond also reads one at the top when the build path is
// a subdirectory. A Procfile linked out of the tree is an error rather than
// absent: the user meant it to start the app.
func findProcfile(t *srcTree, dirs ...string) (string, error) {
	for _, dir := range dirs {
		data, err := t.readFile(path.Join(dir, "Procfile"))
		if leaves(err) {
			return "", err
		}
		if cmd := parseProcfile(data); err == nil && cmd != "" {
			return cmd, nil
		}
	}
	return "", nil
}

// resolveBuildPath joins rel to base (both relative to the tree) and checks
// that the result is a directory inside it, following symlinks only inside:
// the path comes from the repository, i.e. from whoever wrote it.
func resolveBuildPath(t *srcTree, base, rel string) (string, error) {
	rel = strings.TrimSpace(strings.ReplaceAll(rel, `\`, "/"))
	if rel == "" || rel == "." || rel == "/" {
		return base, nil
	}
	if strings.HasPrefix(rel, "/") {
		// Rainbond's buildpath is written from the repository root.
		rel = strings.TrimLeft(rel, "/")
		base = ""
	}
	for _, seg := range strings.Split(rel, "/") {
		if seg == ".." {
			return "", &BuildPathError{Path: rel, Reason: "leaves the source directory"}
		}
	}
	joined := path.Join(base, rel)
	st, err := t.stat(joined)
	switch {
	case leaves(err):
		return "", &BuildPathError{Path: rel, Reason: "leaves the source directory through a symlink"}
	case err != nil:
		return "", &BuildPathError{Path: rel, Reason: "does not exist"}
	case !st.IsDir():
		return "", &BuildPathError{Path: rel, Reason: "is not a directory"}
	}
	return joined, nil
}

// dirInfo is the top level of the build directory, read once. Every look
// below it goes through the tree's os.Root.
type dirInfo struct {
	t     *srcTree
	rel   string // the build directory, relative to the tree
	names map[string]fs.DirEntry
}

func readDir(t *srcTree, rel string) (*dirInfo, error) {
	entries, err := t.readDir(rel)
	if err != nil {
		return nil, fmt.Errorf("detect: %w", err)
	}
	d := &dirInfo{t: t, rel: rel, names: map[string]fs.DirEntry{}}
	for _, e := range entries {
		if safeName(e.Name()) {
			d.names[e.Name()] = e
		}
	}
	return d, nil
}

// safeName rejects file names with control characters: names end up in the
// generated Dockerfile, where a newline would start a new instruction.
func safeName(name string) bool {
	for _, r := range name {
		if r < 0x20 || r == 0x7f {
			return false
		}
	}
	return true
}

// path is name (slash-separated, below the build directory) relative to
// the tree.
func (d *dirInfo) path(name string) string { return path.Join(d.rel, name) }

func (d *dirInfo) stat(name string) (fs.FileInfo, error) { return d.t.stat(d.path(name)) }

func (d *dirInfo) readDir(name string) ([]fs.DirEntry, error) { return d.t.readDir(d.path(name)) }

// has reports a regular file (or a symlink to one) at the top level. A
// link leaving the tree counts as present without being followed, so that
// the detector that wants the file fails naming it rather than silently
// building something else.
func (d *dirInfo) has(name string) bool {
	e, ok := d.names[name]
	if !ok {
		return false
	}
	if e.Type()&fs.ModeSymlink != 0 {
		st, err := d.stat(name)
		return err == nil && st.Mode().IsRegular() || leaves(err)
	}
	return e.Type().IsRegular()
}

func (d *dirInfo) hasDir(name string) bool {
	st, err := d.stat(name)
	return err == nil && st.IsDir()
}

// withSuffix lists top-level files ending in suffix, sorted.
func (d *dirInfo) withSuffix(suffix string) []string {
	var out []string
	for name := range d.names {
		if strings.HasSuffix(strings.ToLower(name), suffix) && d.has(name) {
			out = append(out, name)
		}
	}
	sort.Strings(out)
	return out
}

// read returns the content of a file below the build directory, at most
// maxManifest bytes.
func (d *dirInfo) read(name string) ([]byte, error) { return d.t.readFile(d.path(name)) }

func (d *dirInfo) sample(n int) []string {
	var out []string
	for name, e := range d.names {
		if e.IsDir() {
			name += "/"
		}
		out = append(out, name)
	}
	sort.Strings(out)
	if len(out) > n {
		out = append(out[:n], "...")
	}
	return out
}

package plan

import (
	"path"
	"regexp"
	"sort"
	"strings"
)

var (
	goModuleRe       = regexp.MustCompile(`(?m)^module\s+"?([^\s"]+)"?`)
	goVersionRe      = regexp.MustCompile(`(?m)^go\s+([0-9][^\s]*)`)
	goLocalReplaceRe = regexp.MustCompile(`=>\s*\.{1,2}/`)
	goPackageMainRe  = regexp.MustCompile(`(?m)^package\s+main\b`)
)

func detectGo(d *dirInfo, forced bool) (Detection, bool, error) {
	det := Detection{Language: Go, Tool: "go", Details: map[string]string{DetailGoMain: "."}}
	if !d.has("go.mod") {
		if forced {
			return det, false, &MarkerMissingError{Language: Go, Want: "go.mod (create it with go mod init)"}
		}
		return det, false, nil
	}
	det.DecidedBy = "go.mod"
	mod, err := d.read("go.mod")
	if err != nil {
		return det, false, &ManifestError{File: "go.mod", Err: err}
	}
	module := ""
	if m := goModuleRe.FindSubmatch(mod); m != nil {
		module = string(m[1])
		det.Details[DetailGoModule] = module
	}
	if m := goVersionRe.FindSubmatch(mod); m != nil {
		det.Details[DetailGoVersion] = string(m[1])
	}
	if goLocalReplaceRe.Match(mod) {
		det.Details[DetailGoLocalReplace] = "true"
	}
	if _, err := d.stat("vendor/modules.txt"); err == nil {
		det.Details[DetailGoVendor] = "true"
	}
	det.Details[DetailGoMain] = findGoMain(d, module)
	return det, true, nil
}

// findGoMain picks the package to build: the root if it is a main package,
// else the only (or the module-named) one under cmd/, else the first main
// package one level down. "." is the fallback, whose build error is clear.
func findGoMain(d *dirInfo, module string) string {
	if isGoMain(d, ".") {
		return "."
	}
	var cmds []string
	if entries, err := d.readDir("cmd"); err == nil {
		for _, e := range entries {
			if e.IsDir() && safeName(e.Name()) && isGoMain(d, "cmd/"+e.Name()) {
				cmds = append(cmds, e.Name())
			}
		}
	}
	base := goBinaryName(module, "")
	for _, c := range cmds {
		if c == base {
			return "./cmd/" + c
		}
	}
	if len(cmds) > 0 {
		return "./cmd/" + cmds[0]
	}
	var names []string
	for name, e := range d.names {
		if e.IsDir() && !strings.HasPrefix(name, ".") && name != "vendor" && name != "testdata" {
			names = append(names, name)
		}
	}
	sort.Strings(names)
	for _, name := range names {
		if isGoMain(d, name) {
			return "./" + name
		}
	}
	return "."
}

// isGoMain reports whether the directory dir, below the build directory,
// holds a main package.
func isGoMain(d *dirInfo, dir string) bool {
	entries, err := d.readDir(dir)
	if err != nil {
		return false
	}
	for _, e := range entries {
		n := e.Name()
		if e.IsDir() || !strings.HasSuffix(n, ".go") || strings.HasSuffix(n, "_test.go") {
			continue
		}
		data, err := d.read(path.Join(dir, n))
		if err == nil && goPackageMainRe.Match(data) {
			return true
		}
	}
	return false
}

var (
	unsafeNameRe   = regexp.MustCompile(`[^A-Za-z0-9._-]+`)
	majorVersionRe = regexp.MustCompile(`^v[0-9]+$`)
)

// goBinaryName names the built binary after the main package, as `go
// build` and Rainbond's Go buildpack do (bin/<name>), so Procfiles written
// for them keep working.
func goBinaryName(module, mainPkg string) string {
	p := strings.TrimSuffix(mainPkg, "/")
	if p == "" || p == "." {
		p = module
	}
	parts := strings.Split(p, "/")
	name := parts[len(parts)-1]
	if len(parts) > 1 && majorVersionRe.MatchString(name) {
		name = parts[len(parts)-2]
	}
	name = unsafeNameRe.ReplaceAllString(name, "_")
	if name == "" || name == "." || name == "_" {
		return "app"
	}
	return name
}

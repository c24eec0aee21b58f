package plan

import (
	"encoding/json"
	"path"
	"strings"
)

type packageJSON struct {
	Main           string            `json:"main"`
	Scripts        map[string]string `json:"scripts"`
	Engines        map[string]string `json:"engines"`
	Workspaces     json.RawMessage   `json:"workspaces"`
	PackageManager string            `json:"packageManager"`
}

// nodeLockfiles in order of precedence: a repository with two lock files
// is most likely migrating away from npm.
var nodeLockfiles = []struct{ file, tool string }{
	{"pnpm-lock.yaml", "pnpm"},
	{"yarn.lock", "yarn"},
	{"package-lock.json", "npm"},
	{"npm-shrinkwrap.json", "npm"},
}

// nodeEntries are the files started with node when package.json has neither
// a start script nor a main.
var nodeEntries = []string{"server.js", "app.js", "index.js", "main.js"}

func detectNode(d *dirInfo, forced bool) (Detection, bool, error) {
	det := Detection{Language: NodeJS, Tool: "npm", Details: map[string]string{}}
	if !d.has("package.json") {
		if forced {
			return det, false, &MarkerMissingError{Language: NodeJS, Want: "package.json"}
		}
		return det, false, nil
	}
	det.DecidedBy = "package.json"
	data, err := d.read("package.json")
	if err != nil {
		return det, false, &ManifestError{File: "package.json", Err: err}
	}
	var pkg packageJSON
	if err := json.Unmarshal(data, &pkg); err != nil {
		return det, false, &ManifestError{File: "package.json", Err: err}
	}
	for _, lf := range nodeLockfiles {
		if d.has(lf.file) {
			det.Tool = lf.tool
			det.Details[DetailLockfile] = lf.file
			break
		}
	}
	if pm := pkg.PackageManager; pm != "" {
		det.Details[DetailPackageManager] = pm
		if det.Details[DetailLockfile] == "" {
			name, _, _ := strings.Cut(pm, "@")
			if name == "yarn" || name == "pnpm" || name == "npm" {
				det.Tool = name
			}
		}
	}
	if det.Tool == "yarn" && d.has(".yarnrc.yml") {
		det.Details[DetailYarnBerry] = "true"
	}
	if s := pkg.Scripts["build"]; s != "" {
		det.Details[DetailBuildScript] = s
	}
	if s := pkg.Scripts["start"]; s != "" {
		det.Details[DetailStartScript] = s
		if pkg.Scripts["prestart"] != "" || pkg.Scripts["poststart"] != "" {
			det.Details[DetailStartHooks] = "true"
		}
	}
	if v := pkg.Engines["node"]; v != "" {
		det.Details[DetailNodeEngine] = v
	}
	// Install hooks often need the sources (patch-package, prisma
	// generate): then dependencies cannot be installed before the copy.
	for _, hook := range []string{"preinstall", "install", "postinstall", "prepare"} {
		if pkg.Scripts[hook] != "" {
			det.Details[DetailInstallHooks] = "true"
		}
	}
	if len(pkg.Workspaces) > 0 && string(pkg.Workspaces) != "null" || d.has("pnpm-workspace.yaml") {
		det.Details[DetailWorkspaces] = "true"
	}
	det.Details[DetailEntry] = nodeEntry(d, pkg)
	if det.Details[DetailEntry] == "" {
		delete(det.Details, DetailEntry)
	}
	return det, true, nil
}

// nodeEntry is the file node starts without a start script: package.json's
// main (which a build script may produce, like dist/index.js), else a
// conventional server file.
func nodeEntry(d *dirInfo, pkg packageJSON) string {
	if main := path.Clean(strings.TrimPrefix(pkg.Main, "./")); pkg.Main != "" && safeName(main) &&
		!strings.HasPrefix(main, "/") && main != ".." && !strings.HasPrefix(main, "../") {
		if st, err := d.stat(main); err == nil && st.Mode().IsRegular() || pkg.Scripts["build"] != "" {
			return main
		}
	}
	for _, e := range nodeEntries {
		if d.has(e) {
			return e
		}
	}
	return ""
}

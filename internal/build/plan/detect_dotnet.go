package plan

import (
	"path"
	"regexp"
	"sort"
	"strings"
)

var (
	webSDKRe     = regexp.MustCompile(`Sdk="Microsoft\.NET\.Sdk\.Web"`)
	assemblyRe   = regexp.MustCompile(`<AssemblyName>\s*([A-Za-z0-9._-]+)\s*</AssemblyName>`)
	projectRefRe = regexp.MustCompile(`<ProjectReference\b`)
)

// detectDotNet finds a .csproj at the top or one or two levels down (the
// usual src/App/App.csproj layout), preferring a web project.
func detectDotNet(d *dirInfo, forced bool) (Detection, bool, error) {
	det := Detection{Language: DotNet, Tool: "dotnet", Details: map[string]string{}}
	projects := findFiles(d, ".csproj", 2)
	if len(projects) == 0 {
		if forced {
			return det, false, &MarkerMissingError{Language: DotNet, Want: "*.csproj file"}
		}
		return det, false, nil
	}
	chosen := projects[0]
	var chosenData []byte
	for _, p := range projects {
		data, err := d.read(p)
		if err != nil {
			continue
		}
		if chosenData == nil {
			chosenData = data
		}
		if webSDKRe.Match(data) {
			chosen, chosenData = p, data
			break
		}
	}
	det.DecidedBy = chosen
	det.Details[DetailProject] = chosen
	assembly := strings.TrimSuffix(path.Base(chosen), ".csproj")
	if m := assemblyRe.FindSubmatch(chosenData); m != nil {
		assembly = string(m[1])
	}
	det.Details[DetailAssembly] = assembly
	// Restoring from the project file alone fails when it needs other
	// files: referenced projects, shared props, a NuGet.config.
	if len(projects) > 1 || projectRefRe.Match(chosenData) || d.has("Directory.Build.props") ||
		d.has("NuGet.config") || d.has("nuget.config") || d.has("Directory.Packages.props") {
		det.Details[DetailRestoreAll] = "true"
	}
	return det, true, nil
}

// findFiles lists files with suffix up to depth levels below the build
// directory, as slash paths relative to it, sorted (shallow first).
func findFiles(d *dirInfo, suffix string, depth int) []string {
	var out []string
	var walk func(rel string, level int)
	walk = func(rel string, level int) {
		entries, err := d.readDir(rel)
		if err != nil {
			return
		}
		for _, e := range entries {
			name := e.Name()
			if !safeName(name) {
				continue
			}
			p := path.Join(rel, name)
			switch {
			case e.Type().IsRegular() && strings.HasSuffix(name, suffix):
				out = append(out, p)
			case e.IsDir() && level < depth && !strings.HasPrefix(name, ".") && name != "node_modules" && name != "bin" && name != "obj":
				walk(p, level+1)
			}
		}
	}
	walk("", 0)
	sort.SliceStable(out, func(i, j int) bool {
		di, dj := strings.Count(out[i], "/"), strings.Count(out[j], "/")
		if di != dj {
			return di < dj
		}
		return out[i] < out[j]
	})
	return out
}

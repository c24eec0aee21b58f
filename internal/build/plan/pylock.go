package plan

import (
	"encoding/json"
	"regexp"
	"sort"
	"strings"
)

// Requirement names and specifiers as pip accepts them; anything else in a
// lock file (git, path, url sources) is left out rather than passed to a
// shell.
var (
	reqNameRe = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]*(\[[A-Za-z0-9._,-]+\])?$`)
	reqSpecRe = regexp.MustCompile(`^(===?|~=|!=|<=?|>=?)[A-Za-z0-9.*+!_-]+(\s*,\s*(===?|~=|!=|<=?|>=?)[A-Za-z0-9.*+!_-]+)*$`)
	tomlKVRe  = regexp.MustCompile(`^\s*"?([A-Za-z0-9._-]+)"?\s*=\s*(.+?)\s*$`)
	tomlStrRe = regexp.MustCompile(`^"([^"]*)"$`)
	tomlVerRe = regexp.MustCompile(`version\s*=\s*"([^"]*)"`)
)

func requirement(name, spec string) (string, bool) {
	spec = strings.TrimSpace(spec)
	if !reqNameRe.MatchString(name) {
		return "", false
	}
	if spec == "" || spec == "*" {
		return name, true
	}
	if !reqSpecRe.MatchString(spec) {
		return "", false
	}
	return name + spec, true
}

// pipfileLockRequirements reads the "default" (non-dev) packages of a
// Pipfile.lock.
func pipfileLockRequirements(data []byte) ([]string, error) {
	var lock struct {
		Default map[string]struct {
			Version string `json:"version"`
		} `json:"default"`
	}
	if err := json.Unmarshal(data, &lock); err != nil {
		return nil, err
	}
	var out []string
	for name, p := range lock.Default {
		if p.Version == "" {
			continue // git or path dependency
		}
		if r, ok := requirement(name, p.Version); ok {
			out = append(out, r)
		}
	}
	sort.Strings(out)
	return out, nil
}

// pipfileRequirements reads the [packages] section of a Pipfile (TOML) for
// the common forms: name = "*", name = ">=1.0", name = {version = "..."}.
func pipfileRequirements(data []byte) []string {
	var out []string
	inPackages := false
	for _, line := range strings.Split(string(data), "\n") {
		line = strings.TrimSpace(line)
		if strings.HasPrefix(line, "[") {
			inPackages = line == "[packages]"
			continue
		}
		if !inPackages || line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		m := tomlKVRe.FindStringSubmatch(line)
		if m == nil {
			continue
		}
		spec := ""
		if s := tomlStrRe.FindStringSubmatch(m[2]); s != nil {
			spec = s[1]
		} else if strings.HasPrefix(m[2], "{") {
			if strings.Contains(m[2], "git") || strings.Contains(m[2], "path") {
				continue
			}
			if v := tomlVerRe.FindStringSubmatch(m[2]); v != nil {
				spec = v[1]
			}
		}
		if r, ok := requirement(m[1], spec); ok {
			out = append(out, r)
		}
	}
	sort.Strings(out)
	return out
}

// poetryLockRequirements reads the [[package]] entries of a poetry.lock that
// belong to the main group: category = "main" (lock format 1) or a groups
// list that includes "main" (format 2); entries with neither are main.
func poetryLockRequirements(data []byte) []string {
	type pkg struct{ name, version, category, groups string }
	var pkgs []pkg
	var cur *pkg
	for _, line := range strings.Split(string(data), "\n") {
		t := strings.TrimSpace(line)
		if t == "[[package]]" {
			pkgs = append(pkgs, pkg{})
			cur = &pkgs[len(pkgs)-1]
			continue
		}
		if strings.HasPrefix(t, "[") {
			cur = nil // a sub-table such as [package.dependencies]
			continue
		}
		if cur == nil {
			continue
		}
		m := tomlKVRe.FindStringSubmatch(t)
		if m == nil {
			continue
		}
		val := strings.Trim(m[2], `"`)
		switch m[1] {
		case "name":
			cur.name = val
		case "version":
			cur.version = val
		case "category":
			cur.category = val
		case "groups":
			cur.groups = m[2]
		}
	}
	var out []string
	for _, p := range pkgs {
		if p.category != "" && p.category != "main" {
			continue
		}
		if p.groups != "" && !strings.Contains(p.groups, `"main"`) {
			continue
		}
		if r, ok := requirement(p.name, "=="+p.version); ok {
			out = append(out, r)
		}
	}
	sort.Strings(out)
	return out
}

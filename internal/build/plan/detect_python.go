package plan

import (
	"regexp"
	"sort"
	"strings"
)

var (
	gunicornRe   = regexp.MustCompile(`(?im)^\s*"?gunicorn\b`)
	toolPoetryRe = regexp.MustCompile(`(?m)^\[tool\.poetry\]`)
	// Lines that refer to files of the repository: -e ., ./pkg, -r other.txt.
	localRequiresRe = regexp.MustCompile(`(?m)^\s*(-e|--editable|-r|--requirement|-c|--constraint|\.|/|file:)`)
	pythonEntries   = []string{"app.py", "main.py", "server.py", "wsgi.py", "run.py"}
)

// detectPython follows the brief's order: requirements.txt, pyproject.toml,
// Pipfile. Lock files (poetry.lock, Pipfile.lock) become a plain requirement
// set here, so the image needs only pip, which both the official and
// Debian's Python have; poetry and pipenv never run in the build.
func detectPython(d *dirInfo, forced bool) (Detection, bool, error) {
	det := Detection{Language: Python, Tool: "pip", Details: map[string]string{}}
	var deps []byte
	switch {
	case d.has("requirements.txt"):
		det.DecidedBy = "requirements.txt"
		det.Details[DetailRequirements] = "requirements.txt"
		deps, _ = d.read("requirements.txt")
		if localRequiresRe.Match(deps) {
			det.Details[DetailLocalRequires] = "true"
		}
	case d.has("pyproject.toml"):
		det.DecidedBy = "pyproject.toml"
		pyproject, err := d.read("pyproject.toml")
		if err != nil {
			return det, false, &ManifestError{File: "pyproject.toml", Err: err}
		}
		deps = pyproject
		if toolPoetryRe.Match(pyproject) || d.has("poetry.lock") {
			det.Tool = "poetry"
		}
		if d.has("poetry.lock") {
			lock, err := d.read("poetry.lock")
			if err != nil {
				return det, false, &ManifestError{File: "poetry.lock", Err: err}
			}
			reqs := poetryLockRequirements(lock)
			det.Details[DetailLockfile] = "poetry.lock"
			det.Details[DetailRequirementSet] = strings.Join(reqs, "\n")
			deps = []byte(det.Details[DetailRequirementSet])
		} else {
			det.Details[DetailPyProject] = "true"
		}
	case d.has("Pipfile"):
		det.DecidedBy = "Pipfile"
		det.Tool = "pipenv"
		var reqs []string
		if d.has("Pipfile.lock") {
			lock, err := d.read("Pipfile.lock")
			if err != nil {
				return det, false, &ManifestError{File: "Pipfile.lock", Err: err}
			}
			if reqs, err = pipfileLockRequirements(lock); err != nil {
				return det, false, &ManifestError{File: "Pipfile.lock", Err: err}
			}
			det.Details[DetailLockfile] = "Pipfile.lock"
		} else {
			pipfile, err := d.read("Pipfile")
			if err != nil {
				return det, false, &ManifestError{File: "Pipfile", Err: err}
			}
			reqs = pipfileRequirements(pipfile)
		}
		det.Details[DetailRequirementSet] = strings.Join(reqs, "\n")
		deps = []byte(det.Details[DetailRequirementSet])
	default:
		if !forced {
			return det, false, nil
		}
	}
	if gunicornRe.Match(deps) {
		det.Details[DetailGunicorn] = "true"
	}
	if d.has("manage.py") {
		if m := djangoWSGI(d); m != "" {
			det.Details[DetailDjango] = m
		}
	}
	for _, e := range pythonEntries {
		if d.has(e) {
			det.Details[DetailEntry] = e
			break
		}
	}
	return det, det.DecidedBy != "", nil
}

// djangoWSGI finds <project>/wsgi.py next to manage.py.
func djangoWSGI(d *dirInfo) string {
	var names []string
	for name, e := range d.names {
		if e.IsDir() {
			names = append(names, name)
		}
	}
	sort.Strings(names)
	for _, name := range names {
		if _, err := d.stat(name + "/wsgi.py"); err == nil && unsafeNameRe.FindString(name) == "" {
			return name + ".wsgi"
		}
	}
	return ""
}

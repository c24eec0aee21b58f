package plan

import (
	"path"
	"strings"
)

func detectDockerfile(d *dirInfo, forced bool) (Detection, bool, error) {
	det := Detection{Language: Dockerfile, Tool: "docker", Details: map[string]string{}}
	if !d.has("Dockerfile") {
		if forced {
			return det, false, &MarkerMissingError{Language: Dockerfile, Want: "Dockerfile"}
		}
		return det, false, nil
	}
	det.DecidedBy = "Dockerfile"
	det.Details[DetailDockerfile] = "Dockerfile"
	return det, true, nil
}

// userDockerfile is a Dockerfile at a path the user chose, relative to the
// build directory; it must stay inside it, as BuildKit only sees the context.
func userDockerfile(d *dirInfo, p string) (Detection, error) {
	clean := path.Clean(strings.ReplaceAll(p, `\`, "/"))
	if strings.HasPrefix(clean, "/") || clean == ".." || strings.HasPrefix(clean, "../") {
		return Detection{}, &BuildPathError{Path: p, Reason: "is not a file inside the build directory"}
	}
	st, err := d.stat(clean)
	if leaves(err) {
		return Detection{}, err
	}
	if err != nil || !st.Mode().IsRegular() {
		return Detection{}, &BuildPathError{Path: p, Reason: "does not name a Dockerfile in the build directory"}
	}
	return Detection{Language: Dockerfile, Tool: "docker", DecidedBy: clean,
		Details: map[string]string{DetailDockerfile: clean}}, nil
}

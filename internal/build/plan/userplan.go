package plan

import (
	"bytes"
	"path"
	"strconv"
	"strings"

	"github.com/moby/buildkit/frontend/dockerfile/parser"
)

// userPlan uses the user's Dockerfile as it is. It is parsed only to fail
// early on a syntax error and to learn the stages and the exposed port.
func userPlan(det Detection) (Plan, error) {
	rel := det.Details[DetailDockerfile]
	if rel == "" {
		rel = "Dockerfile"
	}
	data, err := readUserDockerfile(det, rel)
	if leaves(err) {
		return Plan{}, err
	}
	if err != nil {
		return Plan{}, &MarkerMissingError{Language: Dockerfile, Want: rel, ForcedBy: det.ForcedBy}
	}
	res, err := parser.Parse(bytes.NewReader(data))
	if err != nil {
		return Plan{}, &ManifestError{File: rel, Err: err}
	}
	p := Plan{Dockerfile: string(data), DockerfilePath: rel, UserDockerfile: true, Context: det.BuildPath}
	exposed := 0
	for _, n := range res.AST.Children {
		switch strings.ToLower(n.Value) {
		case "from":
			name := "stage-" + strconv.Itoa(len(p.Stages))
			var words []string
			for w := n.Next; w != nil; w = w.Next {
				words = append(words, w.Value)
			}
			if len(words) >= 3 && strings.EqualFold(words[1], "as") {
				name = words[2]
			}
			if len(words) > 0 && !strings.EqualFold(words[0], "scratch") && !isStage(words[0], p.Stages) {
				p.Images = append(p.Images, words[0])
			}
			p.Stages = append(p.Stages, name)
		case "expose":
			// The last stage's first numeric port; ARG-driven ports are
			// unknown until the build.
			if n.Next != nil {
				port, _, _ := strings.Cut(n.Next.Value, "/")
				if v, err := strconv.Atoi(port); err == nil && v > 0 && v < 65536 && (exposed == 0 || len(p.Stages) > exposed) {
					p.Port, exposed = v, len(p.Stages)
				}
			}
		}
	}
	if rf := det.Rainbondfile; rf != nil && len(rf.Ports) > 0 {
		p.Port = rf.Ports[0].Port
	}
	return p, nil
}

// readUserDockerfile reads rel, below the build directory, inside the
// source root: a Dockerfile linked to a host file is refused by name.
func readUserDockerfile(det Detection, rel string) ([]byte, error) {
	root, name := det.Root, path.Join(det.BuildPath, rel)
	if root == "" { // a Detection made by hand, without Detect
		root, name = det.Dir, rel
	}
	t, err := openTree(root)
	if err != nil {
		return nil, err
	}
	defer t.close()
	return t.readFile(name)
}

func isStage(name string, stages []string) bool {
	for _, s := range stages {
		if strings.EqualFold(s, name) {
			return true
		}
	}
	return false
}

func itoa(i int) string { return strconv.Itoa(i) }

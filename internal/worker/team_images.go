package worker

import (
	"bytes"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/moby/buildkit/frontend/dockerfile/instructions"
	"github.com/moby/buildkit/frontend/dockerfile/parser"
	"github.com/moby/buildkit/frontend/dockerfile/shell"

	"github.com/berth-platform/berth/internal/build/buildkit"
	"github.com/berth-platform/berth/internal/hub"
	"github.com/berth-platform/berth/internal/model"
	"github.com/berth-platform/berth/internal/runtime"
)

// The wall between teams' images: a workload or build of a team reaches
// the registry builds push to (berth's hub, or --registry) only for its own
// namespace and the platform's base images, with a credential that can do
// no more. The API refuses such references at create and update; these
// checks catch whatever got past it (a component stored before the rule, a
// Dockerfile), at pull time.

// prefixPath is the path part of Prefix ("" for the hub).
func (r *ImageRegistry) prefixPath() string {
	_, p, _ := strings.Cut(strings.TrimSuffix(r.Prefix, "/"), "/")
	return p
}

// teamRepository is image's repository relative to Prefix ("team/alias")
// when image is in this registry. inPrefix is false for an image of the
// registry's host outside Prefix.
func (r *ImageRegistry) teamRepository(image string) (repo string, onHost, inPrefix bool) {
	full, onHost := hub.Repository(image, r.host())
	if !onHost {
		return "", false, false
	}
	if p := r.prefixPath(); p != "" {
		repo, inPrefix = strings.CutPrefix(full, p+"/")
		return repo, true, inPrefix
	}
	return full, true, true
}

// checkTeamImage refuses an image of this registry that team may not use.
// Only what lies under Prefix is berth's (all of the hub); the rest of an
// external registry is the team's business, with its own credentials.
func (r *ImageRegistry) checkTeamImage(team, image string) error {
	repo, onHost, inPrefix := r.teamRepository(image)
	if !onHost || !inPrefix || hub.TeamMayUse(team, repo) {
		return nil
	}
	return &Failure{Reason: "ImageNotAllowed", Err: &hub.ImageRuleError{Team: team, Image: image, Repository: repo}}
}

// isHub: the hub mints per-team credentials; an external registry has one.
func (r *ImageRegistry) isHub() bool { return r.TeamPull != nil }

// pullAuth is what a workload of team pulls image with: nil when image is
// not berth's to give credentials for, an error when team may not use it.
func (r *ImageRegistry) pullAuth(team, image string) (*runtime.RegistryAuth, error) {
	if err := r.checkTeamImage(team, image); err != nil {
		return nil, err
	}
	_, onHost, inPrefix := r.teamRepository(image)
	if !onHost || !inPrefix {
		return nil, nil
	}
	user, pass := r.Username, r.Password
	if r.isHub() {
		user, pass = r.TeamPull(team)
	}
	return &runtime.RegistryAuth{Username: user, Password: pass, PlainHTTP: r.PlainHTTP}, nil
}

// buildAuth is the one credential BuildKit gets for this registry in a
// build of c: its FROM pulls and its push share it, so on the hub it pulls
// c's team and the base images and pushes c's own repository, nothing else.
func (r *ImageRegistry) buildAuth(c *model.Component) (buildkit.Auth, error) {
	if !r.isHub() || r.TeamBuild == nil {
		return buildkit.Auth{Username: r.Username, Password: r.Password}, nil
	}
	user, pass, err := r.TeamBuild(c.Team, c.Team+"/"+c.Alias)
	if err != nil {
		return buildkit.Auth{}, err
	}
	return buildkit.Auth{Username: user, Password: pass}, nil
}

// checkDockerfileImages refuses a Dockerfile that names an image of this
// registry team may not use, in FROM, COPY --from or RUN --mount=from,
// with the instruction's line; BuildKit would be refused the pull anyway
// (its credential cannot reach it), but with a registry error nobody could
// read. A Dockerfile BuildKit cannot parse is left to BuildKit to explain.
func (r *ImageRegistry) checkDockerfileImages(team string, dockerfile []byte, args map[string]string) error {
	for _, img := range dockerfileImages(dockerfile, args) {
		if err := r.checkTeamImage(team, img.ref); err != nil {
			return &Failure{Reason: "ImageNotAllowed", Err: fmt.Errorf("Dockerfile line %d (%s): %w", img.line, img.instruction, errors.Unwrap(err))}
		}
	}
	return nil
}

// dockerfileImage is an image reference a Dockerfile pulls.
type dockerfileImage struct {
	ref, instruction string
	line             int
}

// dockerfileImages lists the images a Dockerfile pulls, with its global
// ARGs (overridden by args) expanded as BuildKit does; names of earlier
// stages are not images.
func dockerfileImages(dockerfile []byte, args map[string]string) []dockerfileImage {
	res, err := parser.Parse(bytes.NewReader(dockerfile))
	if err != nil {
		return nil
	}
	stages, metaArgs, err := instructions.Parse(res.AST, nil)
	if err != nil {
		return nil
	}
	env := map[string]string{}
	for _, a := range metaArgs {
		for _, kv := range a.Args {
			if v, ok := args[kv.Key]; ok {
				env[kv.Key] = v
			} else if kv.Value != nil {
				env[kv.Key] = *kv.Value
			}
		}
	}
	var envList []string
	for k, v := range env {
		envList = append(envList, k+"="+v)
	}
	lex := shell.NewLex(res.EscapeToken)
	expand := func(word string) string {
		out, _, err := lex.ProcessWord(word, shell.EnvsFromSlice(envList))
		if err != nil {
			return word
		}
		return out
	}
	var out []dockerfileImage
	named := map[string]bool{}
	add := func(ref, instruction string, loc []parser.Range) {
		ref = expand(ref)
		if ref == "" || strings.EqualFold(ref, "scratch") || named[strings.ToLower(ref)] {
			return
		}
		if _, err := strconv.Atoi(ref); err == nil {
			return // a stage by its index
		}
		line := 0
		if len(loc) > 0 {
			line = loc[0].Start.Line
		}
		out = append(out, dockerfileImage{ref: ref, instruction: instruction, line: line})
	}
	for _, st := range stages {
		add(st.BaseName, "FROM", st.Location)
		for _, cmd := range st.Commands {
			switch c := cmd.(type) {
			case *instructions.CopyCommand:
				if c.From != "" {
					add(c.From, "COPY --from", c.Location())
				}
			case *instructions.RunCommand:
				for _, m := range instructions.GetMounts(c) {
					if m.From != "" {
						add(m.From, "RUN --mount from", c.Location())
					}
				}
			}
		}
		if st.Name != "" {
			named[strings.ToLower(st.Name)] = true
		}
	}
	return out
}

// deniedHint explains a build the hub refused a pull to: a reference the
// Dockerfile check could not see (a base image's ONBUILD trigger, say)
// named a repository outside the team's.
func (r *ImageRegistry) deniedHint(msg string) string {
	if !r.isHub() || !strings.Contains(msg, r.host()+"/") || !strings.Contains(msg, "insufficient_scope") {
		return ""
	}
	return "the hub refused the pull: a build may only use hub repositories of its own team or the platform's base images (" +
		hub.PlatformNamespace + "/base-...), and one it names (maybe through a base image's ONBUILD) is not one of those"
}

package worker

import (
	"strings"

	"github.com/berth-platform/berth/internal/build/plan"
)

// pullFailure is a build that failed because one of its base images could
// not be pulled. BuildKit's error names the image three times over
// ("failed to solve: X: failed to resolve source metadata for X: ...");
// the message keeps the image once, the innermost cause, and advice that
// fits who chose the image.
type pullFailure struct {
	image, cause string
	userFile     string // the user's Dockerfile, "" for berth's own plan
	err          error
}

func (e *pullFailure) Unwrap() error { return e.err }

func (e *pullFailure) Error() string {
	var b strings.Builder
	b.WriteString("the base image " + e.image + " cannot be pulled (" + e.cause + "). ")
	if e.userFile != "" {
		b.WriteString("It is named by the repository's " + e.userFile + ", so `berth images prepare` cannot help: it provides only berth's own base images. " +
			"Either give the build machine a mirror of that registry (server flag --registry-mirror, e.g. docker.io=mirror.example.com, " +
			"or --image-mirror for the official images), or build with berth's own plan instead of the Dockerfile " +
			"(set source.language, e.g. PATCH {\"source\": {\"language\": \"go\"}}, or berth component update ALIAS --language go)")
		return b.String()
	}
	b.WriteString("On a machine without internet run `berth images prepare` to put berth's offline base images into the hub, " +
		"or give the build machine a mirror (server flags --image-mirror, or --registry-mirror docker.io=mirror.example.com)")
	return b.String()
}

// pullFailed recognises a base image pull failure in a BuildKit error.
func pullFailed(err error, pl plan.Plan) error {
	msg := err.Error()
	for _, img := range pl.Images {
		if !strings.Contains(msg, img) || !looksLikePullError(msg) {
			continue
		}
		f := &pullFailure{image: img, cause: innermostCause(msg), err: err}
		if pl.UserDockerfile {
			f.userFile = pl.DockerfilePath
		}
		return f
	}
	return nil
}

func looksLikePullError(msg string) bool {
	for _, s := range []string{"not found", "failed to resolve", "failed to do request", "no such host", "connection refused", "i/o timeout", "network is unreachable"} {
		if strings.Contains(msg, s) {
			return true
		}
	}
	return false
}

// innermostCause is the end of a chain of "context: cause" wrappings,
// from the last part that is about the network or the registry.
func innermostCause(msg string) string {
	for _, marker := range []string{"dial tcp", "lookup ", "x509:", "unexpected status", "not found"} {
		if i := strings.LastIndex(msg, marker); i >= 0 {
			return strings.TrimSpace(msg[i:])
		}
	}
	if i := strings.LastIndex(msg, ": "); i >= 0 {
		return msg[i+2:]
	}
	return msg
}

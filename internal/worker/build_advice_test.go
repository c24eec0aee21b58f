package worker

import (
	"errors"
	"strings"
	"testing"

	"github.com/berth-platform/berth/internal/build/plan"
)

func TestPullFailureAdviceFitsWhoChoseTheImage(t *testing.T) {
	cause := errors.New(`failed to solve: docker.io/library/node:20-alpine: failed to resolve source metadata for docker.io/library/node:20-alpine: ` +
		`failed to do request: Head "https://registry-1.docker.io/v2/library/node/manifests/20-alpine": dial tcp: lookup registry-1.docker.io on 127.0.0.53:53: no such host`)

	user := pullFailed(cause, plan.Plan{UserDockerfile: true, DockerfilePath: "Dockerfile", Images: []string{"docker.io/library/node:20-alpine"}})
	if user == nil {
		t.Fatal("a FROM that cannot be pulled is not recognised")
	}
	msg := user.Error()
	for _, want := range []string{"docker.io/library/node:20-alpine", "cannot help", "--registry-mirror", "source.language", "no such host"} {
		if !strings.Contains(msg, want) {
			t.Errorf("advice lacks %q:\n%s", want, msg)
		}
	}
	if n := strings.Count(msg, "docker.io/library/node:20-alpine"); n != 1 {
		t.Errorf("the image is named %d times, want once:\n%s", n, msg)
	}
	if strings.Contains(msg, "run `berth images prepare`") {
		t.Errorf("tells the user to run images prepare, which cannot provide their image:\n%s", msg)
	}
	if !errors.Is(user, cause) {
		t.Error("the cause is not wrapped")
	}

	own := pullFailed(cause, plan.Plan{Images: []string{"docker.io/library/node:20-alpine"}})
	if own == nil || !strings.Contains(own.Error(), "run `berth images prepare`") {
		t.Errorf("berth's own plan should point at images prepare: %v", own)
	}
	if pullFailed(errors.New("process \"/bin/sh -c npm ci\" did not complete successfully: exit code: 1"), plan.Plan{Images: []string{"node"}}) != nil {
		t.Error("a failing RUN step is not a pull failure")
	}
}

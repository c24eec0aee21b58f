package hub

import (
	"errors"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/v1/remote"
)

func creds(user, pass string) remote.Option {
	return remote.WithAuth(&authn.Basic{Username: user, Password: pass})
}

// A team's minted pull credential reads its own namespace and the base
// images, and nothing of another team: the credential the runtime used
// before (the internal one) read everything.
func TestTeamPullCredentialsStayInTheTeam(t *testing.T) {
	th := startHub(t, t.TempDir(), nil)
	ctx := testCtx(t)
	alphaImg, betaImg, baseImg := randomImage(t), randomImage(t), randomImage(t)
	push(t, ctx, th.ref(t, "alpha/web:v1"), alphaImg, basic("alpha-token"))
	push(t, ctx, th.ref(t, "beta/secret:v1"), betaImg, basic("beta-token"))
	push(t, ctx, th.ref(t, "berth/base-go-builder:latest"), baseImg, th.internalAuth())

	pull := creds(th.TeamPullCredentials("alpha"))
	pullAndVerify(t, ctx, th.ref(t, "alpha/web:v1"), mustDigest(t, alphaImg), pull)
	pullAndVerify(t, ctx, th.ref(t, "berth/base-go-builder:latest"), mustDigest(t, baseImg), pull)
	_, err := remote.Image(th.ref(t, "beta/secret:v1"), pull, remote.WithContext(ctx))
	wantDenied(t, "alpha's pull credential pulls beta/secret", err)
	err = remote.Write(th.ref(t, "alpha/web:v2"), randomImage(t), pull, remote.WithContext(ctx))
	wantDenied(t, "a pull credential pushes", err)

	// A forged password for the same username, or a pull credential of
	// one team renamed to another, is nobody.
	user, pass := th.TeamPullCredentials("alpha")
	_, err = remote.Image(th.ref(t, "alpha/web:v1"), creds(user, pass+"x"), remote.WithContext(ctx))
	wantDenied(t, "forged team credential", err)
	_, err = remote.Image(th.ref(t, "beta/secret:v1"), creds(strings.Replace(user, "alpha", "beta", 1), pass), remote.WithContext(ctx))
	wantDenied(t, "alpha's password under beta's name", err)
}

// A build's credential pulls like the team's and pushes its own component's
// repository only; never the platform's base images.
func TestTeamBuildCredentialsPushOneRepository(t *testing.T) {
	th := startHub(t, t.TempDir(), nil)
	ctx := testCtx(t)
	betaImg := randomImage(t)
	push(t, ctx, th.ref(t, "beta/secret:v1"), betaImg, basic("beta-token"))
	push(t, ctx, th.ref(t, "berth/base-go-runner:latest"), randomImage(t), th.internalAuth())

	u, p, err := th.TeamBuildCredentials("alpha", "alpha/web")
	if err != nil {
		t.Fatal(err)
	}
	build := creds(u, p)
	img := randomImage(t)
	push(t, ctx, th.ref(t, "alpha/web:v1"), img, build)
	pullAndVerify(t, ctx, th.ref(t, "alpha/web:v1"), mustDigest(t, img), build)
	err = remote.Write(th.ref(t, "alpha/other:v1"), randomImage(t), build, remote.WithContext(ctx))
	wantDenied(t, "a build pushes another component's repository", err)
	_, err = remote.Image(th.ref(t, "beta/secret:v1"), build, remote.WithContext(ctx))
	wantDenied(t, "a build pulls another team's image", err)

	if _, _, err := th.TeamBuildCredentials("alpha", "beta/secret"); err == nil {
		t.Error("a build credential for another team's repository was minted")
	}
	// A team called like the platform namespace cannot replace base images.
	u, p, err = th.TeamBuildCredentials(PlatformNamespace, "berth/base-go-runner")
	if err != nil {
		t.Fatal(err)
	}
	err = remote.Write(th.ref(t, "berth/base-go-runner:latest"), randomImage(t), creds(u, p), remote.WithContext(ctx))
	wantDenied(t, "team berth overwrites a base image", err)
}

// Minted credentials survive a restart (they are derived, not stored).
func TestTeamCredentialsSurviveRestart(t *testing.T) {
	root := t.TempDir()
	th := startHub(t, root, nil)
	u, p := th.TeamPullCredentials("alpha")
	th.stop()
	th2 := startHub(t, root, nil)
	if u2, p2 := th2.TeamPullCredentials("alpha"); u2 != u || p2 != p {
		t.Fatal("the team pull credential changed across a restart")
	}
	if p3, _ := th2.TeamPullCredentials("beta"); p3 == p {
		t.Fatal("two teams share a credential")
	}
}

func TestCheckImage(t *testing.T) {
	const hubHost = "127.0.0.1:7070"
	for _, tc := range []struct {
		image string
		ok    bool
	}{
		{"127.0.0.1:7070/alpha/web:v1", true},
		{"127.0.0.1:7070/berth/base-node-runner:latest", true},
		{"nginx:1.25", true},
		{"registry.example.com/beta/secret:v1", true},
		{"127.0.0.1:7071/beta/secret:v1", true}, // another registry
		{"127.0.0.1:7070/beta/secret:v1", false},
		{"localhost:7070/beta/secret:v1", false},
		{"[::1]:7070/beta/secret@sha256:" + strings.Repeat("a", 64), false},
		{"0.0.0.0:7070/beta/secret", false},
		{"127.0.0.1:7070/berth/tools:v1", false},
		{"127.0.0.1:7070/alphabet/web:v1", false},
		{"127.0.0.1:7070/alpha:v1", false},
	} {
		err := CheckImage("alpha", tc.image, hubHost)
		if tc.ok && err != nil {
			t.Errorf("%s: %v, want allowed", tc.image, err)
		}
		if !tc.ok && !errors.Is(err, ErrImageNotAllowed) {
			t.Errorf("%s: %v, want refused", tc.image, err)
		}
	}
	err := CheckImage("alpha", "127.0.0.1:7070/beta/secret:v1", hubHost)
	if msg := err.Error(); !strings.Contains(msg, "beta/secret") || !strings.Contains(msg, "alpha/...") {
		t.Errorf("message does not name the repository and the rule: %s", msg)
	}
}

package api

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"strings"

	"github.com/berth-platform/berth/internal/model"
	"github.com/berth-platform/berth/internal/worker"
)

// webhookView tells where a git host sends push events for a component.
type webhookView struct {
	URL    string `json:"url"` // path on berth's API address
	Secret string `json:"secret,omitempty"`
}

func viewWebhook(c *model.Component) *webhookView {
	if c.Kind != model.KindSource || c.WebhookSecret == "" {
		return nil
	}
	return &webhookView{URL: "/api/v1/webhooks/" + c.ID, Secret: c.WebhookSecret}
}

func newWebhookSecret() string {
	b := make([]byte, 24)
	_, _ = rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

// pushEvent is what GitHub, GitLab and Gitea send on a push, reduced to
// what a build needs.
type pushEvent struct {
	Ref         string `json:"ref"`
	After       string `json:"after"`
	CheckoutSHA string `json:"checkout_sha"` // GitLab
	Repository  struct {
		DefaultBranch string `json:"default_branch"`
	} `json:"repository"`
	Project struct { // GitLab
		DefaultBranch string `json:"default_branch"`
	} `json:"project"`
}

// webhook takes a git host's push event for a source component and
// builds the pushed commit when it is on the component's branch. The
// secret is verified the host's way: GitHub and Gitea sign the body with
// HMAC-SHA256, GitLab sends the secret as a token.
func (a *API) webhook(w http.ResponseWriter, r *http.Request) {
	if err := a.doWebhook(w, r); err != nil {
		writeError(w, r, err)
	}
}

func (a *API) doWebhook(w http.ResponseWriter, r *http.Request) error {
	if r.Header.Get("X-Hub-Signature-256") == "" && r.Header.Get("X-Gitea-Signature") == "" && r.Header.Get("X-Gitlab-Token") == "" {
		return errorf(http.StatusUnauthorized, "unauthorized", "no webhook secret: configure the component's webhook secret on the git host (GitHub and Gitea sign the body with it, GitLab sends it as X-Gitlab-Token)")
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, 5<<20))
	if err != nil {
		return errorf(http.StatusRequestEntityTooLarge, "too_large", "a push event larger than 5 MiB: %v", err)
	}
	c, err := a.store.GetComponentByID(r.Context(), r.PathValue("id"))
	refuse := errorf(http.StatusUnauthorized, "unauthorized", "the webhook secret does not match (or the component does not exist); copy the secret from the component's webhook")
	if err != nil || c.Kind != model.KindSource || c.WebhookSecret == "" {
		return refuse
	}
	var provider, event string
	switch {
	case r.Header.Get("X-GitHub-Event") != "":
		provider, event = "github", r.Header.Get("X-GitHub-Event")
		if !validHMAC(body, c.WebhookSecret, strings.TrimPrefix(r.Header.Get("X-Hub-Signature-256"), "sha256=")) {
			return refuse
		}
	case r.Header.Get("X-Gitea-Event") != "":
		provider, event = "gitea", r.Header.Get("X-Gitea-Event")
		if !validHMAC(body, c.WebhookSecret, r.Header.Get("X-Gitea-Signature")) {
			return refuse
		}
	case r.Header.Get("X-Gitlab-Event") != "":
		provider, event = "gitlab", r.Header.Get("X-Gitlab-Event")
		if subtle.ConstantTimeCompare([]byte(r.Header.Get("X-Gitlab-Token")), []byte(c.WebhookSecret)) != 1 {
			return refuse
		}
	default:
		return badRequest("not a GitHub, GitLab or Gitea webhook (no X-GitHub-Event, X-Gitlab-Event or X-Gitea-Event header)")
	}
	if event == "ping" {
		writeJSON(w, http.StatusOK, map[string]string{"result": "pong"})
		return nil
	}
	if event != "push" && event != "Push Hook" {
		writeJSON(w, http.StatusOK, map[string]string{"ignored": provider + " event " + event + " is not a push"})
		return nil
	}
	var push pushEvent
	if err := json.Unmarshal(body, &push); err != nil {
		return badRequest("push event is not JSON: %v", err)
	}
	branch, ok := strings.CutPrefix(push.Ref, "refs/heads/")
	want := c.Source.Branch
	if want == "" {
		want = push.Repository.DefaultBranch + push.Project.DefaultBranch
	}
	if !ok || branch != want {
		writeJSON(w, http.StatusOK, map[string]string{"ignored": "push to " + push.Ref + "; " + c.Alias + " builds branch " + want})
		return nil
	}
	commit := push.After
	if push.CheckoutSHA != "" {
		commit = push.CheckoutSHA
	}
	if strings.Trim(commit, "0") == "" { // a deleted branch
		writeJSON(w, http.StatusOK, map[string]string{"ignored": "the branch was deleted"})
		return nil
	}
	id, err := a.enqueue(r, c, worker.TaskBuild, worker.BuildTask{ComponentID: c.ID, Commit: commit},
		"build of "+c.Alias+" at "+short(commit)+" requested by a "+provider+" push to "+branch)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusAccepted, map[string]string{"event_id": id})
	return nil
}

func validHMAC(body []byte, secret, got string) bool {
	want, err := hex.DecodeString(got)
	if err != nil || len(want) == 0 {
		return false
	}
	m := hmac.New(sha256.New, []byte(secret))
	m.Write(body)
	return hmac.Equal(m.Sum(nil), want)
}

func short(commit string) string {
	if len(commit) > 12 {
		return commit[:12]
	}
	return commit
}

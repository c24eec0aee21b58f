package source

import (
	"errors"
	"strings"
	"testing"

	"github.com/berth-platform/berth/internal/model"
)

func TestValidateGitURLAccepts(t *testing.T) {
	for _, u := range []string{
		"https://github.com/berth-platform/berth.git",
		"http://127.0.0.1:8080/repo.git",
		"https://user:token@gitlab.example.com/group/sub/repo",
		"ssh://git@example.com:2222/owner/repo.git",
		"ssh://example.com/owner/repo.git",
		"git@github.com:owner/repo.git",
		"deploy@[::1]:repo.git",
		"https://[::1]:8443/repo.git",
	} {
		if err := ValidateGitURL(u); err != nil {
			t.Errorf("ValidateGitURL(%q) = %v, want nil", u, err)
		}
	}
}

func TestValidateGitURLRejects(t *testing.T) {
	for _, tc := range []struct{ url, reason string }{
		{"", "empty"},
		{"ext::sh -c touch% /tmp/pwned", "remote helpers"},
		{"ext::ssh -oProxyCommand=x host", "remote helpers"},
		{"fd::17", "remote helpers"},
		{"file:///etc/passwd", "file://"},
		{"FILE:///srv/repo.git", "file://"},
		{"/srv/git/repo.git", "local paths"},
		{"./repo", "local paths"},
		{"../repo", "local paths"},
		{"~/repo", "local paths"},
		{`C:\repos\x`, "local paths"},
		{"-uhttps://x/y", "starts with '-'"},
		{"--upload-pack=touch /tmp/x", "starts with '-'"},
		{"https://example.com/repo\n.git", "control characters"},
		{"https://example.com/re po.git", "spaces"},
		{"https://example.com", "no repository path"},
		{"https:///repo.git", "no host"},
		{"https://-oProxyCommand=x/repo.git", "not a valid host"},
		{"https://exa_mple.com/repo.git", "not a valid host"},
		{"ssh://-oProxyCommand=touch/repo", "not a valid host"},
		{"ssh://-oProxyCommand@host/repo", "ssh user name"},
		{"ssh://user:pw@host/repo", "cannot carry a password"},
		{"git@host:-oProxyCommand=x", "starts with '-'"},
		{"ftp://example.com/repo.git", "not supported"},
		{"git://example.com/repo.git", "not supported"},
		{"host:path/repo.git", "neither a URL"},
		{"https://example.com/repo.git#main", "fragment"},
	} {
		err := ValidateGitURL(tc.url)
		var ie *InvalidURLError
		if !errors.As(err, &ie) {
			t.Errorf("ValidateGitURL(%q) = %v, want *InvalidURLError", tc.url, err)
			continue
		}
		if !strings.Contains(err.Error(), tc.reason) {
			t.Errorf("ValidateGitURL(%q) = %q, want it to mention %q", tc.url, err, tc.reason)
		}
		if !strings.Contains(err.Error(), "https://host/owner/repo.git") {
			t.Errorf("ValidateGitURL(%q) = %q: the message should say how to fix it", tc.url, err)
		}
		var ve *model.ValidationError
		if !errors.As(err, &ve) || ve.Field != "source.url" {
			t.Errorf("ValidateGitURL(%q): want a model.ValidationError for source.url in the chain", tc.url)
		}
	}
}

func TestInvalidURLErrorRedactsSecrets(t *testing.T) {
	err := ValidateGitURL("ftp://alice:s3cret@example.com/repo")
	if err == nil || strings.Contains(err.Error(), "s3cret") {
		t.Fatalf("error %v must not contain the password", err)
	}
}

func TestRedactURL(t *testing.T) {
	for in, want := range map[string]string{
		"https://alice:s3cret@host/r.git": "https://alice:xxxxx@host/r.git",
		"https://ghp_token@host/r.git":    "https://xxxxx@host/r.git",
		"https://host/r.git":              "https://host/r.git",
		"ssh://git@host/r.git":            "ssh://git@host/r.git",
		"git@host:r.git":                  "git@host:r.git",
		"https://a:b%zz@host/r":           "https://***@host/r",
	} {
		if got := RedactURL(in); got != want {
			t.Errorf("RedactURL(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestGitSpecFromSource(t *testing.T) {
	for _, tc := range []struct {
		src  model.Source
		want string
	}{
		{model.Source{URL: "https://h/r", Branch: "dev"}, "dev"},
		{model.Source{URL: "https://h/r", Branch: "dev", Tag: "v1"}, "refs/tags/v1"},
		{model.Source{URL: "https://h/r", Branch: "dev", Tag: "v1", Commit: "abc1234"}, "abc1234"},
		{model.Source{URL: "https://h/r"}, ""},
	} {
		if got := GitSpecFromSource(tc.src); got.Ref != tc.want || got.URL != tc.src.URL {
			t.Errorf("GitSpecFromSource(%+v) = %+v, want ref %q", tc.src, got, tc.want)
		}
	}
}

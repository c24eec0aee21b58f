package api

import (
	"testing"

	"github.com/berth-platform/berth/internal/model"
)

// TestKeepCredentialsOnlyForTheSameHost plays a developer who moves a
// source to a host they control and sends back the masked password they
// read, hoping the next build hands the stored one to their host.
func TestKeepCredentialsOnlyForTheSameHost(t *testing.T) {
	stored := func() *model.Source {
		return &model.Source{Type: "git", URL: "https://git.example.com/team/app.git", Username: "ci", Password: "s3cret", SSHKey: "KEY"}
	}
	cases := []struct {
		name             string
		in               model.Source
		user, pass, keyv string
	}{
		{"same host keeps masked", model.Source{URL: "https://GIT.example.com/team/other.git", Username: "ci", Password: secretMask, SSHKey: secretMask}, "ci", "s3cret", "KEY"},
		{"other host drops masked", model.Source{URL: "https://evil.example.net/x.git", Username: "ci", Password: secretMask, SSHKey: secretMask}, "", "", ""},
		{"other port drops masked", model.Source{URL: "https://git.example.com:8443/team/app.git", Username: "ci", Password: secretMask}, "", "", ""},
		{"scp form to other host drops masked", model.Source{URL: "git@evil.example.net:x.git", SSHKey: secretMask}, "", "", ""},
		{"other host with new password keeps it", model.Source{URL: "https://evil.example.net/x.git", Username: "me", Password: "new"}, "me", "new", ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			in := c.in
			keepCredentials(&in, stored())
			if in.Username != c.user || in.Password != c.pass || in.SSHKey != c.keyv {
				t.Errorf("got username %q password %q ssh key %q, want %q %q %q", in.Username, in.Password, in.SSHKey, c.user, c.pass, c.keyv)
			}
		})
	}
}

// TestPartialSourceUpdateKeepsTheOtherFields: PATCH {"source":
// {"language": "go"}} changes the language alone; a new URL on another
// host leaves the stored credentials behind even when the client does not
// send them back at all.
func TestPartialSourceUpdateKeepsTheOtherFields(t *testing.T) {
	stored := &model.Source{Type: "git", URL: "https://git.example.com/team/app.git", Branch: "main", Username: "ci", Password: "s3cret"}

	got, err := mergeSource([]byte(`{"language": "go"}`), stored)
	if err != nil {
		t.Fatal(err)
	}
	want := *stored
	want.Language = "go"
	if *got != want {
		t.Errorf("language only: got %+v, want %+v", *got, want)
	}
	if got, err = mergeSource([]byte(`{"branch": "dev", "subdir": "api"}`), stored); err != nil || got.Branch != "dev" || got.Subdir != "api" || got.URL != stored.URL || got.Password != "s3cret" {
		t.Errorf("branch and subdir: %+v, %v", got, err)
	}
	if got, err = mergeSource([]byte(`{"url": "https://evil.example.net/x.git"}`), stored); err != nil || got.Password != "" || got.Username != "" {
		t.Errorf("a URL on another host kept the credentials: %+v, %v", got, err)
	}
	if _, err = mergeSource([]byte(`{"langauge": "go"}`), stored); err == nil {
		t.Error("an unknown field (a typo) was accepted")
	}
	if got, err = mergeSource([]byte(`{"url": "https://git.example.com/a.git"}`), nil); err != nil || got.URL != "https://git.example.com/a.git" {
		t.Errorf("a first source: %+v, %v", got, err)
	}
	if stored.Language != "" || stored.Password != "s3cret" {
		t.Errorf("the stored source was changed in place: %+v", stored)
	}
}

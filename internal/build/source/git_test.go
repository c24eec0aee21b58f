package source

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/berth-platform/berth/internal/testgit"
)

func readFile(t *testing.T, p string) string {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatalf("read %s: %v", p, err)
	}
	return string(b)
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

func TestCloneBranchTagCommit(t *testing.T) {
	f := testgit.Serve(t, "", "")
	work := f.Repo("app")
	first := f.CommitLocal(work, "first version\n\nwith a body", map[string]string{"main.go": "package main // v1\n"})
	f.Git(work, "tag", "-a", "v1.0", "-m", "release 1.0")
	second := f.CommitLocal(work, "second version", map[string]string{"main.go": "package main // v2\n"})
	f.Git(work, "checkout", "-q", "-b", "dev")
	dev := f.CommitLocal(work, "on dev", map[string]string{"dev.txt": "dev\n"})
	f.Git(work, "checkout", "-q", "main")
	third := f.CommitLocal(work, "third version", map[string]string{"main.go": "package main // v3\n"})
	f.Git(work, "push", "-q", "origin", "main", "dev", "v1.0")

	for _, tc := range []struct {
		name, ref, want, file, content string
	}{
		{"default branch", "", third, "main.go", "package main // v3\n"},
		{"branch", "dev", dev, "dev.txt", "dev\n"},
		{"annotated tag", "v1.0", first, "main.go", "package main // v1\n"},
		{"tag prefix", "tag:v1.0", first, "main.go", "package main // v1\n"},
		{"full ref", "refs/heads/dev", dev, "dev.txt", "dev\n"},
		{"commit", second, second, "main.go", "package main // v2\n"},
		{"short commit", second[:8], second, "main.go", "package main // v2\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "src")
			var log bytes.Buffer
			c, err := Clone(ctxT(t), GitSpec{URL: f.URL("app"), Ref: tc.ref}, dir, &log)
			if err != nil {
				t.Fatalf("Clone: %v\nlog:\n%s", err, log.String())
			}
			if c.Hash != tc.want {
				t.Fatalf("commit %s, want %s", c.Hash, tc.want)
			}
			if got := readFile(t, filepath.Join(dir, tc.file)); got != tc.content {
				t.Fatalf("%s = %q, want %q", tc.file, got, tc.content)
			}
			if c.Author != "Ada" || c.Time.IsZero() || c.Message == "" {
				t.Fatalf("commit info incomplete: %+v", c)
			}
			lines := strings.Split(strings.TrimSpace(log.String()), "\n")
			if lines[0] != "Start clone source code from "+f.URL("app") {
				t.Fatalf("first log line %q", lines[0])
			}
			subject, _, _ := strings.Cut(c.Message, "\n")
			wantLast := "CodeVersion:" + c.Hash + " Author:Ada Commit:" + subject
			if lines[len(lines)-1] != wantLast {
				t.Fatalf("last log line %q, want %q", lines[len(lines)-1], wantLast)
			}
		})
	}

	t.Run("shallow by default", func(t *testing.T) {
		dir := t.TempDir()
		if _, err := Clone(ctxT(t), GitSpec{URL: f.URL("app")}, dir, nil); err != nil {
			t.Fatal(err)
		}
		if n := f.Git(dir, "rev-list", "--count", "HEAD"); n != "1" {
			t.Fatalf("history has %s commits, want 1", n)
		}
		if branch := f.Git(dir, "rev-parse", "--abbrev-ref", "HEAD"); branch != "main" {
			t.Fatalf("checked out %q, want the branch main", branch)
		}
	})
	t.Run("full history", func(t *testing.T) {
		dir := t.TempDir()
		if _, err := Clone(ctxT(t), GitSpec{URL: f.URL("app"), Depth: -1}, dir, nil); err != nil {
			t.Fatal(err)
		}
		if n := f.Git(dir, "rev-list", "--count", "HEAD"); n != "3" {
			t.Fatalf("history has %s commits, want 3", n)
		}
	})
	t.Run("ref not found lists refs", func(t *testing.T) {
		dir := filepath.Join(t.TempDir(), "src")
		_, err := Clone(ctxT(t), GitSpec{URL: f.URL("app"), Ref: "feature-x"}, dir, nil)
		var ge *GitError
		if !errors.As(err, &ge) || !errors.Is(err, ErrRefNotFound) {
			t.Fatalf("err = %v, want ErrRefNotFound", err)
		}
		for _, want := range []string{`"feature-x" does not exist`, "dev", "main", "tag:v1.0"} {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("error %q should mention %q", err, want)
			}
		}
		if _, statErr := os.Stat(dir); !os.IsNotExist(statErr) {
			t.Errorf("failed clone left %s behind", dir)
		}
	})
	t.Run("unknown commit", func(t *testing.T) {
		_, err := Clone(ctxT(t), GitSpec{URL: f.URL("app"), Ref: strings.Repeat("ab", 20)}, t.TempDir(), nil)
		if !errors.Is(err, ErrRefNotFound) {
			t.Fatalf("err = %v, want ErrRefNotFound", err)
		}
	})
	t.Run("directory must be empty", func(t *testing.T) {
		dir := t.TempDir()
		if err := os.WriteFile(filepath.Join(dir, "x"), nil, 0o644); err != nil {
			t.Fatal(err)
		}
		if _, err := Clone(ctxT(t), GitSpec{URL: f.URL("app")}, dir, nil); err == nil || !strings.Contains(err.Error(), "not empty") {
			t.Fatalf("err = %v, want a not-empty error", err)
		}
	})
}

func TestCloneSubmodules(t *testing.T) {
	f := testgit.Serve(t, "", "")
	app := superproject(f, "withsub", "lib", "vendor/lib", map[string]string{"lib.txt": "library\n"})
	// Relative, as forges recommend: resolved against the superproject's URL.
	f.Git(app, "config", "-f", ".gitmodules", "submodule.vendor/lib.url", "../lib.git")
	f.Commit(app, "add lib", nil)

	dir := t.TempDir()
	if _, err := Clone(ctxT(t), GitSpec{URL: f.URL("withsub"), Submodules: true}, dir, nil); err != nil {
		t.Fatal(err)
	}
	if got := readFile(t, filepath.Join(dir, "vendor/lib/lib.txt")); got != "library\n" {
		t.Fatalf("submodule content %q", got)
	}

	dir2 := t.TempDir()
	if _, err := Clone(ctxT(t), GitSpec{URL: f.URL("withsub")}, dir2, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir2, "vendor/lib/lib.txt")); !os.IsNotExist(err) {
		t.Fatalf("submodule fetched although not asked for")
	}
}

func TestCloneRefusesDangerousSubmodule(t *testing.T) {
	f := testgit.Serve(t, "", "")
	// .gitmodules points at a path on the build machine's disk.
	app := superproject(f, "evil", "secret", "s", map[string]string{"secret.txt": "local only\n"})
	f.Commit(app, "add s", nil)

	var log bytes.Buffer
	dir := t.TempDir()
	_, err := Clone(ctxT(t), GitSpec{URL: f.URL("evil"), Submodules: true}, dir, &log)
	if err == nil {
		t.Fatalf("a submodule on the local disk was cloned:\n%s\n%s", log.String(), f.Git(dir, "submodule", "status"))
	}
	if !strings.Contains(err.Error(), "give submodules http(s) or ssh URLs") {
		t.Fatalf("message %q lacks advice", err)
	}
}

// superproject makes repository sub holding files and repository name
// whose submodule at path is sub, added by its path on disk. It returns
// name's working copy with the submodule staged, for the test to commit.
func superproject(f *testgit.Server, name, sub, path string, files map[string]string) string {
	f.Commit(f.Repo(sub), sub, files)
	app := f.Repo(name)
	f.CommitLocal(app, "app", map[string]string{"README": "app\n"})
	f.Git(app, "-c", "protocol.file.allow=always", "submodule", "add", "-q", f.Bare(sub), path)
	return app
}

func TestCloneAuth(t *testing.T) {
	f := testgit.Serve(t, "alice", "s3cret-token")
	work := f.Repo("private")
	want := f.Commit(work, "private", map[string]string{"index.php": "<?php echo 1;\n"})

	t.Run("right credentials", func(t *testing.T) {
		dir := t.TempDir()
		var log bytes.Buffer
		c, err := Clone(ctxT(t), GitSpec{URL: f.URL("private"), Username: "alice", Password: "s3cret-token"}, dir, &log)
		if err != nil {
			t.Fatalf("Clone: %v\n%s", err, log.String())
		}
		if c.Hash != want {
			t.Fatalf("hash %s want %s", c.Hash, want)
		}
		if strings.Contains(log.String(), "s3cret") {
			t.Fatalf("log shows the secret:\n%s", log.String())
		}
		if cfg := readFile(t, filepath.Join(dir, ".git/config")); strings.Contains(cfg, "s3cret") {
			t.Fatalf(".git/config keeps the secret:\n%s", cfg)
		}
	})
	t.Run("credentials in the URL", func(t *testing.T) {
		u := strings.Replace(f.URL("private"), "http://", "http://alice:s3cret-token@", 1)
		dir := t.TempDir()
		var log bytes.Buffer
		if _, err := Clone(ctxT(t), GitSpec{URL: u}, dir, &log); err != nil {
			t.Fatalf("Clone: %v", err)
		}
		if strings.Contains(log.String(), "s3cret") {
			t.Fatalf("log shows the secret:\n%s", log.String())
		}
		if !strings.Contains(log.String(), "Start clone source code from http://alice:xxxxx@") {
			t.Fatalf("log should show the redacted URL:\n%s", log.String())
		}
		if cfg := readFile(t, filepath.Join(dir, ".git/config")); strings.Contains(cfg, "s3cret") {
			t.Fatalf(".git/config keeps the secret:\n%s", cfg)
		}
	})
	t.Run("wrong password", func(t *testing.T) {
		_, err := Clone(ctxT(t), GitSpec{URL: f.URL("private"), Username: "alice", Password: "wrong"}, t.TempDir(), nil)
		if !errors.Is(err, ErrAuthFailed) {
			t.Fatalf("err = %v, want ErrAuthFailed", err)
		}
		if !strings.Contains(err.Error(), "Pull code error, authorization failed") || !strings.Contains(err.Error(), "check the user name and password") {
			t.Fatalf("message %q lacks the kind or the advice", err)
		}
		if strings.Contains(err.Error(), "wrong") {
			t.Fatalf("message %q shows the password", err)
		}
	})
	t.Run("no credentials", func(t *testing.T) {
		_, err := Clone(ctxT(t), GitSpec{URL: f.URL("private")}, t.TempDir(), nil)
		if !errors.Is(err, ErrAuthRequired) {
			t.Fatalf("err = %v, want ErrAuthRequired", err)
		}
	})
}

func TestCloneNotFoundAndUnreachable(t *testing.T) {
	f := testgit.Serve(t, "", "")
	_, err := Clone(ctxT(t), GitSpec{URL: f.URL("nope")}, t.TempDir(), nil)
	if !errors.Is(err, ErrRepoNotFound) {
		t.Fatalf("err = %v, want ErrRepoNotFound", err)
	}
	if !strings.Contains(err.Error(), "Check the repository address") {
		t.Fatalf("message %q lacks advice", err)
	}

	// Port 1 on loopback: nothing listens there.
	_, err = Clone(ctxT(t), GitSpec{URL: "http://127.0.0.1:1/repo.git"}, t.TempDir(), nil)
	if !errors.Is(err, ErrHostUnreachable) {
		t.Fatalf("err = %v, want ErrHostUnreachable", err)
	}

	var ie *InvalidURLError
	if _, err := Clone(ctxT(t), GitSpec{URL: "ext::sh -c id"}, t.TempDir(), nil); !errors.As(err, &ie) {
		t.Fatalf("err = %v, want *InvalidURLError", err)
	}
}

func TestCloneEmptyRepository(t *testing.T) {
	f := testgit.Serve(t, "", "")
	f.Repo("empty")
	_, err := Clone(ctxT(t), GitSpec{URL: f.URL("empty")}, t.TempDir(), nil)
	if !errors.Is(err, ErrEmptyRepo) {
		t.Fatalf("err = %v, want ErrEmptyRepo", err)
	}
}

func TestCloneTimeout(t *testing.T) {
	f := testgit.Serve(t, "", "")
	work := f.Repo("app")
	f.Commit(work, "a", map[string]string{"a": "a"})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := Clone(ctx, GitSpec{URL: f.URL("app")}, t.TempDir(), nil)
	if !errors.Is(err, ErrCloneTimeout) {
		t.Fatalf("err = %v, want ErrCloneTimeout", err)
	}
}

func TestAskpassAnswersOnlyItsHost(t *testing.T) {
	r, err := parseRemote("https://git.example.com:8443/o/r.git")
	if err != nil {
		t.Fatal(err)
	}
	env, err := newGitEnv(r, "alice", "tok'en", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer env.close()
	script := filepath.Join(env.dir, "askpass.sh")
	if strings.Contains(readFile(t, script), "tok") {
		t.Fatal("the script itself holds the secret")
	}
	ask := func(prompt string) (string, error) {
		out, err := exec.Command(script, prompt).Output()
		return string(out), err
	}
	if got, err := ask("Username for 'https://git.example.com:8443': "); err != nil || got != "alice" {
		t.Fatalf("username = %q, %v", got, err)
	}
	if got, err := ask("Password for 'https://alice@git.example.com:8443': "); err != nil || got != "tok'en" {
		t.Fatalf("password = %q, %v", got, err)
	}
	if got, err := ask("Password for 'https://alice@evil.example.com': "); err == nil || got != "" {
		t.Fatalf("answered another host: %q", got)
	}
	for _, kv := range env.env {
		if strings.Contains(kv, "tok'en") {
			t.Fatalf("secret in the environment: %s", kv)
		}
	}
}

func TestClassify(t *testing.T) {
	for _, tc := range []struct {
		stderr string
		creds  bool
		want   error
	}{
		{"remote: Repository not found.\nfatal: repository 'https://github.com/x/y.git/' not found", false, ErrRepoNotFound},
		{"fatal: Authentication failed for 'https://h/x.git/'", true, ErrAuthFailed},
		{"fatal: could not read Username for 'https://h': terminal prompts disabled", false, ErrAuthRequired},
		{"fatal: unable to access 'https://nohost.invalid/x.git/': Could not resolve host: nohost.invalid", false, ErrHostUnreachable},
		{"ssh: Could not resolve hostname nohost: Name or service not known", false, ErrHostUnreachable},
		{"git@h: Permission denied (publickey).\nfatal: Could not read from remote repository.", true, ErrSSHKeyRequired},
		{"fatal: unable to access 'https://h/': SSL certificate problem: self-signed certificate", false, ErrHostUnreachable},
		{"fatal: couldn't find remote ref refs/heads/x", false, ErrRefNotFound},
		{"something else entirely", false, ErrGit},
	} {
		if got := classify(tc.stderr, "u", "", tc.creds, nil); got.Kind != tc.want {
			t.Errorf("classify(%q) = %v, want %v", tc.stderr, got.Kind, tc.want)
		}
	}
}

// TestCloneSSHCommand checks that the ssh command berth builds is accepted
// by OpenSSH (options, quoting, key file) up to the connection, which
// nothing on loopback port 1 answers.
func TestCloneSSHCommand(t *testing.T) {
	if _, err := exec.LookPath("ssh"); err != nil {
		t.Skip("ssh is not installed")
	}
	key := []byte("-----BEGIN OPENSSH PRIVATE KEY-----\nnot a real key\n-----END OPENSSH PRIVATE KEY-----")
	for _, u := range []string{"ssh://git@127.0.0.1:1/owner/repo.git", "ssh://127.0.0.1:1/repo.git"} {
		for _, k := range [][]byte{nil, key} {
			_, err := Clone(ctxT(t), GitSpec{URL: u, SSHKey: k}, t.TempDir(), nil)
			var ge *GitError
			if !errors.As(err, &ge) || !errors.Is(err, ErrHostUnreachable) || !strings.Contains(ge.Detail, "Connection refused") {
				t.Errorf("Clone(%s, key=%v) = %v, want a refused connection", u, k != nil, err)
			}
		}
	}
}

func TestRefreshReusesAnUnchangedCheckout(t *testing.T) {
	srv := testgit.Serve(t, "", "")
	work := srv.Repo("app")
	first := srv.Commit(work, "one", map[string]string{"a.txt": "1"})
	dir := filepath.Join(t.TempDir(), "src")
	var log bytes.Buffer
	c, err := Refresh(ctxT(t), GitSpec{URL: srv.URL("app"), Ref: "main"}, dir, &log)
	if err != nil || c.Hash != first {
		t.Fatalf("first refresh: %v %+v", err, c)
	}
	log.Reset()
	c, err = Refresh(ctxT(t), GitSpec{URL: srv.URL("app"), Ref: "main"}, dir, &log)
	if err != nil || c.Hash != first || !strings.Contains(log.String(), "nothing to fetch") || !strings.Contains(log.String(), "CodeVersion:"+first) {
		t.Fatalf("unchanged refresh: %v %+v\n%s", err, c, log.String())
	}
	second := srv.Commit(work, "two", map[string]string{"a.txt": "2"})
	log.Reset()
	c, err = Refresh(ctxT(t), GitSpec{URL: srv.URL("app"), Ref: "main"}, dir, &log)
	if err != nil || c.Hash != second || strings.Contains(log.String(), "nothing to fetch") {
		t.Fatalf("refresh after a push: %v %+v\n%s", err, c, log.String())
	}
	if got := readFile(t, filepath.Join(dir, "a.txt")); got != "2" {
		t.Errorf("checkout after a push has %q", got)
	}
}

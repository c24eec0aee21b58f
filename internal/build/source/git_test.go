package source

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/cgi"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// gitFixture is a set of bare repositories served over smart HTTP by
// git-http-backend on loopback, the way a Git forge serves them.
type gitFixture struct {
	t    *testing.T
	root string // bare repositories
	work string // scratch clones used to write them
	srv  *httptest.Server
}

func newGitFixture(t *testing.T, user, password string) *gitFixture {
	t.Helper()
	execPath, err := exec.Command("git", "--exec-path").Output()
	if err != nil {
		t.Skip("git is not installed")
	}
	backend := filepath.Join(strings.TrimSpace(string(execPath)), "git-http-backend")
	if _, err := os.Stat(backend); err != nil {
		t.Skip("git-http-backend is not installed")
	}
	f := &gitFixture{t: t, root: t.TempDir(), work: t.TempDir()}
	cgiHandler := &cgi.Handler{
		Path:   backend,
		Stderr: io.Discard,
		Env:    []string{"GIT_PROJECT_ROOT=" + f.root, "GIT_HTTP_EXPORT_ALL=1", "GIT_CONFIG_NOSYSTEM=1", "HOME=" + f.work},
	}
	var h http.Handler = cgiHandler
	if user != "" {
		h = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			u, p, ok := r.BasicAuth()
			if !ok || u != user || p != password {
				w.Header().Set("WWW-Authenticate", `Basic realm="git"`)
				http.Error(w, "Authentication required", http.StatusUnauthorized)
				return
			}
			cgiHandler.ServeHTTP(w, r)
		})
	}
	f.srv = httptest.NewServer(h)
	t.Cleanup(f.srv.Close)
	return f
}

func (f *gitFixture) url(repo string) string { return f.srv.URL + "/" + repo + ".git" }

// git runs a git command for building fixtures, isolated from the machine's
// configuration.
func (f *gitFixture) git(dir string, args ...string) string {
	f.t.Helper()
	cmd := exec.Command("git", args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(),
		"HOME="+f.work, "GIT_CONFIG_NOSYSTEM=1", "GIT_CONFIG_GLOBAL=/dev/null",
		"GIT_AUTHOR_NAME=Ada", "GIT_AUTHOR_EMAIL=ada@example.com",
		"GIT_COMMITTER_NAME=Ada", "GIT_COMMITTER_EMAIL=ada@example.com",
		"GIT_ALLOW_PROTOCOL=file")
	out, err := cmd.CombinedOutput()
	if err != nil {
		f.t.Fatalf("git %v: %v\n%s", args, err, out)
	}
	return strings.TrimSpace(string(out))
}

// repo creates a bare repository name.git with a working copy to write it.
func (f *gitFixture) repo(name string) string {
	bare := filepath.Join(f.root, name+".git")
	f.git(f.root, "init", "-q", "--bare", "-b", "main", bare)
	work := filepath.Join(f.work, name)
	f.git(f.work, "init", "-q", "-b", "main", work)
	f.git(work, "remote", "add", "origin", bare)
	return work
}

func (f *gitFixture) commit(work, file, content, msg string) string {
	if err := os.MkdirAll(filepath.Dir(filepath.Join(work, file)), 0o755); err != nil {
		f.t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(work, file), []byte(content), 0o644); err != nil {
		f.t.Fatal(err)
	}
	f.git(work, "add", "-A")
	f.git(work, "commit", "-q", "-m", msg)
	return f.git(work, "rev-parse", "HEAD")
}

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
	f := newGitFixture(t, "", "")
	work := f.repo("app")
	first := f.commit(work, "main.go", "package main // v1\n", "first version\n\nwith a body")
	f.git(work, "tag", "-a", "v1.0", "-m", "release 1.0")
	second := f.commit(work, "main.go", "package main // v2\n", "second version")
	f.git(work, "checkout", "-q", "-b", "dev")
	dev := f.commit(work, "dev.txt", "dev\n", "on dev")
	f.git(work, "checkout", "-q", "main")
	third := f.commit(work, "main.go", "package main // v3\n", "third version")
	f.git(work, "push", "-q", "origin", "main", "dev", "v1.0")

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
			c, err := Clone(ctxT(t), GitSpec{URL: f.url("app"), Ref: tc.ref}, dir, &log)
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
			if lines[0] != "Start clone source code from "+f.url("app") {
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
		if _, err := Clone(ctxT(t), GitSpec{URL: f.url("app")}, dir, nil); err != nil {
			t.Fatal(err)
		}
		if n := f.git(dir, "rev-list", "--count", "HEAD"); n != "1" {
			t.Fatalf("history has %s commits, want 1", n)
		}
		if branch := f.git(dir, "rev-parse", "--abbrev-ref", "HEAD"); branch != "main" {
			t.Fatalf("checked out %q, want the branch main", branch)
		}
	})
	t.Run("full history", func(t *testing.T) {
		dir := t.TempDir()
		if _, err := Clone(ctxT(t), GitSpec{URL: f.url("app"), Depth: -1}, dir, nil); err != nil {
			t.Fatal(err)
		}
		if n := f.git(dir, "rev-list", "--count", "HEAD"); n != "3" {
			t.Fatalf("history has %s commits, want 3", n)
		}
	})
	t.Run("ref not found lists refs", func(t *testing.T) {
		dir := filepath.Join(t.TempDir(), "src")
		_, err := Clone(ctxT(t), GitSpec{URL: f.url("app"), Ref: "feature-x"}, dir, nil)
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
		_, err := Clone(ctxT(t), GitSpec{URL: f.url("app"), Ref: strings.Repeat("ab", 20)}, t.TempDir(), nil)
		if !errors.Is(err, ErrRefNotFound) {
			t.Fatalf("err = %v, want ErrRefNotFound", err)
		}
	})
	t.Run("directory must be empty", func(t *testing.T) {
		dir := t.TempDir()
		if err := os.WriteFile(filepath.Join(dir, "x"), nil, 0o644); err != nil {
			t.Fatal(err)
		}
		if _, err := Clone(ctxT(t), GitSpec{URL: f.url("app")}, dir, nil); err == nil || !strings.Contains(err.Error(), "not empty") {
			t.Fatalf("err = %v, want a not-empty error", err)
		}
	})
}

func TestCloneSubmodules(t *testing.T) {
	f := newGitFixture(t, "", "")
	lib := f.repo("lib")
	f.commit(lib, "lib.txt", "library\n", "lib")
	f.git(lib, "push", "-q", "origin", "main")
	app := f.repo("withsub")
	f.commit(app, "README", "app\n", "app")
	f.git(app, "-c", "protocol.file.allow=always", "submodule", "add", "-q", filepath.Join(f.root, "lib.git"), "vendor/lib")
	// Relative, as forges recommend: resolved against the superproject's URL.
	f.git(app, "config", "-f", ".gitmodules", "submodule.vendor/lib.url", "../lib.git")
	f.git(app, "add", ".gitmodules")
	f.git(app, "commit", "-q", "-m", "add lib")
	f.git(app, "push", "-q", "origin", "main")

	dir := t.TempDir()
	if _, err := Clone(ctxT(t), GitSpec{URL: f.url("withsub"), Submodules: true}, dir, nil); err != nil {
		t.Fatal(err)
	}
	if got := readFile(t, filepath.Join(dir, "vendor/lib/lib.txt")); got != "library\n" {
		t.Fatalf("submodule content %q", got)
	}

	dir2 := t.TempDir()
	if _, err := Clone(ctxT(t), GitSpec{URL: f.url("withsub")}, dir2, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir2, "vendor/lib/lib.txt")); !os.IsNotExist(err) {
		t.Fatalf("submodule fetched although not asked for")
	}
}

func TestCloneRefusesDangerousSubmodule(t *testing.T) {
	f := newGitFixture(t, "", "")
	secret := f.repo("secret")
	f.commit(secret, "secret.txt", "local only\n", "secret")
	f.git(secret, "push", "-q", "origin", "main")
	app := f.repo("evil")
	f.commit(app, "README", "app\n", "app")
	f.git(app, "-c", "protocol.file.allow=always", "submodule", "add", "-q", filepath.Join(f.root, "secret.git"), "s")
	f.git(app, "commit", "-q", "-m", "add s")
	f.git(app, "push", "-q", "origin", "main")

	// .gitmodules points at a path on the build machine's disk.
	var log bytes.Buffer
	dir := t.TempDir()
	_, err := Clone(ctxT(t), GitSpec{URL: f.url("evil"), Submodules: true}, dir, &log)
	if err == nil {
		t.Fatalf("a submodule on the local disk was cloned:\n%s\n%s", log.String(), f.git(dir, "submodule", "status"))
	}
	if !strings.Contains(err.Error(), "give submodules http(s) or ssh URLs") {
		t.Fatalf("message %q lacks advice", err)
	}
}

func TestCloneAuth(t *testing.T) {
	f := newGitFixture(t, "alice", "s3cret-token")
	work := f.repo("private")
	want := f.commit(work, "index.php", "<?php echo 1;\n", "private")
	f.git(work, "push", "-q", "origin", "main")

	t.Run("right credentials", func(t *testing.T) {
		dir := t.TempDir()
		var log bytes.Buffer
		c, err := Clone(ctxT(t), GitSpec{URL: f.url("private"), Username: "alice", Password: "s3cret-token"}, dir, &log)
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
		u := strings.Replace(f.url("private"), "http://", "http://alice:s3cret-token@", 1)
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
		_, err := Clone(ctxT(t), GitSpec{URL: f.url("private"), Username: "alice", Password: "wrong"}, t.TempDir(), nil)
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
		_, err := Clone(ctxT(t), GitSpec{URL: f.url("private")}, t.TempDir(), nil)
		if !errors.Is(err, ErrAuthRequired) {
			t.Fatalf("err = %v, want ErrAuthRequired", err)
		}
	})
}

func TestCloneNotFoundAndUnreachable(t *testing.T) {
	f := newGitFixture(t, "", "")
	_, err := Clone(ctxT(t), GitSpec{URL: f.url("nope")}, t.TempDir(), nil)
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
	f := newGitFixture(t, "", "")
	f.repo("empty")
	_, err := Clone(ctxT(t), GitSpec{URL: f.url("empty")}, t.TempDir(), nil)
	if !errors.Is(err, ErrEmptyRepo) {
		t.Fatalf("err = %v, want ErrEmptyRepo", err)
	}
}

func TestCloneTimeout(t *testing.T) {
	f := newGitFixture(t, "", "")
	work := f.repo("app")
	f.commit(work, "a", "a", "a")
	f.git(work, "push", "-q", "origin", "main")
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := Clone(ctx, GitSpec{URL: f.url("app")}, t.TempDir(), nil)
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

// Package testgit serves git repositories over smart HTTP from a test, the
// way a git forge does (git http-backend behind net/http/cgi, optionally
// with basic auth), on loopback.
package testgit

import (
	"io"
	"net/http"
	"net/http/cgi"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// Server is a set of bare repositories served over HTTP.
type Server struct {
	t    testing.TB
	root string // bare repositories
	work string // working copies that write them
	srv  *httptest.Server
}

// Serve starts a server; with user set, every request needs basic auth.
// Without git (and its http-backend) the test is skipped, or fails in CI.
func Serve(t testing.TB, user, password string) *Server {
	t.Helper()
	execPath, err := exec.Command("git", "--exec-path").Output()
	backend := filepath.Join(strings.TrimSpace(string(execPath)), "git-http-backend")
	if _, serr := os.Stat(backend); err != nil || serr != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("git and git-http-backend are needed (apt-get install git): %v %v", err, serr)
		}
		t.Skip("git is not installed (apt-get install git)")
	}
	s := &Server{t: t, root: t.TempDir(), work: t.TempDir()}
	backendHandler := &cgi.Handler{Path: backend, Stderr: io.Discard,
		Env: []string{"GIT_PROJECT_ROOT=" + s.root, "GIT_HTTP_EXPORT_ALL=1", "GIT_CONFIG_NOSYSTEM=1", "HOME=" + s.work}}
	var h http.Handler = backendHandler
	if user != "" {
		h = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			u, p, ok := r.BasicAuth()
			if !ok || u != user || p != password {
				w.Header().Set("WWW-Authenticate", `Basic realm="git"`)
				http.Error(w, "Authentication required", http.StatusUnauthorized)
				return
			}
			backendHandler.ServeHTTP(w, r)
		})
	}
	s.srv = httptest.NewServer(h)
	t.Cleanup(s.srv.Close)
	return s
}

// URL is the clone URL of a repository.
func (s *Server) URL(name string) string { return s.srv.URL + "/" + name + ".git" }

// Git runs git in dir, isolated from the machine's configuration.
func (s *Server) Git(dir string, args ...string) string {
	s.t.Helper()
	cmd := exec.Command("git", args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "HOME="+s.work, "GIT_CONFIG_NOSYSTEM=1", "GIT_CONFIG_GLOBAL=/dev/null",
		"GIT_AUTHOR_NAME=Ada", "GIT_AUTHOR_EMAIL=ada@example.com",
		"GIT_COMMITTER_NAME=Ada", "GIT_COMMITTER_EMAIL=ada@example.com", "GIT_ALLOW_PROTOCOL=file")
	out, err := cmd.CombinedOutput()
	if err != nil {
		s.t.Fatalf("git %v: %v\n%s", args, err, out)
	}
	return strings.TrimSpace(string(out))
}

// Repo creates repository name (branch main) and returns its working copy.
func (s *Server) Repo(name string) string {
	s.t.Helper()
	bare := s.Bare(name)
	s.Git(s.root, "init", "-q", "--bare", "-b", "main", bare)
	work := filepath.Join(s.work, name)
	s.Git(s.work, "init", "-q", "-b", "main", work)
	s.Git(work, "remote", "add", "origin", bare)
	return work
}

// Bare is the path of repository name's bare repository, for tests that
// reach it over the file system (a submodule given by path).
func (s *Server) Bare(name string) string { return filepath.Join(s.root, name+".git") }

// Commit writes files (path -> content) into the working copy, commits
// and pushes them, and returns the commit id.
func (s *Server) Commit(work, msg string, files map[string]string) string {
	s.t.Helper()
	id := s.CommitLocal(work, msg, files)
	s.Git(work, "push", "-q", "origin", "HEAD:main")
	return id
}

// CommitLocal is Commit without the push, for a history of several
// branches and tags that the test pushes at once.
func (s *Server) CommitLocal(work, msg string, files map[string]string) string {
	s.t.Helper()
	for p, content := range files {
		full := filepath.Join(work, p)
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			s.t.Fatal(err)
		}
		if err := os.WriteFile(full, []byte(content), 0o644); err != nil {
			s.t.Fatal(err)
		}
	}
	s.Git(work, "add", "-A")
	s.Git(work, "commit", "-q", "-m", msg)
	return s.Git(work, "rev-parse", "HEAD")
}

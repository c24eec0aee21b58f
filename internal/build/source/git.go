package source

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os/exec"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/berth-platform/berth/internal/model"
	"github.com/berth-platform/berth/internal/netguard"
)

// GitSpec says what to clone.
type GitSpec struct {
	URL string
	// Ref is a branch, a tag or a commit hash (full or at least 4 hex
	// digits); empty means the repository's default branch. "tag:v1" and
	// "refs/tags/v1" force a tag where a branch has the same name.
	Ref      string
	Username string
	// Password is a password or an access token. With a password and no
	// Username, "oauth2" is sent, which GitHub, GitLab and Gitea accept for
	// tokens.
	Password   string
	SSHKey     []byte // a private key in OpenSSH or PEM form, for ssh addresses
	Submodules bool
	// Depth is the history depth; 0 means 1 (a shallow clone), a negative
	// value the full history.
	Depth int
	// Guard refuses repository and submodule hosts that are the host's or
	// berth's own addresses, checked right before git connects; nil checks
	// nothing (tests cloning from loopback). The worker always sets it.
	Guard *netguard.Policy
}

// Commit is the checked-out commit.
type Commit struct {
	Hash    string
	Author  string
	Message string // the whole message; the log shows its first line
	Time    time.Time
}

// GitSpecFromSource maps a component's source to a clone, choosing the most
// precise of commit, tag and branch. Credentials are not part of the model
// and are added by the caller.
func GitSpecFromSource(s model.Source) GitSpec {
	spec := GitSpec{URL: s.URL, Ref: s.Branch}
	switch {
	case s.Commit != "":
		spec.Ref = s.Commit
	case s.Tag != "":
		spec.Ref = "refs/tags/" + strings.TrimPrefix(s.Tag, "refs/tags/")
	}
	return spec
}

var hexRe = regexp.MustCompile(`^[0-9a-fA-F]{4,64}$`)

// Clone fetches spec into dir (which must be absent or empty) with the git
// CLI and checks out the wanted ref. It writes Rainbond's stage lines and
// git's own messages to log. On failure dir is left empty and the error is
// a *GitError (or *InvalidURLError) saying what to fix.
func Clone(ctx context.Context, spec GitSpec, dir string, log io.Writer) (Commit, error) {
	c, err := newCloner(ctx, spec, dir, log)
	if err != nil {
		return Commit{}, err
	}
	defer c.env.close()
	created, err := prepareEmptyDir(dir)
	if err != nil {
		return Commit{}, err
	}
	commit, err := c.clone(ctx)
	if err != nil {
		emptyDir(dir, created)
		slog.Info("clone failed", "url", c.redacted, "ref", spec.Ref, "err", err)
		return Commit{}, err
	}
	c.logVersion(commit)
	return commit, nil
}

// logVersion writes Rainbond's line that names the checked-out commit.
func (c *cloner) logVersion(commit Commit) {
	subject, _, _ := strings.Cut(commit.Message, "\n")
	fmt.Fprintf(c.log, "CodeVersion:%s Author:%s Commit:%s\n", commit.Hash, commit.Author, subject)
}

// newCloner checks the URL, says where the code comes from, and prepares
// git's environment with the credentials; close c.env when done.
func newCloner(ctx context.Context, spec GitSpec, dir string, log io.Writer) (*cloner, error) {
	if log == nil {
		log = io.Discard
	}
	r, err := parseRemote(spec.URL)
	if err != nil {
		return nil, err
	}
	redacted := RedactURL(spec.URL)
	fmt.Fprintf(log, "Start clone source code from %s\n", redacted)

	user, password := spec.Username, spec.Password
	if user == "" {
		user = r.user
	}
	if password == "" {
		password = r.password
	}
	if password != "" && user == "" {
		user = "oauth2"
	}
	if r.scheme == "ssh" || r.scheme == "scp" {
		password = "" // ssh authenticates with keys only
	}
	env, err := newGitEnv(r, user, password, spec.SSHKey)
	if err != nil {
		return nil, err
	}
	c := &cloner{spec: spec, remote: r, redacted: redacted, dir: dir, env: env, log: log}
	if err := c.pinRemote(ctx, r); err != nil {
		env.close()
		return nil, err
	}
	return c, nil
}

type cloner struct {
	spec     GitSpec
	remote   remote
	redacted string
	dir      string
	env      *gitEnv
	log      io.Writer
	// config is git -c options for every command: the checked addresses
	// of the hosts it may connect to.
	config []string
}

// remoteRefs is what ls-remote reported.
type remoteRefs struct {
	refs map[string]string // full ref name -> hash (tags peeled when annotated)
	head string            // the ref HEAD points to, if advertised
}

func (c *cloner) clone(ctx context.Context) (Commit, error) {
	depth := c.spec.Depth
	if depth == 0 {
		depth = 1
	}
	if _, err := c.git(ctx, false, "init", "-q", "."); err != nil {
		return Commit{}, err
	}
	if _, err := c.git(ctx, false, "remote", "add", "origin", c.remote.url); err != nil {
		return Commit{}, err
	}
	// ls-remote first: it fails fast on a wrong address or credentials and
	// tells whether the ref is a branch, a tag, or neither.
	out, err := c.git(ctx, true, "ls-remote", "--symref", "origin")
	if err != nil {
		return Commit{}, err
	}
	refs := parseLsRemote(out)
	if len(refs.refs) == 0 {
		return Commit{}, &GitError{Kind: ErrEmptyRepo, URL: c.redacted, Advice: adviceEmpty}
	}
	full, isCommit, err := c.resolve(refs)
	if err != nil {
		return Commit{}, err
	}
	var checkout []string
	switch {
	case isCommit:
		if err := c.fetchCommit(ctx, full, depth); err != nil {
			return Commit{}, err
		}
		checkout = []string{"checkout", "-q", "--detach", full + "^{commit}"}
	case strings.HasPrefix(full, "refs/heads/"):
		branch := strings.TrimPrefix(full, "refs/heads/")
		if err := c.fetch(ctx, depth, "+"+full+":refs/remotes/origin/"+branch); err != nil {
			return Commit{}, err
		}
		checkout = []string{"checkout", "-q", "-B", branch, "refs/remotes/origin/" + branch}
	default:
		if err := c.fetch(ctx, depth, "+"+full+":"+full); err != nil {
			return Commit{}, err
		}
		checkout = []string{"checkout", "-q", "--detach", full + "^{commit}"}
	}
	if _, err := c.git(ctx, false, checkout...); err != nil {
		return Commit{}, err
	}
	if c.spec.Submodules {
		if err := c.submodules(ctx, depth); err != nil {
			return Commit{}, err
		}
	}
	return c.head(ctx)
}

// resolve finds the full ref name for spec.Ref, or reports it as a commit.
func (c *cloner) resolve(refs remoteRefs) (string, bool, error) {
	ref := c.spec.Ref
	switch {
	case ref == "":
		if refs.head != "" {
			return refs.head, false, nil
		}
		// Old servers do not advertise HEAD's target: guess as git does.
		for _, name := range []string{"refs/heads/main", "refs/heads/master"} {
			if _, ok := refs.refs[name]; ok {
				return name, false, nil
			}
		}
		if names := refs.names(1); len(names) > 0 && !strings.HasPrefix(names[0], "tag:") {
			return "refs/heads/" + names[0], false, nil
		}
	case strings.HasPrefix(ref, "refs/"):
		if _, ok := refs.refs[ref]; ok {
			return ref, false, nil
		}
	case strings.HasPrefix(ref, "tag:"):
		if name := "refs/tags/" + strings.TrimPrefix(ref, "tag:"); refs.refs[name] != "" {
			return name, false, nil
		}
	default:
		for _, name := range []string{"refs/heads/" + ref, "refs/tags/" + ref} {
			if _, ok := refs.refs[name]; ok {
				return name, false, nil
			}
		}
		if hexRe.MatchString(ref) {
			return strings.ToLower(ref), true, nil
		}
	}
	return "", false, &GitError{Kind: ErrRefNotFound, URL: c.redacted, Ref: ref,
		Available: refs.names(20), Advice: adviceRef + refs.listAdvice(20)}
}

// fetchCommit asks for one commit. Servers that do not allow fetching an
// unadvertised object (uploadpack.allowReachableSHA1InWant off, protocol v0)
// refuse, and short hashes cannot be asked for at all: then the whole
// history comes and the commit is looked up locally.
func (c *cloner) fetchCommit(ctx context.Context, hash string, depth int) error {
	if len(hash) == 40 || len(hash) == 64 {
		err := c.fetch(ctx, depth, hash)
		if err == nil {
			return nil
		}
		var ge *GitError
		if errors.As(err, &ge) && ge.Kind != ErrRefNotFound && ge.Kind != ErrGit {
			return err // the network or the credentials, not the commit
		}
		fmt.Fprintf(c.log, "The server does not serve commit %s directly; fetching the full history\n", hash)
	}
	if err := c.fetch(ctx, -1, "+refs/heads/*:refs/remotes/origin/*", "+refs/tags/*:refs/tags/*"); err != nil {
		return err
	}
	if _, err := c.git(ctx, false, "rev-parse", "--verify", "--quiet", hash+"^{commit}"); err != nil {
		return &GitError{Kind: ErrRefNotFound, URL: c.redacted, Ref: hash,
			Advice: "No commit with this hash is reachable from the repository's branches and tags; check the hash"}
	}
	return nil
}

func (c *cloner) fetch(ctx context.Context, depth int, refspecs ...string) error {
	args := []string{"fetch", "--no-tags", "--no-write-fetch-head"}
	if depth > 0 {
		args = append(args, "--depth", strconv.Itoa(depth))
	}
	args = append(args, "origin")
	args = append(args, refspecs...)
	_, err := c.git(ctx, true, args...)
	var ge *GitError
	if depth > 0 && errors.As(err, &ge) && strings.Contains(ge.Detail, "does not support shallow") {
		// A "dumb" HTTP server (static files) cannot send part of the
		// history; take all of it.
		fmt.Fprintln(c.log, "The server cannot send a shallow clone; fetching the full history")
		return c.fetch(ctx, -1, refspecs...)
	}
	return err
}

func (c *cloner) head(ctx context.Context) (Commit, error) {
	out, err := c.git(ctx, false, "log", "-1", "--format=%H%x1f%an%x1f%at%x1f%B")
	if err != nil {
		return Commit{}, err
	}
	parts := strings.SplitN(out, "\x1f", 4)
	if len(parts) != 4 {
		return Commit{}, &GitError{Kind: ErrGit, URL: c.redacted, Detail: "cannot read the checked-out commit"}
	}
	secs, _ := strconv.ParseInt(parts[2], 10, 64)
	return Commit{
		Hash:    parts[0],
		Author:  parts[1],
		Time:    time.Unix(secs, 0).UTC(),
		Message: strings.TrimSpace(parts[3]),
	}, nil
}

// git runs one git command in the clone directory. network says whether
// a failure should be classified from git's message (remote operations) or
// reported as a plain local failure.
func (c *cloner) git(ctx context.Context, network bool, args ...string) (string, error) {
	return c.gitIn(ctx, c.dir, network, args...)
}

// gitIn is git in another directory of the checkout (a submodule's).
func (c *cloner) gitIn(ctx context.Context, dir string, network bool, args ...string) (string, error) {
	full := append([]string{
		"-c", "credential.helper=",
		"-c", "init.defaultBranch=main",
		"-c", "advice.detachedHead=false",
		"-c", "http.lowSpeedLimit=1000",
		"-c", "http.lowSpeedTime=60",
	}, c.config...)
	full = append(full, args...)
	cmd := exec.CommandContext(ctx, "git", full...)
	cmd.Dir = dir
	cmd.Env = c.env.env
	var stdout bytes.Buffer
	stderr := &tailBuffer{max: 16 << 10}
	cmd.Stdout = &stdout
	cmd.Stderr = io.MultiWriter(stderr, &lineWriter{w: c.log})
	// git starts helpers (git-remote-https, ssh): kill the whole group.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = 5 * time.Second
	err := cmd.Run()
	if err == nil {
		return stdout.String(), nil
	}
	if ctx.Err() != nil {
		return "", &GitError{Kind: ErrCloneTimeout, URL: c.redacted, Ref: c.spec.Ref,
			Detail: lastLines(stderr.String(), 3), Advice: adviceTimeout, Err: ctx.Err()}
	}
	if !network {
		return "", &GitError{Kind: ErrGit, URL: c.redacted, Ref: c.spec.Ref,
			Detail: "git " + args[0] + ": " + lastLines(stderr.String(), 3), Err: err}
	}
	return "", classify(stderr.String(), c.redacted, c.spec.Ref, c.env.hadCredentials, err)
}

func parseLsRemote(out string) remoteRefs {
	r := remoteRefs{refs: map[string]string{}}
	for _, line := range strings.Split(out, "\n") {
		hash, name, ok := strings.Cut(strings.TrimSpace(line), "\t")
		if !ok {
			continue
		}
		if target, isSym := strings.CutPrefix(hash, "ref: "); isSym {
			if name == "HEAD" {
				r.head = target
			}
			continue
		}
		if base, peeled := strings.CutSuffix(name, "^{}"); peeled {
			r.refs[base] = hash
			continue
		}
		if _, seen := r.refs[name]; !seen {
			r.refs[name] = hash
		}
	}
	return r
}

// names lists branches then tags, short names, at most n.
func (r remoteRefs) names(n int) []string {
	var branches, tags []string
	for name := range r.refs {
		if b, ok := strings.CutPrefix(name, "refs/heads/"); ok {
			branches = append(branches, b)
		} else if t, ok := strings.CutPrefix(name, "refs/tags/"); ok {
			tags = append(tags, "tag:"+t)
		}
	}
	sort.Strings(branches)
	sort.Strings(tags)
	all := append(branches, tags...)
	if len(all) > n {
		all = all[:n]
	}
	return all
}

func (r remoteRefs) listAdvice(n int) string {
	names := r.names(n)
	if len(names) == 0 {
		return ""
	}
	more := ""
	if len(r.refs) > n {
		more = ", ..."
	}
	return "; the repository has: " + strings.Join(names, ", ") + more
}

// tailBuffer keeps the last max bytes written: enough to classify a
// failure without holding a long progress stream in memory.
type tailBuffer struct {
	buf []byte
	max int
}

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.buf = append(t.buf, p...)
	if len(t.buf) > t.max {
		t.buf = append([]byte{}, t.buf[len(t.buf)-t.max:]...)
	}
	return len(p), nil
}

func (t *tailBuffer) String() string { return string(t.buf) }

// lineWriter forwards whole lines to the build log; git redraws progress
// with carriage returns, which only the last state of is worth keeping.
type lineWriter struct {
	w       io.Writer
	partial []byte
}

func (l *lineWriter) Write(p []byte) (int, error) {
	l.partial = append(l.partial, p...)
	for {
		i := bytes.IndexAny(l.partial, "\r\n")
		if i < 0 {
			break
		}
		line := l.partial[:i]
		sep := l.partial[i]
		l.partial = l.partial[i+1:]
		if sep == '\n' && len(bytes.TrimSpace(line)) > 0 {
			_, _ = fmt.Fprintf(l.w, "%s\n", line)
		}
	}
	return len(p), nil
}

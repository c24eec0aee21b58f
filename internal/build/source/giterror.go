package source

import (
	"errors"
	"fmt"
	"strings"
)

// Kinds of clone failure. The texts are Rainbond's, so its troubleshooting
// guide applies to berth's build logs word for word; errors.Is matches them.
var (
	ErrRepoNotFound    = errors.New("Pull code error, repository not found")
	ErrAuthRequired    = errors.New("Pull code error, authentication required")
	ErrAuthFailed      = errors.New("Pull code error, authorization failed")
	ErrSSHKeyRequired  = errors.New("Remote repository requires SSH key configuration")
	ErrEmptyRepo       = errors.New("Pull code error, empty remote repository")
	ErrRefNotFound     = errors.New("Code branch does not exist")
	ErrHostUnreachable = errors.New("Pull code error, host unreachable")
	ErrCloneTimeout    = errors.New("Pull code timeout")
	ErrGit             = errors.New("Pull code error")
)

// GitError is a failed clone, classified so the user gets advice instead of
// git's raw output (which is kept in Detail for the curious).
type GitError struct {
	Kind      error  // one of the Err* values above
	URL       string // redacted
	Ref       string
	Detail    string   // the last lines git printed
	Available []string // for ErrRefNotFound: some branches and tags that do exist
	Advice    string
	Err       error // the underlying failure (exit status, context error)
}

func (e *GitError) Error() string {
	var b strings.Builder
	b.WriteString(e.Kind.Error())
	if e.Kind == ErrRefNotFound && e.Ref != "" {
		fmt.Fprintf(&b, ": %q does not exist in %s", e.Ref, e.URL)
	} else if e.URL != "" {
		fmt.Fprintf(&b, ": %s", e.URL)
	}
	if e.Detail != "" {
		fmt.Fprintf(&b, " (git: %s)", e.Detail)
	}
	if e.Advice != "" {
		b.WriteString(". ")
		b.WriteString(e.Advice)
	}
	return b.String()
}

// Unwrap exposes both the kind (for errors.Is) and the cause.
func (e *GitError) Unwrap() []error {
	if e.Err == nil {
		return []error{e.Kind}
	}
	return []error{e.Kind, e.Err}
}

// pattern maps git's (LC_ALL=C) messages to a kind. Order matters: the first
// match wins, and the more specific messages come first.
type pattern struct {
	needle string
	kind   error
	advice string
}

const (
	adviceNotFound = "Check the repository address. A private repository may also answer \"not found\" " +
		"when no or wrong credentials are given: set the user name and password (or access token)"
	adviceAuthRequired = "The repository is private: set a user name and password or an access token " +
		"for http(s) addresses, or an SSH private key for ssh addresses"
	adviceAuthFailed = "The credentials were refused: check the user name and password (or token), " +
		"and that the token may read this repository"
	adviceSSHKey = "The server refused the SSH key: add the key's public half as a deploy key of the " +
		"repository (read access), or use an https address with a token"
	adviceUnreachable = "Check the host name and that the build machine can reach it (DNS, firewall, proxy); " +
		"a clone that stays at \"Start clone source code from\" is waiting on the network for the same reason"
	adviceTLS = "The server's TLS certificate is not trusted by the build machine: install its CA " +
		"certificate on the build machine, or use a certificate from a public CA"
	adviceTransport = "A submodule's URL uses a transport berth refuses (a local path, file:// or ext::): " +
		"give submodules http(s) or ssh URLs, or relative ones such as ../lib.git"
	adviceEmpty   = "The repository has no commits yet: push at least one commit and build again"
	adviceRef     = "Check the branch, tag or commit name"
	adviceTimeout = "Fetching the code took too long: check the network between the build machine and the " +
		"repository host, or reduce the repository's size"
)

var gitPatterns = []pattern{
	{"Permission denied (publickey", ErrSSHKeyRequired, adviceSSHKey},
	{"Host key verification failed", ErrHostUnreachable, "The host's SSH key could not be verified"},
	{"Authentication failed", ErrAuthFailed, adviceAuthFailed},
	{"Invalid username or password", ErrAuthFailed, adviceAuthFailed},
	{"HTTP Basic: Access denied", ErrAuthFailed, adviceAuthFailed},
	{"could not read Username", ErrAuthRequired, adviceAuthRequired},
	{"could not read Password", ErrAuthRequired, adviceAuthRequired},
	{"returned error: 401", ErrAuthRequired, adviceAuthRequired},
	{"returned error: 403", ErrAuthFailed, adviceAuthFailed},
	{"Repository not found", ErrRepoNotFound, adviceNotFound},
	{"' not found", ErrRepoNotFound, adviceNotFound},
	{"returned error: 404", ErrRepoNotFound, adviceNotFound},
	{"does not appear to be a git repository", ErrRepoNotFound, adviceNotFound},
	{"could not be found", ErrRepoNotFound, adviceNotFound},
	{"couldn't find remote ref", ErrRefNotFound, adviceRef},
	{"not our ref", ErrRefNotFound, adviceRef},
	{"SSL certificate problem", ErrHostUnreachable, adviceTLS},
	{"server certificate verification failed", ErrHostUnreachable, adviceTLS},
	{"Could not resolve host", ErrHostUnreachable, adviceUnreachable},
	{"Could not resolve hostname", ErrHostUnreachable, adviceUnreachable},
	{"Name or service not known", ErrHostUnreachable, adviceUnreachable},
	{"Temporary failure in name resolution", ErrHostUnreachable, adviceUnreachable},
	{"Connection refused", ErrHostUnreachable, adviceUnreachable},
	{"Connection timed out", ErrHostUnreachable, adviceUnreachable},
	{"No route to host", ErrHostUnreachable, adviceUnreachable},
	{"Network is unreachable", ErrHostUnreachable, adviceUnreachable},
	{"Failed to connect to", ErrHostUnreachable, adviceUnreachable},
	{"Connection reset", ErrHostUnreachable, adviceUnreachable},
	{"Operation too slow", ErrCloneTimeout, adviceTimeout},
	{"empty repository", ErrEmptyRepo, adviceEmpty},
	{"transport '", ErrGit, adviceTransport},
}

// classify turns git's stderr into a GitError. hadCredentials separates
// "you must log in" from "your login was refused", which git words alike.
func classify(stderr string, url, ref string, hadCredentials bool, cause error) *GitError {
	e := &GitError{Kind: ErrGit, URL: url, Ref: ref, Detail: lastLines(stderr, 3), Err: cause,
		Advice: "Read git's message above; if it names the network, check that the build machine reaches the repository host"}
	for _, p := range gitPatterns {
		if strings.Contains(stderr, p.needle) {
			// The matching line says more than git's closing boilerplate
			// ("Could not read from remote repository...").
			e.Kind, e.Advice, e.Detail = p.kind, p.advice, lineWith(stderr, p.needle)
			break
		}
	}
	if e.Kind == ErrAuthRequired && hadCredentials {
		e.Kind, e.Advice = ErrAuthFailed, adviceAuthFailed
	}
	if e.Kind == ErrAuthFailed && !hadCredentials {
		e.Kind, e.Advice = ErrAuthRequired, adviceAuthRequired
	}
	return e
}

func lastLines(s string, n int) string {
	var keep []string
	for _, l := range strings.Split(strings.TrimSpace(s), "\n") {
		l = strings.TrimSpace(strings.ReplaceAll(l, "\r", ""))
		if l != "" {
			keep = append(keep, l)
		}
	}
	if len(keep) > n {
		keep = keep[len(keep)-n:]
	}
	return strings.Join(keep, "; ")
}

func lineWith(s, needle string) string {
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, needle) {
			return strings.TrimSpace(strings.ReplaceAll(l, "\r", ""))
		}
	}
	return lastLines(s, 3)
}

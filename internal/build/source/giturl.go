package source

import (
	"fmt"
	"net/url"
	"regexp"
	"strings"

	"github.com/berth-platform/berth/internal/model"
)

// InvalidURLError says why a repository address was refused and how to
// write one that berth accepts.
type InvalidURLError struct {
	URL    string // redacted
	Reason string
	Hint   string
}

func (e *InvalidURLError) Error() string {
	return fmt.Sprintf("invalid repository URL %q: %s; %s", e.URL, e.Reason, e.Hint)
}

// Unwrap lets the API answer 400 through model's validation type without
// knowing this package.
func (e *InvalidURLError) Unwrap() error {
	return &model.ValidationError{Field: "source.url", Rule: e.Reason + "; " + e.Hint}
}

const urlHint = "use https://host/owner/repo.git, http://host/owner/repo.git, ssh://git@host/owner/repo.git or git@host:owner/repo.git"

// remote is a validated repository address split into what git may see and
// what it must not: credentials never travel inside the URL given to git.
type remote struct {
	scheme   string // https, http, ssh, or "scp" for git@host:path
	url      string // the address handed to git, without credentials
	host     string // host[:port] as written, for scoping credentials
	user     string // from the URL, if any
	password string // from the URL, if any
}

var (
	// Host names are restricted to what DNS and IP literals need, which also
	// keeps them safe to embed in the askpass script and ssh arguments.
	hostRe    = regexp.MustCompile(`^(?:[A-Za-z0-9](?:[A-Za-z0-9.-]*[A-Za-z0-9])?|\[[0-9A-Fa-f:.]+\])(?::[0-9]{1,5})?$`)
	scpRe     = regexp.MustCompile(`^([A-Za-z0-9._~+-]+)@([A-Za-z0-9](?:[A-Za-z0-9.-]*[A-Za-z0-9])?|\[[0-9A-Fa-f:.]+\]):(.+)$`)
	helperRe  = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9+.-]*::`)
	schemeRe  = regexp.MustCompile(`^([A-Za-z][A-Za-z0-9+.-]*)://`)
	sshUserRe = regexp.MustCompile(`^[A-Za-z0-9._~+-]+$`)
)

// ValidateGitURL checks an address before git ever sees it. Git accepts far
// more than a platform should (local paths, file://, remote helpers such as
// ext:: that run commands, arguments that look like options), so only the
// network forms are let through.
func ValidateGitURL(raw string) error {
	_, err := parseRemote(raw)
	return err
}

func parseRemote(raw string) (remote, error) {
	bad := func(reason string) (remote, error) {
		return remote{}, &InvalidURLError{URL: RedactURL(raw), Reason: reason, Hint: urlHint}
	}
	if strings.TrimSpace(raw) == "" {
		return bad("the address is empty")
	}
	if strings.HasPrefix(raw, "-") {
		return bad("the address starts with '-', which git would read as an option")
	}
	if helperRe.MatchString(raw) {
		return bad("remote helpers such as ext:: are not allowed: they can run commands on the build machine")
	}
	for _, r := range raw {
		if r < 0x20 || r == 0x7f || r == ' ' || r == '\t' {
			return bad("the address contains spaces or control characters")
		}
	}
	if m := schemeRe.FindStringSubmatch(raw); m != nil {
		return parseSchemeURL(raw, strings.ToLower(m[1]), bad)
	}
	if m := scpRe.FindStringSubmatch(raw); m != nil {
		user, host, p := m[1], m[2], m[3]
		if strings.HasPrefix(user, "-") || strings.HasPrefix(p, "-") {
			return bad("a part of the address starts with '-', which ssh or git would read as an option")
		}
		return remote{scheme: "scp", url: raw, host: host, user: user}, nil
	}
	if strings.HasPrefix(raw, "/") || strings.HasPrefix(raw, ".") || strings.HasPrefix(raw, "~") || strings.Contains(raw, `\`) {
		return bad("local paths are not allowed; give the address of a hosted repository")
	}
	return bad("the address is neither a URL with a scheme nor of the form git@host:path")
}

func parseSchemeURL(raw, scheme string, bad func(string) (remote, error)) (remote, error) {
	switch scheme {
	case "https", "http", "ssh":
	case "file":
		return bad("file:// addresses read the build machine's own disk and are not allowed")
	default:
		return bad(fmt.Sprintf("the scheme %q is not supported", scheme))
	}
	u, err := url.Parse(raw)
	if err != nil {
		return bad("the URL cannot be parsed: " + errText(err))
	}
	if u.Host == "" {
		return bad("the URL has no host")
	}
	if !hostRe.MatchString(u.Host) {
		return bad(fmt.Sprintf("the host %q is not a valid host name or address", u.Host))
	}
	if u.Path == "" || u.Path == "/" {
		return bad("the URL names no repository path")
	}
	if strings.HasPrefix(u.Path, "/-") {
		return bad("the repository path starts with '-', which git would read as an option")
	}
	if u.Fragment != "" {
		return bad("the URL has a #fragment; give the branch, tag or commit separately")
	}
	r := remote{scheme: scheme, host: u.Host}
	if u.User != nil {
		r.user = u.User.Username()
		r.password, _ = u.User.Password()
	}
	if scheme == "ssh" {
		if r.password != "" {
			return bad("ssh addresses cannot carry a password; use an SSH key")
		}
		if r.user != "" && (!sshUserRe.MatchString(r.user) || strings.HasPrefix(r.user, "-")) {
			return bad("the ssh user name is not valid")
		}
		// ssh needs the user in the address; it is not a secret.
		return remote{scheme: scheme, url: raw, host: u.Host, user: r.user}, nil
	}
	clean := *u
	clean.User = nil
	r.url = clean.String()
	return r, nil
}

// RedactURL hides credentials in an address so that it can be logged. An
// http(s) user name alone is hidden too: tokens are often given that way.
func RedactURL(raw string) string {
	m := schemeRe.FindStringSubmatch(raw)
	if m == nil {
		return raw
	}
	u, err := url.Parse(raw)
	if err != nil || u.User == nil {
		if err != nil {
			// Unparseable but possibly holding credentials: cut everything
			// between the scheme and the last '@' of the authority.
			rest := raw[len(m[0]):]
			auth, _, _ := strings.Cut(rest, "/")
			if i := strings.LastIndex(auth, "@"); i >= 0 {
				return m[0] + "***@" + rest[i+1:]
			}
		}
		return raw
	}
	if _, hasPass := u.User.Password(); hasPass {
		u.User = url.UserPassword(u.User.Username(), "xxxxx")
	} else if strings.EqualFold(m[1], "ssh") {
		return raw
	} else {
		u.User = url.User("xxxxx")
	}
	return u.String()
}

func errText(err error) string {
	// url.Error repeats the whole URL, which may hold a password.
	if ue, ok := err.(*url.Error); ok {
		return ue.Err.Error()
	}
	return err.Error()
}

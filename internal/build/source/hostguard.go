package source

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/berth-platform/berth/internal/netguard"
)

// ErrHostNotAllowed is a clone refused before git ran: the repository's
// host is one berth's own host must not be made to connect to.
var ErrHostNotAllowed = errors.New("Pull code error, repository host not allowed")

// useClone names what a clone connects to, for the guard's message.
const useClone = "git repository"

// defaultPort is where git connects when the address names no port.
func (r remote) defaultPort() string {
	switch r.scheme {
	case "https":
		return "443"
	case "http":
		return "80"
	default:
		return "22"
	}
}

// CheckRemoteHost refuses a repository address whose host is, or resolves
// to, an address guard forbids (the host's loopback, its own addresses,
// berth's networks): the clone runs on berth's host. An address berth
// does not accept at all, or a name that does not resolve, is left to
// ValidateGitURL and the clone to explain.
func CheckRemoteHost(ctx context.Context, guard *netguard.Policy, raw string) error {
	r, err := parseRemote(raw)
	if err != nil {
		return nil
	}
	_, err = guard.CheckHost(ctx, useClone, r.host, r.defaultPort())
	if _, ok := err.(*netguard.HostError); ok {
		return err
	}
	return nil
}

// pinRemote checks the remote's host right before the clone and makes git
// connect to the addresses checked, not to what a second look-up might
// answer: curl gets them as its resolve list and ssh as its HostName.
// Redirects are not followed, since curl would resolve another host
// itself.
func (c *cloner) pinRemote(ctx context.Context, r remote) error {
	if c.spec.Guard == nil {
		return nil
	}
	addrs, err := c.spec.Guard.CheckHost(ctx, useClone, r.host, r.defaultPort())
	if err != nil {
		return c.refused(err)
	}
	c.config = append(c.config, "-c", "http.followRedirects=false")
	host := hostOnly(r.host)
	if _, err := netip.ParseAddr(strings.Trim(host, "[]")); err == nil || len(addrs) == 0 {
		return nil // an address is dialled as checked
	}
	if r.scheme == "ssh" || r.scheme == "scp" {
		c.env.pinSSH(addrs[0].Addr().String())
		return nil
	}
	ips := make([]string, len(addrs))
	for i, a := range addrs {
		ips[i] = a.Addr().String()
		if a.Addr().Is6() {
			ips[i] = "[" + ips[i] + "]"
		}
	}
	port := r.defaultPort()
	if _, p, err := net.SplitHostPort(r.host); err == nil {
		port = p
	}
	c.config = append(c.config, "-c", "http.curloptResolve="+host+":"+port+":"+strings.Join(ips, ","))
	return nil
}

// refused turns the guard's refusal into the clone's error type, so the
// build log and the task say it as they say any clone failure.
func (c *cloner) refused(err error) error {
	if he, ok := err.(*netguard.HostError); ok {
		return &GitError{Kind: ErrHostNotAllowed, URL: c.redacted, Advice: he.Error(), Err: he}
	}
	return nil // a look-up failure: git reports it better
}

func hostOnly(hostport string) string {
	if h, _, err := net.SplitHostPort(hostport); err == nil {
		return h
	}
	return hostport
}

// pinSSH makes ssh connect to addr whatever the host name resolves to now.
func (g *gitEnv) pinSSH(addr string) {
	for i, kv := range g.env {
		if strings.HasPrefix(kv, "GIT_SSH_COMMAND=") {
			g.env[i] = kv + " -o HostName=" + shellQuote(addr)
		}
	}
}

// maxSubmoduleLevels bounds how deep submodules of submodules go.
const maxSubmoduleLevels = 8

// submodules checks out the submodules. Their URLs come from the
// repository, i.e. from whoever wrote it, so with a guard they are
// checked level by level, each right before git fetches it.
func (c *cloner) submodules(ctx context.Context, depth int) error {
	var shallow []string
	if depth > 0 {
		shallow = []string{"--depth", strconv.Itoa(depth)}
	}
	if c.spec.Guard == nil {
		_, err := c.git(ctx, true, append([]string{"submodule", "update", "--init", "--recursive"}, shallow...)...)
		return err
	}
	return c.submoduleLevel(ctx, c.dir, shallow, 0)
}

func (c *cloner) submoduleLevel(ctx context.Context, dir string, shallow []string, level int) error {
	urls := c.gitmodules(ctx, dir, "url")
	if len(urls) == 0 {
		return nil
	}
	if level >= maxSubmoduleLevels {
		return &GitError{Kind: ErrGit, URL: c.redacted, Advice: fmt.Sprintf("submodules nest deeper than %d levels", maxSubmoduleLevels)}
	}
	for _, u := range urls {
		if strings.HasPrefix(u, "./") || strings.HasPrefix(u, "../") {
			continue // on the host of the repository that names it, checked already
		}
		r, err := parseRemote(u)
		if err != nil {
			return &GitError{Kind: ErrGit, URL: c.redacted, Advice: "a submodule's address is not one berth clones from: " + err.Error(), Err: err}
		}
		if err := c.pinSubmodule(ctx, r); err != nil {
			return err
		}
	}
	if _, err := c.gitIn(ctx, dir, true, append([]string{"submodule", "update", "--init"}, shallow...)...); err != nil {
		return err
	}
	for _, p := range c.gitmodules(ctx, dir, "path") {
		sub := filepath.Join(dir, p)
		if fi, err := os.Lstat(sub); !filepath.IsLocal(p) || err != nil || !fi.IsDir() {
			continue // not a checked-out submodule, or a link out of the tree
		}
		if err := c.submoduleLevel(ctx, sub, shallow, level+1); err != nil {
			return err
		}
	}
	return nil
}

// pinSubmodule checks a submodule's host as pinRemote checks the
// repository's, and pins an http(s) one (ssh pins only the main host).
func (c *cloner) pinSubmodule(ctx context.Context, r remote) error {
	saved := c.env
	c.env = &gitEnv{}
	defer func() { c.env = saved }()
	return c.pinRemote(ctx, r)
}

// gitmodules lists one key (url, path) of every submodule .gitmodules in
// dir names; none when there is no such file.
func (c *cloner) gitmodules(ctx context.Context, dir, key string) []string {
	out, err := c.gitIn(ctx, dir, false, "config", "-f", ".gitmodules", "--get-regexp", `^submodule\..*\.`+key+`$`)
	if err != nil {
		return nil
	}
	var vals []string
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		if _, v, ok := strings.Cut(line, " "); ok && v != "" {
			vals = append(vals, v)
		}
	}
	return vals
}

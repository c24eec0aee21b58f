package source

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
)

// Refresh brings a checkout kept from an earlier build up to spec. When
// the branch or tag still points at the commit checked out, nothing is
// fetched: one ls-remote, so that rebuilding unchanged code costs no
// clone. Otherwise, and for pinned commits, submodules or a directory that
// is not a checkout of this URL, it clones afresh. The log lines are
// Clone's.
func Refresh(ctx context.Context, spec GitSpec, dir string, log io.Writer) (Commit, error) {
	if !spec.Submodules && !hexRe.MatchString(spec.Ref) {
		if commit, ok := refreshInPlace(ctx, spec, dir, log); ok {
			return commit, nil
		}
	}
	if err := os.RemoveAll(dir); err != nil {
		return Commit{}, err
	}
	return Clone(ctx, spec, dir, log)
}

// refreshInPlace reports whether dir already holds what spec names.
func refreshInPlace(ctx context.Context, spec GitSpec, dir string, log io.Writer) (Commit, bool) {
	if _, err := os.Stat(filepath.Join(dir, ".git")); err != nil {
		return Commit{}, false
	}
	// Quiet until it is sure: a fresh clone says it all again otherwise.
	c, err := newCloner(ctx, spec, dir, io.Discard)
	if err != nil {
		return Commit{}, false
	}
	defer c.env.close()
	if url, err := c.git(ctx, false, "config", "--get", "remote.origin.url"); err != nil || strings.TrimSpace(url) != c.remote.url {
		return Commit{}, false
	}
	out, err := c.git(ctx, true, "ls-remote", "--symref", "origin")
	if err != nil {
		return Commit{}, false
	}
	refs := parseLsRemote(out)
	full, isCommit, err := c.resolve(refs)
	if err != nil || isCommit {
		return Commit{}, false
	}
	head, err := c.head(ctx)
	if err != nil || refs.refs[full] != head.Hash {
		return Commit{}, false
	}
	c.log = log
	fmt.Fprintf(log, "Start clone source code from %s\n", c.redacted)
	fmt.Fprintf(log, "%s is still at %s, as checked out by an earlier build; nothing to fetch\n", full, head.Hash)
	c.logVersion(head)
	return head, true
}

package source

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// gitEnv is the private world one clone runs in: a temporary HOME (so the
// operator's ~/.gitconfig, credential helpers and SSH keys are never used on
// behalf of a user), an askpass script that answers for the repository's host
// only, and an ssh command that trusts the host on first use without
// touching the machine's known_hosts.
type gitEnv struct {
	dir            string
	env            []string
	hadCredentials bool
}

// Variables from berth's own environment that a clone legitimately needs;
// everything else (GIT_DIR, GIT_WORK_TREE, ...) could redirect git.
var passThroughEnv = []string{
	"PATH", "TMPDIR",
	"http_proxy", "https_proxy", "no_proxy", "all_proxy",
	"HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY", "ALL_PROXY",
	"SSL_CERT_FILE", "SSL_CERT_DIR", "GIT_SSL_CAINFO",
}

func newGitEnv(r remote, user, password string, sshKey []byte) (*gitEnv, error) {
	dir, err := os.MkdirTemp("", "berth-git-")
	if err != nil {
		return nil, fmt.Errorf("prepare git credentials: %w", err)
	}
	g := &gitEnv{dir: dir}
	if err := g.setup(r, user, password, sshKey); err != nil {
		g.close()
		return nil, err
	}
	return g, nil
}

func (g *gitEnv) setup(r remote, user, password string, sshKey []byte) error {
	write := func(name string, data []byte, mode os.FileMode) (string, error) {
		p := filepath.Join(g.dir, name)
		if err := os.WriteFile(p, data, mode); err != nil {
			return "", fmt.Errorf("prepare git credentials: %w", err)
		}
		return p, nil
	}
	askpass, err := write("askpass.sh", []byte(askpassScript(g.dir, r.host, password != "")), 0o700)
	if err != nil {
		return err
	}
	if password != "" {
		g.hadCredentials = true
		if _, err := write("user", []byte(user), 0o600); err != nil {
			return err
		}
		if _, err := write("password", []byte(password), 0o600); err != nil {
			return err
		}
	}
	knownHosts, err := write("known_hosts", nil, 0o600)
	if err != nil {
		return err
	}
	// Without a key of the user's, point ssh at a file that does not exist
	// so it cannot fall back to the operator's own ~/.ssh/id_* keys.
	keyPath := filepath.Join(g.dir, "no-key")
	if len(sshKey) > 0 {
		g.hadCredentials = true
		key := sshKey
		if key[len(key)-1] != '\n' {
			// OpenSSH rejects a key file whose last line is unterminated.
			key = append(append([]byte{}, key...), '\n')
		}
		if keyPath, err = write("id_key", key, 0o600); err != nil {
			return err
		}
	}
	sshCmd := strings.Join([]string{"ssh", "-F", "/dev/null",
		"-o", "BatchMode=yes",
		"-o", "IdentitiesOnly=yes",
		"-o", "IdentityAgent=none",
		"-o", "IdentityFile=" + shellQuote(keyPath),
		"-o", "StrictHostKeyChecking=accept-new",
		"-o", "UserKnownHostsFile=" + shellQuote(knownHosts),
		"-o", "ConnectTimeout=30",
	}, " ")

	for _, k := range passThroughEnv {
		if v, ok := os.LookupEnv(k); ok {
			g.env = append(g.env, k+"="+v)
		}
	}
	g.env = append(g.env,
		"HOME="+g.dir,
		"XDG_CONFIG_HOME="+g.dir,
		"GIT_CONFIG_NOSYSTEM=1",
		"GIT_CONFIG_GLOBAL=/dev/null",
		"GIT_TERMINAL_PROMPT=0",
		"GIT_ASKPASS="+askpass,
		"SSH_ASKPASS="+askpass,
		"GIT_SSH_COMMAND="+sshCmd,
		// Submodule URLs come from the repository, i.e. from whoever wrote
		// it: ext:: would run commands and file:// would read our disk.
		"GIT_ALLOW_PROTOCOL=https:http:ssh",
		"GIT_LFS_SKIP_SMUDGE=1",
		// Failure classification reads git's English messages.
		"LC_ALL=C", "LANG=C",
	)
	return nil
}

// askpassScript answers git's prompts only when they name the repository's
// own host: a submodule or redirect elsewhere gets nothing, so the user's
// token never leaves for a host they did not give it to. The secret stays in
// a 0600 file, never in the script, an argument or the environment.
func askpassScript(dir, host string, haveCredentials bool) string {
	if !haveCredentials {
		return "#!/bin/sh\nexit 1\n"
	}
	user := shellQuote(filepath.Join(dir, "user"))
	pass := shellQuote(filepath.Join(dir, "password"))
	return fmt.Sprintf(`#!/bin/sh
case "$1" in
Username*"://%[1]s'"*) cat %[2]s ;;
Password*"://%[1]s'"*|Password*"@%[1]s'"*) cat %[3]s ;;
*) exit 1 ;;
esac
`, host, user, pass)
}

func shellQuote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

func (g *gitEnv) close() {
	if g.dir != "" {
		_ = os.RemoveAll(g.dir)
	}
}

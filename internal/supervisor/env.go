package supervisor

import "strings"

// withSystemPath appends the system directories to PATH so that what the
// daemons run (runc, containerd's shims) is found even when berth was
// started with a minimal PATH.
func withSystemPath(env []string) []string {
	const sys = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
	for i, kv := range env {
		if strings.HasPrefix(kv, "PATH=") {
			env[i] = kv + ":" + sys
			return env
		}
	}
	return append(env, "PATH="+sys)
}

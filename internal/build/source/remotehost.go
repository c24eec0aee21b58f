package source

import "strings"

// RemoteHost is the host[:port] of a repository address, lower-cased, or ""
// when the address is not one berth accepts. Credentials are scoped to it:
// they are for the host the user gave them to.
func RemoteHost(raw string) string {
	r, err := parseRemote(raw)
	if err != nil {
		return ""
	}
	return strings.ToLower(r.host)
}

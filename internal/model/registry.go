package model

import (
	"strings"
	"time"
)

// Registry is how a team reaches a container registry: credentials for a
// private one, and trust settings for one with a self-signed certificate
// or plain HTTP. The password is never returned by the API.
type Registry struct {
	Team       string    `json:"team"`
	Host       string    `json:"host"` // e.g. registry.example.com:5000
	Username   string    `json:"username,omitempty"`
	Password   string    `json:"-"`
	SkipVerify bool      `json:"skip_verify"`
	PlainHTTP  bool      `json:"plain_http"`
	CreatedAt  time.Time `json:"created_at"`
}

// Validate checks a registry entry.
func (r *Registry) Validate() error {
	host := r.Host
	if h, port, ok := strings.Cut(host, ":"); ok {
		if err := ValidatePort("host", atoiOr(port, -1)); err != nil {
			return invalid("host", "must be HOST or HOST:PORT, e.g. registry.example.com:5000 (got %q)", r.Host)
		}
		host = h
	}
	if host == "" || strings.ContainsAny(host, "/ @") || (host != "localhost" && ValidateDomain("host", strings.ToLower(host)) != nil && !isIPv4(host)) {
		return invalid("host", "must be HOST or HOST:PORT, e.g. registry.example.com:5000 (got %q)", r.Host)
	}
	if r.Password != "" && r.Username == "" {
		return invalid("username", "is required with a password")
	}
	return nil
}

func atoiOr(s string, def int) int {
	n := 0
	if s == "" {
		return def
	}
	for _, c := range s {
		if c < '0' || c > '9' {
			return def
		}
		n = n*10 + int(c-'0')
		if n > 65535 {
			return def
		}
	}
	return n
}

func isIPv4(s string) bool {
	parts := strings.Split(s, ".")
	if len(parts) != 4 {
		return false
	}
	for _, p := range parts {
		if n := atoiOr(p, -1); n < 0 || n > 255 {
			return false
		}
	}
	return true
}

// ImageHost is the registry host of an image reference ("docker.io" for
// short names), as registry entries are keyed.
func ImageHost(ref string) string {
	first, _, ok := strings.Cut(ref, "/")
	if ok && (strings.ContainsAny(first, ".:") || first == "localhost") {
		return first
	}
	return "docker.io"
}

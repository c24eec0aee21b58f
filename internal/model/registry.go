package model

import (
	"net"
	"strconv"
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
	if h, port, err := net.SplitHostPort(r.Host); err == nil {
		if n, err := strconv.Atoi(port); err != nil || ValidatePort("host", n) != nil {
			return invalid("host", "must be HOST or HOST:PORT, e.g. registry.example.com:5000 (got %q)", r.Host)
		}
		host = h
	}
	if host != "localhost" && net.ParseIP(host) == nil && ValidateDomain("host", strings.ToLower(host)) != nil {
		return invalid("host", "must be HOST or HOST:PORT, e.g. registry.example.com:5000 (got %q)", r.Host)
	}
	if r.Password != "" && r.Username == "" {
		return invalid("username", "is required with a password")
	}
	return nil
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

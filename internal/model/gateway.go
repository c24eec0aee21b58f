package model

import (
	"strconv"
	"time"
)

// DefaultDomain is the domain an outer HTTP port gets by itself:
// <component>-<port>-<team>.<base>.
func DefaultDomain(alias string, port int, team, base string) string {
	return alias + "-" + strconv.Itoa(port) + "-" + team + "." + base
}

// Published reports whether the gateway serves the port over HTTP (the
// others are published as TCP).
func (p Port) Published() bool {
	return p.Protocol == ProtoHTTP || p.Protocol == ProtoGRPC || p.Protocol == ""
}

// HTTPRule routes a domain and path prefix to a component port.
type HTTPRule struct {
	ID          string            `json:"id"`
	Team        string            `json:"team"`
	Domain      string            `json:"domain"`
	Path        string            `json:"path"`
	Component   string            `json:"component"` // alias
	Port        int               `json:"port"`
	Certificate string            `json:"certificate,omitempty"` // certificate name
	Weight      int               `json:"weight"`
	Headers     map[string]string `json:"headers,omitempty"`
	RouteOptions
	CreatedAt time.Time `json:"created_at"`
}

// RouteOptions tune how the gateway proxies one HTTP rule. Zero values
// take the gateway's defaults.
type RouteOptions struct {
	// RewritePath replaces the matched path prefix upstream ("/api" with
	// rewrite "/" sends /api/users as /users).
	RewritePath    string  `json:"rewrite_path,omitempty"`
	ConnectTimeout int     `json:"connect_timeout,omitempty"` // seconds
	ReadTimeout    int     `json:"read_timeout,omitempty"`    // seconds until the response headers
	SendTimeout    int     `json:"send_timeout,omitempty"`    // seconds to send the request body
	MaxBodySize    int64   `json:"max_body_size,omitempty"`   // bytes; 0 is no limit
	RateLimit      float64 `json:"rate_limit,omitempty"`      // requests a second; 0 is no limit
	RateBurst      int     `json:"rate_burst,omitempty"`
	RedirectHTTPS  bool    `json:"redirect_https,omitempty"`
	// AutoTLS asks for a certificate over ACME (HTTP-01) for the domain.
	AutoTLS bool `json:"auto_tls,omitempty"`
}

// TCPRule publishes a component port on a gateway port.
type TCPRule struct {
	ID          string    `json:"id"`
	Team        string    `json:"team"`
	GatewayPort int       `json:"gateway_port"`
	Component   string    `json:"component"` // alias
	Port        int       `json:"port"`
	CreatedAt   time.Time `json:"created_at"`
}

// Certificate is a TLS certificate for some domains. The key is never
// returned by the API.
type Certificate struct {
	ID       string    `json:"id"`
	Team     string    `json:"team"`
	Name     string    `json:"name"`
	CertPEM  string    `json:"certificate"`
	KeyPEM   string    `json:"-"`
	Domains  []string  `json:"domains"`
	NotAfter time.Time `json:"not_after"`
	// Source is "upload" or "acme" (issued and renewed by berth).
	Source    string    `json:"source"`
	CreatedAt time.Time `json:"created_at"`
}

// Certificate sources.
const (
	CertUploaded = "upload"
	CertACME     = "acme"
)

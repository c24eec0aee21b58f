package model

import "time"

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
	CreatedAt   time.Time         `json:"created_at"`
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
	ID        string    `json:"id"`
	Team      string    `json:"team"`
	Name      string    `json:"name"`
	CertPEM   string    `json:"certificate"`
	KeyPEM    string    `json:"-"`
	Domains   []string  `json:"domains"`
	NotAfter  time.Time `json:"not_after"`
	CreatedAt time.Time `json:"created_at"`
}

package model

import "time"

// App groups components that are deployed and viewed together.
type App struct {
	ID        string            `json:"id"`
	Team      string            `json:"team"`
	Name      string            `json:"name"`
	Labels    map[string]string `json:"labels,omitempty"`
	CreatedAt time.Time         `json:"created_at"`
}

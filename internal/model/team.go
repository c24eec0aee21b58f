// Package model holds berth's domain types and their validation. It does no
// I/O and imports nothing else of berth, so every other package can share it.
package model

import "time"

// Team is a tenant: it owns apps, members and tokens.
type Team struct {
	ID        string    `json:"id"`
	Name      string    `json:"name"`
	CreatedAt time.Time `json:"created_at"`
}

// Role is what a member or token may do inside a team. Roles are ordered:
// each one may do everything the ones below it may.
type Role string

const (
	RoleViewer    Role = "viewer"    // read everything of the team
	RoleDeveloper Role = "developer" // change apps and components, run operations
	RoleAdmin     Role = "admin"     // manage members and tokens below owner
	RoleOwner     Role = "owner"     // everything, including deleting the team
)

var roleRank = map[Role]int{RoleViewer: 1, RoleDeveloper: 2, RoleAdmin: 3, RoleOwner: 4}

// Valid reports whether r is one of the four roles.
func (r Role) Valid() bool { return roleRank[r] > 0 }

// AtLeast reports whether r grants everything min grants.
func (r Role) AtLeast(min Role) bool { return roleRank[r] >= roleRank[min] && r.Valid() }

// Member is a person of a team.
type Member struct {
	Team      string    `json:"team"`
	Name      string    `json:"name"`
	Role      Role      `json:"role"`
	CreatedAt time.Time `json:"created_at"`
}

// Token authenticates API calls. Team tokens act inside one team with a role;
// the admin token (Admin true, no team) may do everything, including creating
// teams. Only a hash of the secret is stored.
type Token struct {
	ID         string     `json:"id"`
	Name       string     `json:"name"`
	Team       string     `json:"team,omitempty"`
	Member     string     `json:"member,omitempty"`
	Role       Role       `json:"role,omitempty"`
	Admin      bool       `json:"admin,omitempty"`
	Hash       string     `json:"-"`
	CreatedAt  time.Time  `json:"created_at"`
	LastUsedAt *time.Time `json:"last_used_at,omitempty"`
}

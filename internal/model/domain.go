package model

import (
	"slices"
	"strconv"
	"strings"
	"time"
)

// DomainClaim says which team owns a domain: an exact name, or "*.parent"
// for a wildcard. The first team to name a domain in an HTTP rule or a
// certificate claims it; a platform admin can reassign it.
type DomainClaim struct {
	Domain    string    `json:"domain"`
	Team      string    `json:"team"`
	CreatedAt time.Time `json:"created_at"`
}

// DomainTakenError is a claim refused because another team owns the domain
// (or, for a wildcard, a name it covers). It matches ErrConflict.
type DomainTakenError struct {
	// Domain is the name that was asked for; Owned is the claim in the way
	// (the same name, the wildcard that covers it, or a name the wildcard
	// covers).
	Domain, Owned string
	// Team owns Owned. It is for platform admins and logs: tenants are told
	// "another team", never which.
	Team string
}

func (e *DomainTakenError) Error() string {
	return "domain " + e.Domain + " belongs to another team (claim " + e.Owned + ")"
}

// Is makes errors.Is(err, ErrConflict) hold.
func (e *DomainTakenError) Is(target error) bool { return target == ErrConflict }

// ParentDomain is what a "*." wildcard covering domain names:
// "a.example.com" -> "example.com". It is "" for a single label.
func ParentDomain(domain string) string {
	_, parent, _ := strings.Cut(domain, ".")
	return parent
}

// DomainConflict reports the claim of another team than team that is in
// the way of team claiming domain, given every claim by domain name: the
// same name, the wildcard covering it, or (for a wildcard) a name it
// covers. It returns "" when team may claim domain.
func DomainConflict(claims map[string]string, team, domain string) string {
	if owner, ok := claims[domain]; ok && owner != team {
		return domain
	}
	if wild, ok := strings.CutPrefix(domain, "*."); ok {
		for name, owner := range claims {
			if owner != team && !strings.HasPrefix(name, "*.") && ParentDomain(name) == wild {
				return name
			}
		}
		return ""
	}
	if parent := ParentDomain(domain); parent != "" {
		if owner, ok := claims["*."+parent]; ok && owner != team {
			return "*." + parent
		}
	}
	return ""
}

// DefaultDomainTeams lists the teams whose components' default domains
// (<alias>-<port>-<team>.<base>) could be domain. Aliases and team names
// may hold '-', so one name can parse several ways; every way counts.
func DefaultDomainTeams(domain, base string) []string {
	if base == "" {
		return nil
	}
	label, ok := strings.CutSuffix(domain, "."+base)
	if !ok || label == "" || strings.Contains(label, ".") {
		return nil
	}
	parts := strings.Split(label, "-")
	var teams []string
	// alias = parts[:i], port = parts[i], team = parts[i+1:]
	for i := 1; i < len(parts)-1; i++ {
		if n, err := strconv.Atoi(parts[i]); err != nil || n < 1 || n > 65535 || strconv.Itoa(n) != parts[i] {
			continue
		}
		teams = append(teams, strings.Join(parts[i+1:], "-"))
	}
	return teams
}

// DomainUsable reports whether the gateway may serve domain for team:
// no claim of another team is in its way and it is not another team's
// default domain. Rules stored before a reassignment (or before domains
// had owners) are checked again with it each time routes are built.
func DomainUsable(claims map[string]string, team, domain, base string) bool {
	if DomainConflict(claims, team, domain) != "" {
		return false
	}
	if base != "" && (domain == "*."+base || domain == base) {
		return false
	}
	teams := DefaultDomainTeams(domain, base)
	return len(teams) == 0 || slices.Contains(teams, team)
}

// CertificateUsable reports whether the gateway may serve a certificate of
// team for its names: none is claimed by another team or is another
// team's default domain. A wildcard name is only refused for its own
// claim, not for the names under it other teams own: the gateway picks
// an exact certificate before a wildcard one.
func CertificateUsable(claims map[string]string, team string, names []string, base string) bool {
	for _, n := range names {
		n = strings.ToLower(n)
		if owner, ok := claims[n]; ok && owner != team {
			return false
		}
		if !strings.HasPrefix(n, "*.") && !DomainUsable(claims, team, n, base) {
			return false
		}
		if base != "" && n == "*."+base {
			return false
		}
	}
	return true
}

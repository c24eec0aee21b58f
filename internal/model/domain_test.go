package model

import (
	"slices"
	"testing"
)

func TestDefaultDomainTeams(t *testing.T) {
	for domain, want := range map[string][]string{
		"web-80-shop.berth.test":   {"shop"},
		"x-1-y-2-z.berth.test":     {"y-2-z", "z"},
		"shop.berth.test":          nil,
		"a.web-80-shop.berth.test": nil,
		"web-080-shop.berth.test":  nil,
		"web-80-shop.other.test":   nil,
		"web-80.berth.test":        nil,
	} {
		if got := DefaultDomainTeams(domain, "berth.test"); !slices.Equal(got, want) {
			t.Errorf("%s: %v, want %v", domain, got, want)
		}
	}
}

func TestDomainUsable(t *testing.T) {
	claims := map[string]string{"a.example": "blog", "*.wild.example": "blog"}
	for _, c := range []struct {
		team, domain string
		want         bool
	}{
		{"blog", "a.example", true},
		{"shop", "a.example", false},
		{"shop", "*.example", false},
		{"shop", "x.wild.example", false},
		{"shop", "b.example", true},
		{"shop", "web-80-blog.berth.test", false},
		{"blog", "web-80-blog.berth.test", true},
		{"blog", "*.berth.test", false},
	} {
		if got := DomainUsable(claims, c.team, c.domain, "berth.test"); got != c.want {
			t.Errorf("%s for %s: %v, want %v", c.domain, c.team, got, c.want)
		}
	}
	if CertificateUsable(claims, "shop", []string{"b.example", "A.example"}, "berth.test") {
		t.Error("a certificate naming another team's domain is usable")
	}
	if !CertificateUsable(claims, "shop", []string{"*.example"}, "berth.test") {
		t.Error("a wildcard over another team's name is refused at use time (the exact certificate wins there)")
	}
}

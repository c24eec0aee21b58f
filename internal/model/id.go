package model

import (
	"crypto/rand"
	"encoding/base32"
	"strings"
)

var idEncoding = base32.NewEncoding("abcdefghijklmnopqrstuvwxyz234567").WithPadding(base32.NoPadding)

// NewID returns prefix + "-" + 16 random lower-case base32 characters (80
// bits), e.g. "ev-3kq7x2m9abcd2efg".
func NewID(prefix string) string {
	b := make([]byte, 10)
	_, _ = rand.Read(b) // crypto/rand.Read never fails on Linux
	return prefix + "-" + idEncoding.EncodeToString(b)
}

// IsEventID reports whether s has the shape of an event id.
func IsEventID(s string) bool {
	rest, ok := strings.CutPrefix(s, "ev-")
	if !ok || len(rest) != 16 {
		return false
	}
	for _, r := range rest {
		if !(r >= 'a' && r <= 'z' || r >= '2' && r <= '7') {
			return false
		}
	}
	return true
}

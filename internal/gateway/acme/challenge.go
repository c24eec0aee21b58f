package acme

import (
	"net/http"
	"strings"
	"sync"
)

// ChallengePathPrefix is where the CA fetches HTTP-01 key authorizations
// (RFC 8555 §8.3); the gateway must send it to this package before routing.
const ChallengePathPrefix = "/.well-known/acme-challenge/"

// challengeStore is lego's HTTP-01 provider: Present/CleanUp fill an
// in-memory map that the gateway's own port-80 listener serves from.
type challengeStore struct {
	mu     sync.RWMutex
	tokens map[string]string // token -> key authorization
}

func newChallengeStore() *challengeStore {
	return &challengeStore{tokens: make(map[string]string)}
}

// Present keys by token alone: tokens are random and unique per challenge,
// and matching the Host as well would break behind proxies that rewrite it.
func (s *challengeStore) Present(_, token, keyAuth string) error {
	s.mu.Lock()
	s.tokens[token] = keyAuth
	s.mu.Unlock()
	return nil
}

func (s *challengeStore) CleanUp(_, token, _ string) error {
	s.mu.Lock()
	delete(s.tokens, token)
	s.mu.Unlock()
	return nil
}

func (s *challengeStore) lookup(token string) (string, bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	ka, ok := s.tokens[token]
	return ka, ok
}

func (s *challengeStore) pending() int {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return len(s.tokens)
}

// ServeChallenge answers r if it asks for a challenge this Issuer has
// pending and reports whether it did. Any other request, including a
// challenge path with an unknown token, is left to the caller, so an app
// behind the gateway that runs its own ACME client still gets its
// challenges.
func (i *Issuer) ServeChallenge(w http.ResponseWriter, r *http.Request) bool {
	token, ok := strings.CutPrefix(r.URL.Path, ChallengePathPrefix)
	if !ok || token == "" || strings.Contains(token, "/") {
		return false
	}
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		return false
	}
	keyAuth, ok := i.challenges.lookup(token)
	if !ok {
		return false
	}
	i.log.Debug("acme: serving HTTP-01 challenge", "host", r.Host, "remote", r.RemoteAddr)
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusOK)
	if r.Method == http.MethodGet {
		_, _ = w.Write([]byte(keyAuth))
	}
	return true
}

// ChallengeHandler serves pending challenges and 404s everything else; for
// mounting on a mux at ChallengePathPrefix.
func (i *Issuer) ChallengeHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !i.ServeChallenge(w, r) {
			http.NotFound(w, r)
		}
	})
}

// Middleware serves pending challenges and passes every other request to
// next: the usual way to put the Issuer in front of the gateway's router.
// It belongs ahead of any HTTP-to-HTTPS redirect too, so that validation
// does not depend on the TLS listener serving challenges as well.
func (i *Issuer) Middleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !i.ServeChallenge(w, r) {
			next.ServeHTTP(w, r)
		}
	})
}

package gateway

import (
	"sync"
	"time"
)

// RateLimiter is a token bucket shared by every request of a route: Rate
// requests a second on average, bursts of up to Burst.
type RateLimiter struct {
	mu     sync.Mutex
	rate   float64
	burst  float64
	tokens float64
	last   time.Time
}

// NewRateLimiter returns a full bucket. A burst below 1 is taken as the rate.
func NewRateLimiter(perSecond float64, burst int) *RateLimiter {
	b := float64(burst)
	if b < 1 {
		b = max(perSecond, 1)
	}
	return &RateLimiter{rate: perSecond, burst: b, tokens: b, last: time.Now()}
}

// Allow takes a token if one is left.
func (l *RateLimiter) Allow() bool {
	now := time.Now()
	l.mu.Lock()
	defer l.mu.Unlock()
	l.tokens = min(l.burst, l.tokens+now.Sub(l.last).Seconds()*l.rate)
	l.last = now
	if l.tokens < 1 {
		return false
	}
	l.tokens--
	return true
}

package acme

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"time"
)

const (
	// maxRenewWindow caps how early a long-lived certificate is renewed.
	maxRenewWindow = 30 * 24 * time.Hour
	// assumedLifetime stands in when NotBefore is unknown: Let's Encrypt's
	// classic 90 days, which makes the window the familiar 30 days.
	assumedLifetime = 90 * 24 * time.Hour
)

// RenewDue reports whether a certificate valid from notBefore to notAfter
// should be replaced at now. The rule: renew once less than a third of its
// lifetime, or less than 30 days, remains, whichever comes later in the
// certificate's life. For a 90-day certificate both are 30 days. A
// long-lived certificate renews 30 days before expiry rather than months
// ahead, and a short-lived one (Let's Encrypt's 6-day profile) renews with
// two days left instead of immediately and forever, which is what a flat
// 30 days would do. A zero notAfter means there is no certificate, so it is
// due; a zero notBefore means the lifetime is unknown and 90 days is
// assumed.
func RenewDue(notBefore, notAfter, now time.Time) bool {
	if notAfter.IsZero() {
		return true
	}
	lifetime := notAfter.Sub(notBefore)
	if notBefore.IsZero() || lifetime <= 0 {
		lifetime = assumedLifetime
	}
	return notAfter.Sub(now) < min(lifetime/3, maxRenewWindow)
}

// Managed is one certificate Run keeps valid, as the caller's store
// describes it on each pass.
type Managed struct {
	// Key is the caller's identifier for the certificate (a domain or app
	// row ID); Run only logs it and keys its retry state on it.
	Key string
	// Domains go on one certificate; the first is the subject CN.
	Domains []string
	// NotBefore and NotAfter bound the certificate the caller holds now;
	// zero NotAfter means it holds none and one is obtained. A zero
	// NotBefore is allowed (see RenewDue).
	NotBefore time.Time
	NotAfter  time.Time
}

// StoreFunc persists a certificate Run obtained for m. If it fails, Run keeps
// the certificate in memory and retries the store on later passes instead of
// asking the CA again (duplicate certificates are rate-limited too).
type StoreFunc func(m Managed, certPEM, keyPEM []byte, notAfter time.Time) error

// Run keeps the certificates that list returns valid until ctx ends. Every
// `every` (1 hour if not positive), or at once after Trigger, it obtains a
// certificate for each entry that has none and renews each one RenewDue
// says is due, one at a time, handing the result to store. A name that
// fails is retried after a back-off that starts at 5 minutes and doubles up
// to 12 hours (at least an hour, or the CA's Retry-After, when rate
// limited), which keeps a name whose DNS does not point here yet from
// spending Let's Encrypt's 5-failures-an-hour allowance.
//
// list and store are called from Run's goroutine only.
func (i *Issuer) Run(ctx context.Context, list func() []Managed, store StoreFunc, every time.Duration) {
	r := newRenewer(i.Obtain, i.log)
	r.run(ctx, list, store, every, i.wake)
}

// Trigger makes a running Run look at its list now instead of at its next
// tick, e.g. right after a domain is added. It never blocks.
func (i *Issuer) Trigger() {
	select {
	case i.wake <- struct{}{}:
	default:
	}
}

type obtainFunc func(ctx context.Context, domains []string) (certPEM, keyPEM []byte, notAfter time.Time, err error)

// renewer is Run's state, separate from Issuer so tests can drive its
// passes with a fake CA and clock.
type renewer struct {
	obtain         obtainFunc
	log            *slog.Logger
	now            func() time.Time
	retryBase      time.Duration
	retryMax       time.Duration
	attemptTimeout time.Duration

	failures map[string]*failure
	unstored map[string]*issued
}

type failure struct {
	count int
	next  time.Time
}

type issued struct {
	certPEM, keyPEM []byte
	obtainedAt      time.Time
	notAfter        time.Time
}

func newRenewer(obtain obtainFunc, log *slog.Logger) *renewer {
	return &renewer{
		obtain:         obtain,
		log:            log,
		now:            time.Now,
		retryBase:      5 * time.Minute,
		retryMax:       12 * time.Hour,
		attemptTimeout: 5 * time.Minute,
		failures:       make(map[string]*failure),
		unstored:       make(map[string]*issued),
	}
}

func (r *renewer) run(ctx context.Context, list func() []Managed, store StoreFunc, every time.Duration, wake <-chan struct{}) {
	if every <= 0 {
		every = time.Hour
	}
	ticker := time.NewTicker(every)
	defer ticker.Stop()
	for {
		r.pass(ctx, list(), store)
		select {
		case <-ctx.Done():
			return
		case <-ticker.C:
		case <-wake:
		}
	}
}

// stateKey includes the domains so that editing an entry's names starts it
// afresh instead of inheriting the old names' back-off.
func stateKey(m Managed) string { return m.Key + "\x00" + strings.Join(m.Domains, ",") }

func (r *renewer) pass(ctx context.Context, items []Managed, store StoreFunc) {
	seen := make(map[string]bool, len(items))
	for _, m := range items {
		if ctx.Err() != nil {
			return
		}
		k := stateKey(m)
		seen[k] = true
		r.one(ctx, k, m, store)
	}
	// Forget entries the caller no longer manages.
	for k := range r.failures {
		if !seen[k] {
			delete(r.failures, k)
		}
	}
	for k := range r.unstored {
		if !seen[k] {
			delete(r.unstored, k)
		}
	}
}

func (r *renewer) one(ctx context.Context, k string, m Managed, store StoreFunc) {
	now := r.now()
	log := r.log.With("key", m.Key, "domains", m.Domains)

	if c := r.unstored[k]; c != nil {
		if RenewDue(c.obtainedAt, c.notAfter, now) {
			delete(r.unstored, k) // too old to be worth storing now
		} else {
			if err := store(m, c.certPEM, c.keyPEM, c.notAfter); err != nil {
				log.Error("acme: storing certificate failed again", "err", err)
				return
			}
			delete(r.unstored, k)
			log.Info("acme: certificate stored", "not_after", c.notAfter)
			return
		}
	}

	if !RenewDue(m.NotBefore, m.NotAfter, now) {
		return
	}
	if f := r.failures[k]; f != nil && now.Before(f.next) {
		return
	}

	reason := "obtain"
	if !m.NotAfter.IsZero() {
		reason = "renew"
	}
	actx, cancel := context.WithTimeout(ctx, r.attemptTimeout)
	certPEM, keyPEM, notAfter, err := r.obtain(actx, m.Domains)
	cancel()
	if err != nil {
		if ctx.Err() != nil {
			return // shutting down, not a failure of the name
		}
		retryIn := r.recordFailure(k, err, now)
		level := slog.LevelError
		if !m.NotAfter.IsZero() && now.Before(m.NotAfter) {
			level = slog.LevelWarn // the current certificate still serves
		}
		log.Log(ctx, level, "acme: "+reason+" failed", "err", err, "retry_in", retryIn, "current_not_after", m.NotAfter)
		return
	}
	delete(r.failures, k)
	if err := store(m, certPEM, keyPEM, notAfter); err != nil {
		r.unstored[k] = &issued{certPEM: certPEM, keyPEM: keyPEM, obtainedAt: now, notAfter: notAfter}
		log.Error("acme: storing certificate failed; will retry without asking the CA again", "err", err)
		return
	}
	log.Info("acme: certificate stored", "reason", reason, "not_after", notAfter)
}

func (r *renewer) recordFailure(k string, err error, now time.Time) time.Duration {
	f := r.failures[k]
	if f == nil {
		f = &failure{}
		r.failures[k] = f
	}
	f.count++
	delay := r.retryBase
	for n := 1; n < f.count && delay < r.retryMax; n++ {
		delay *= 2
	}
	delay = min(delay, r.retryMax)
	var e *Error
	if errors.Is(err, ErrRateLimited) && errors.As(err, &e) {
		delay = max(delay, time.Hour, e.RetryAfter)
	}
	f.next = now.Add(delay)
	return delay
}

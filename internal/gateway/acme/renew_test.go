package acme

import (
	"context"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"io"
	"log/slog"
	"sync"
	"testing"
	"time"
)

func TestRenewDue(t *testing.T) {
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	day := 24 * time.Hour
	for _, tc := range []struct {
		name                string
		notBefore, notAfter time.Time
		want                bool
	}{
		{"no certificate", time.Time{}, time.Time{}, true},
		{"90d fresh", now, now.Add(90 * day), false},
		{"90d with 31 days left", now.Add(-59 * day), now.Add(31 * day), false},
		{"90d with 29 days left", now.Add(-61 * day), now.Add(29 * day), true},
		{"expired", now.Add(-91 * day), now.Add(-day), true},
		// Long-lived: 30 days, not a third (122 days), is the window.
		{"1y with 60 days left", now.Add(-305 * day), now.Add(60 * day), false},
		{"1y with 29 days left", now.Add(-336 * day), now.Add(29 * day), true},
		// Short-lived: a third of 6 days, not 30 days (always due).
		{"6d with 3 days left", now.Add(-3 * day), now.Add(3 * day), false},
		{"6d with 1 day left", now.Add(-5 * day), now.Add(day), true},
		// Unknown start: 90 days assumed, so 30 days.
		{"unknown start, 31 days left", time.Time{}, now.Add(31 * day), false},
		{"unknown start, 29 days left", time.Time{}, now.Add(29 * day), true},
	} {
		if got := RenewDue(tc.notBefore, tc.notAfter, now); got != tc.want {
			t.Errorf("%s: RenewDue = %v, want %v", tc.name, got, tc.want)
		}
	}
}

// fakeCA stands in for Issuer.Obtain in the renewer's unit tests.
type fakeCA struct {
	calls int
	err   error
	life  time.Duration
	now   func() time.Time
}

func (f *fakeCA) obtain(_ context.Context, domains []string) ([]byte, []byte, time.Time, error) {
	f.calls++
	if f.err != nil {
		return nil, nil, time.Time{}, f.err
	}
	return []byte("cert:" + domains[0]), []byte("key"), f.now().Add(f.life), nil
}

type testClock struct{ t time.Time }

func (c *testClock) now() time.Time { return c.t }

func quietLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func TestRenewerBacksOffAfterFailure(t *testing.T) {
	clock := &testClock{t: time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)}
	ca := &fakeCA{err: &Error{Kind: ErrChallenge}, life: 90 * 24 * time.Hour, now: clock.now}
	r := newRenewer(ca.obtain, quietLogger())
	r.now = clock.now
	var stored int
	store := func(Managed, []byte, []byte, time.Time) error { stored++; return nil }
	items := []Managed{{Key: "a", Domains: []string{"a.berth.test"}}}

	step := func(d time.Duration, wantCalls int) {
		t.Helper()
		clock.t = clock.t.Add(d)
		r.pass(context.Background(), items, store)
		if ca.calls != wantCalls {
			t.Fatalf("after %v: %d obtain calls, want %d", d, ca.calls, wantCalls)
		}
	}
	step(0, 1)
	step(time.Minute, 1)   // within 5m back-off
	step(4*time.Minute, 2) // 5m passed
	step(9*time.Minute, 2) // back-off now 10m
	step(time.Minute, 3)
	step(19*time.Minute, 3) // and 20m
	step(time.Minute, 4)

	ca.err = nil
	step(40*time.Minute, 5)
	if stored != 1 {
		t.Fatalf("stored %d times, want 1", stored)
	}
	if len(r.failures) != 0 {
		t.Errorf("failure state kept after success: %v", r.failures)
	}

	// Dropping the entry forgets its state.
	ca.err = errTest
	items[0].NotAfter = time.Time{}
	step(0, 6)
	items = nil
	step(0, 6)
	if len(r.failures) != 0 {
		t.Errorf("failure state kept for an entry no longer listed")
	}
}

func TestRenewerRateLimitWaitsForRetryAfter(t *testing.T) {
	clock := &testClock{t: time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)}
	ca := &fakeCA{err: &Error{Kind: ErrRateLimited, RetryAfter: 3 * time.Hour}, now: clock.now}
	r := newRenewer(ca.obtain, quietLogger())
	r.now = clock.now
	items := []Managed{{Key: "a", Domains: []string{"a.berth.test"}}}
	store := func(Managed, []byte, []byte, time.Time) error { return nil }

	r.pass(context.Background(), items, store)
	clock.t = clock.t.Add(2*time.Hour + 59*time.Minute)
	r.pass(context.Background(), items, store)
	if ca.calls != 1 {
		t.Fatalf("asked again %v after a rate limit with Retry-After 3h", 179*time.Minute)
	}
	clock.t = clock.t.Add(2 * time.Minute)
	r.pass(context.Background(), items, store)
	if ca.calls != 2 {
		t.Fatalf("not retried after Retry-After passed")
	}
}

func TestRenewerRetriesStoreWithoutReobtaining(t *testing.T) {
	clock := &testClock{t: time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)}
	ca := &fakeCA{life: 90 * 24 * time.Hour, now: clock.now}
	r := newRenewer(ca.obtain, quietLogger())
	r.now = clock.now
	items := []Managed{{Key: "a", Domains: []string{"a.berth.test"}}}
	fail := true
	var got []string
	store := func(m Managed, cert, _ []byte, _ time.Time) error {
		if fail {
			return errors.New("database is locked")
		}
		got = append(got, m.Key+"="+string(cert))
		return nil
	}

	r.pass(context.Background(), items, store)
	r.pass(context.Background(), items, store)
	fail = false
	clock.t = clock.t.Add(time.Minute)
	r.pass(context.Background(), items, store)
	if ca.calls != 1 {
		t.Errorf("obtained %d times, want 1 (the unstored certificate should be reused)", ca.calls)
	}
	if len(got) != 1 || got[0] != "a=cert:a.berth.test" {
		t.Errorf("stored %v", got)
	}
}

func TestRenewerRenewsOnlyWhenDue(t *testing.T) {
	clock := &testClock{t: time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)}
	ca := &fakeCA{life: 90 * 24 * time.Hour, now: clock.now}
	r := newRenewer(ca.obtain, quietLogger())
	r.now = clock.now
	day := 24 * time.Hour
	items := []Managed{
		{Key: "fresh", Domains: []string{"fresh.berth.test"}, NotBefore: clock.t.Add(-10 * day), NotAfter: clock.t.Add(80 * day)},
		{Key: "due", Domains: []string{"due.berth.test"}, NotBefore: clock.t.Add(-70 * day), NotAfter: clock.t.Add(20 * day)},
		{Key: "new", Domains: []string{"new.berth.test"}},
	}
	var keys []string
	r.pass(context.Background(), items, func(m Managed, _, _ []byte, _ time.Time) error {
		keys = append(keys, m.Key)
		return nil
	})
	if len(keys) != 2 || keys[0] != "due" || keys[1] != "new" {
		t.Errorf("stored %v, want [due new]", keys)
	}
}

// TestRunAgainstPebble runs the real loop: the first pass obtains, later
// passes (driven by Trigger) leave the fresh certificate alone.
func TestRunAgainstPebble(t *testing.T) {
	p := startPebble(t)
	iss := pebbleIssuer(t, p, t.TempDir(), "")
	p.ServeChallenges(iss.ChallengeHandler())

	var mu sync.Mutex
	entry := Managed{Key: "app_1", Domains: []string{"run.berth.test"}}
	var stores, lists int
	listed := make(chan struct{}, 100)
	list := func() []Managed {
		mu.Lock()
		defer mu.Unlock()
		lists++
		select {
		case listed <- struct{}{}:
		default:
		}
		return []Managed{entry}
	}
	store := func(m Managed, certPEM, keyPEM []byte, notAfter time.Time) error {
		block, _ := pem.Decode(certPEM)
		leaf, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			return err
		}
		mu.Lock()
		defer mu.Unlock()
		stores++
		entry.NotBefore, entry.NotAfter = leaf.NotBefore, notAfter
		return nil
	}

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	start := time.Now()
	go func() {
		defer close(done)
		iss.Run(ctx, list, store, time.Hour)
	}()
	defer func() {
		cancel()
		<-done
	}()

	deadline := time.After(90 * time.Second)
	for {
		mu.Lock()
		n := stores
		mu.Unlock()
		if n > 0 {
			break
		}
		select {
		case <-deadline:
			t.Fatal("Run did not store a certificate within 90s")
		case <-time.After(20 * time.Millisecond):
		}
	}
	t.Logf("first certificate stored after %v", time.Since(start).Round(time.Millisecond))

	// Three more passes, each started by Trigger once the last has listed.
	for range 3 {
		mu.Lock()
		before := lists
		mu.Unlock()
		for {
			iss.Trigger()
			mu.Lock()
			after := lists
			mu.Unlock()
			if after > before {
				break
			}
			select {
			case <-deadline:
				t.Fatal("Trigger did not start a pass")
			case <-listed:
			case <-time.After(20 * time.Millisecond):
			}
		}
	}
	cancel()
	<-done
	mu.Lock()
	defer mu.Unlock()
	if stores != 1 {
		t.Errorf("stored %d times, want 1: a fresh certificate was obtained again", stores)
	}
	if lists < 4 {
		t.Errorf("only %d passes ran", lists)
	}
}

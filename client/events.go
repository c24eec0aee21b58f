package client

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"strconv"
	"time"
)

// ListEvents lists events, newest first.
func (c *Client) ListEvents(ctx context.Context, f EventFilter) ([]Event, error) {
	q := url.Values{}
	if f.Team != "" {
		q.Set("team", f.Team)
	}
	if f.Target != "" {
		q.Set("target", f.Target)
	}
	if f.Status != "" {
		q.Set("status", f.Status)
	}
	if f.Limit > 0 {
		q.Set("limit", strconv.Itoa(f.Limit))
	}
	return list[Event](ctx, c, apiPath("events"), q)
}

// ListTeamEvents lists the events of a team, newest first.
func (c *Client) ListTeamEvents(ctx context.Context, team string) ([]Event, error) {
	return list[Event](ctx, c, apiPath("teams", team, "events"), nil)
}

// GetEvent returns one event.
func (c *Client) GetEvent(ctx context.Context, id string) (*Event, error) {
	return get[Event](ctx, c, apiPath("events", id))
}

// EventLog returns the log lines with Seq greater than after that the
// server has (possibly not all of them: it may page), and the event.
func (c *Client) EventLog(ctx context.Context, id string, after int64) (*EventLog, error) {
	var q url.Values
	if after > 0 {
		q = url.Values{"after": {strconv.FormatInt(after, 10)}}
	}
	var l EventLog
	if err := c.do(ctx, http.MethodGet, apiPath("events", id, "log"), q, nil, &l); err != nil {
		return nil, err
	}
	return &l, nil
}

// ReadLog calls fn with every line of the log stored so far after Seq after,
// in order, fetching as many pages as needed. It returns the event as of the
// last page; unlike FollowLog it does not wait for the event to end.
func (c *Client) ReadLog(ctx context.Context, id string, after int64, fn func(Line) error) (*Event, error) {
	for {
		page, err := c.EventLog(ctx, id, after)
		if err != nil {
			return nil, err
		}
		progressed := false
		for _, l := range page.Lines {
			if l.Seq <= after {
				continue // the server ignored ?after; skip what was seen
			}
			if err := fn(l); err != nil {
				return nil, err
			}
			after, progressed = l.Seq, true
		}
		if !progressed {
			return &page.Event, nil
		}
	}
}

// WaitEvent polls the event until it ends and returns it. Errors that may be
// transient (network, 5xx) are retried like FollowLog's.
func (c *Client) WaitEvent(ctx context.Context, id string) (*Event, error) {
	pause := c.waitInterval / 8
	failures := 0
	for {
		ev, err := c.GetEvent(ctx, id)
		switch {
		case err == nil:
			failures = 0
			if ev.Done() {
				return ev, nil
			}
		case ctx.Err() != nil:
			return nil, ctx.Err()
		case !retryable(err):
			return nil, err
		default:
			failures++
			if failures > c.followRetries {
				return nil, err
			}
		}
		if err := sleep(ctx, pause); err != nil {
			return nil, err
		}
		pause = min(pause*2, c.waitInterval)
	}
}

// retryable reports whether a failed call may succeed if repeated: network
// errors and server-side failures, not rejections of the request itself.
func retryable(err error) bool {
	var apiErr *Error
	if errors.As(err, &apiErr) {
		return apiErr.Status >= 500 || apiErr.Status == http.StatusRequestTimeout ||
			apiErr.Status == http.StatusTooManyRequests
	}
	var perr *protocolError
	return !errors.As(err, &perr)
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

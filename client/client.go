// Package client is a Go client for the berth REST API. It depends on nothing
// of berth's server side, so programs outside this module can use it.
//
// Every call takes a context; API failures come back as *Error.
package client

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// Client talks to one berth server with one token. It is safe for
// concurrent use.
type Client struct {
	base      string
	token     string
	hc        *http.Client
	userAgent string

	// Knobs for FollowLog; tests shorten them.
	followRetries int           // consecutive failed connections before giving up
	followBackoff time.Duration // first pause between reconnections, doubled each time
	followIdle    time.Duration // silence after which a stream counts as dead
	waitInterval  time.Duration // longest pause between polls in WaitEvent
}

// Option changes a Client built by New.
type Option func(*Client)

// WithHTTPClient makes the client send requests through hc, e.g. to add TLS
// settings or a proxy. Do not give hc a Timeout: it would cut log streams;
// bound calls with their context instead.
func WithHTTPClient(hc *http.Client) Option { return func(c *Client) { c.hc = hc } }

// WithUserAgent sets the User-Agent header of every request.
func WithUserAgent(ua string) Option { return func(c *Client) { c.userAgent = ua } }

// New returns a client for the server at baseURL (e.g. http://127.0.0.1:8080)
// that authenticates with token. An empty token sends no Authorization
// header, which only the health endpoints accept.
func New(baseURL, token string, opts ...Option) *Client {
	c := &Client{
		base:          strings.TrimRight(baseURL, "/"),
		token:         token,
		hc:            http.DefaultClient,
		userAgent:     "berth-client",
		followRetries: 8,
		followBackoff: 250 * time.Millisecond,
		followIdle:    90 * time.Second,
		waitInterval:  2 * time.Second,
	}
	for _, o := range opts {
		o(c)
	}
	return c
}

// BaseURL is the server address the client was built with.
func (c *Client) BaseURL() string { return c.base }

// Error is a failed API call: the HTTP status and the server's error code
// (not_found, bad_request, unauthorized, forbidden, conflict, invalid,
// internal) and message.
type Error struct {
	Status  int
	Code    string
	Message string
}

func (e *Error) Error() string { return e.Message }

// IsNotFound reports whether err is an API error saying the target does not
// exist.
func IsNotFound(err error) bool { return hasStatus(err, http.StatusNotFound) }

// IsUnauthorized reports whether err says the token was missing, unknown or
// revoked.
func IsUnauthorized(err error) bool { return hasStatus(err, http.StatusUnauthorized) }

func hasStatus(err error, status int) bool {
	var e *Error
	return errors.As(err, &e) && e.Status == status
}

// codeForStatus names the error code of a response that carried no JSON
// error body, e.g. one produced by a proxy in front of the server.
func codeForStatus(status int) string {
	switch status {
	case http.StatusBadRequest:
		return "bad_request"
	case http.StatusUnauthorized:
		return "unauthorized"
	case http.StatusForbidden:
		return "forbidden"
	case http.StatusNotFound:
		return "not_found"
	case http.StatusConflict:
		return "conflict"
	case http.StatusUnprocessableEntity:
		return "invalid"
	}
	return "internal"
}

// decodeError turns a non-2xx response into *Error. It never fails: a body
// that is not berth's JSON shape still yields a readable message.
func decodeError(resp *http.Response) *Error {
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	var env struct {
		Error struct {
			Code    string `json:"code"`
			Message string `json:"message"`
		} `json:"error"`
	}
	e := &Error{Status: resp.StatusCode}
	isJSON := json.Unmarshal(body, &env) == nil
	if isJSON {
		e.Code, e.Message = env.Error.Code, env.Error.Message
	}
	if e.Code == "" {
		e.Code = codeForStatus(resp.StatusCode)
	}
	if e.Message == "" {
		text := strings.TrimSpace(string(body))
		if isJSON || len(text) > 200 || strings.HasPrefix(text, "<") {
			text = "" // raw JSON, an HTML page or a dump helps nobody on a terminal
		}
		if text == "" {
			text = http.StatusText(resp.StatusCode)
		}
		e.Message = fmt.Sprintf("%s (HTTP %d)", text, resp.StatusCode)
	}
	return e
}

// path joins escaped segments so that names can never change the route.
func path(segments ...string) string {
	var b strings.Builder
	for _, s := range segments {
		b.WriteByte('/')
		b.WriteString(url.PathEscape(s))
	}
	return b.String()
}

// apiPath is path below /api/v1.
func apiPath(segments ...string) string { return "/api/v1" + path(segments...) }

func (c *Client) newRequest(ctx context.Context, method, p string, query url.Values, in any) (*http.Request, error) {
	u := c.base + p
	if len(query) > 0 {
		u += "?" + query.Encode()
	}
	var body io.Reader
	if in != nil {
		buf, err := json.Marshal(in)
		if err != nil {
			return nil, fmt.Errorf("encode request: %w", err)
		}
		body = bytes.NewReader(buf)
	}
	req, err := http.NewRequestWithContext(ctx, method, u, body)
	if err != nil {
		return nil, err
	}
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Accept", "application/json")
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	req.Header.Set("User-Agent", c.userAgent)
	return req, nil
}

// do sends one JSON request and decodes a 2xx answer into out (when not nil).
func (c *Client) do(ctx context.Context, method, p string, query url.Values, in, out any) error {
	req, err := c.newRequest(ctx, method, p, query, in)
	if err != nil {
		return err
	}
	return c.roundTrip(req, out)
}

// roundTrip sends req and decodes a 2xx answer into out (when not nil).
func (c *Client) roundTrip(req *http.Request, out any) error {
	resp, err := c.hc.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return decodeError(resp)
	}
	if out == nil || resp.StatusCode == http.StatusNoContent {
		_, _ = io.Copy(io.Discard, resp.Body) // lets the connection be reused
		return nil
	}
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
		return fmt.Errorf("%s %s: decode response: %w", req.Method, req.URL.Path, err)
	}
	return nil
}

type itemList[T any] struct {
	Items []T `json:"items"`
}

// list fetches a {"items": [...]} answer. It never returns a nil slice, so
// that an empty listing encodes as [] rather than null.
func list[T any](ctx context.Context, c *Client, p string, query url.Values) ([]T, error) {
	var l itemList[T]
	if err := c.do(ctx, http.MethodGet, p, query, nil, &l); err != nil {
		return nil, err
	}
	if l.Items == nil {
		l.Items = []T{}
	}
	return l.Items, nil
}

// get fetches one object.
func get[T any](ctx context.Context, c *Client, p string) (*T, error) {
	var v T
	if err := c.do(ctx, http.MethodGet, p, nil, nil, &v); err != nil {
		return nil, err
	}
	return &v, nil
}

// send writes in with method and decodes the answer into a new T.
func send[T any](ctx context.Context, c *Client, method, p string, in any) (*T, error) {
	var v T
	if err := c.do(ctx, method, p, nil, in, &v); err != nil {
		return nil, err
	}
	return &v, nil
}

func (c *Client) delete(ctx context.Context, p string) error {
	return c.do(ctx, http.MethodDelete, p, nil, nil, nil)
}

// DeleteOptions are the choices of a team, app or component delete.
type DeleteOptions struct {
	// KeepVolumes keeps the components' volumes (their data).
	KeepVolumes bool
	// Force deletes an app although components of other apps depend on it.
	Force bool
}

// deleteTask starts a delete that runs as a task and returns its event id.
func (c *Client) deleteTask(ctx context.Context, p string, opts DeleteOptions) (string, error) {
	q := url.Values{}
	if opts.KeepVolumes {
		q.Set("keep_volumes", "1")
	}
	if opts.Force {
		q.Set("force", "1")
	}
	var out struct {
		EventID string `json:"event_id"`
	}
	if err := c.do(ctx, http.MethodDelete, p, q, nil, &out); err != nil {
		return "", err
	}
	return out.EventID, nil
}

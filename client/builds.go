package client

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"time"
)

// Build builds a source component into a new version and rolls it out;
// uploadID names the package to build (package sources).
func (c *Client) Build(ctx context.Context, ref ComponentRef, uploadID string) (string, error) {
	var body any
	if uploadID != "" {
		body = map[string]string{"upload_id": uploadID}
	}
	return c.action(ctx, ref, "build", body)
}

// Upload is a resumable upload of a package.
type Upload struct {
	ID       string `json:"id"`
	Name     string `json:"name"`
	Size     int64  `json:"size"`
	Offset   int64  `json:"offset"`
	Complete bool   `json:"complete"`
}

// uploadChunk is what one PATCH carries: small enough to resend cheaply
// after a broken connection.
const uploadChunk = 8 << 20

// UploadFile sends a file as a package of a component, in chunks, resuming
// from the server's offset after a failed chunk (up to a few times);
// progress, when set, is told the bytes sent so far.
func (c *Client) UploadFile(ctx context.Context, ref ComponentRef, path string, progress func(sent, total int64)) (Upload, error) {
	f, err := os.Open(path)
	if err != nil {
		return Upload{}, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return Upload{}, err
	}
	var up Upload
	if err := c.do(ctx, http.MethodPost, ref.path("uploads"), nil,
		map[string]any{"name": filepath.Base(path), "size": st.Size()}, &up); err != nil {
		return Upload{}, err
	}
	failures := 0
	for up.Offset < up.Size {
		n := min(int64(uploadChunk), up.Size-up.Offset)
		next, err := c.sendChunk(ctx, ref, up.ID, io.NewSectionReader(f, up.Offset, n), up.Offset, n)
		if err != nil {
			failures++
			if failures > 5 || ctx.Err() != nil {
				return up, fmt.Errorf("upload %s stopped at byte %d of %d: %w", up.ID, up.Offset, up.Size, err)
			}
			time.Sleep(time.Duration(failures) * time.Second)
			// Ask the server where to resume: it keeps what arrived.
			if err := c.do(ctx, http.MethodGet, ref.path("uploads", up.ID), nil, nil, &up); err != nil {
				return up, err
			}
			continue
		}
		up.Offset = next
		if progress != nil {
			progress(up.Offset, up.Size)
		}
	}
	up.Complete = true
	return up, nil
}

func (c *Client) sendChunk(ctx context.Context, ref ComponentRef, id string, r io.Reader, offset, n int64) (int64, error) {
	req, err := c.newRequest(ctx, http.MethodPatch, ref.path("uploads", id), nil, nil)
	if err != nil {
		return 0, err
	}
	req.Body = io.NopCloser(r)
	req.ContentLength = n
	req.Header.Set("Content-Type", "application/offset+octet-stream")
	req.Header.Set("Upload-Offset", strconv.FormatInt(offset, 10))
	resp, err := c.hc.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusNoContent {
		return 0, decodeError(resp)
	}
	return strconv.ParseInt(resp.Header.Get("Upload-Offset"), 10, 64)
}

// CancelEvent stops a running operation (a build, most often).
func (c *Client) CancelEvent(ctx context.Context, id string) error {
	return c.do(ctx, http.MethodPost, "/api/v1/events/"+id+"/cancel", nil, nil, nil)
}

// PrepareImages builds the offline base images into the hub (admin).
func (c *Client) PrepareImages(ctx context.Context, languages []string, rebuild bool) (string, error) {
	var out struct {
		EventID string `json:"event_id"`
	}
	body := map[string]any{"rebuild": rebuild}
	if len(languages) > 0 {
		body["languages"] = languages
	}
	if err := c.do(ctx, http.MethodPost, "/api/v1/images/prepare", nil, body, &out); err != nil {
		return "", err
	}
	return out.EventID, nil
}

package source

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"time"

	"github.com/berth-platform/berth/internal/model"
)

// Uploads receives packages (jar, war, zip, tar.gz) in chunks that can be
// resumed after a broken connection: the client asks for the offset the
// server holds and sends the rest. State lives on disk only, so an upload
// survives a restart of berth.
//
// Layout under root: <id>.json (metadata), <id>.part (bytes so far) and,
// once complete, <id>/<name> (the file handed to the build).
type Uploads struct {
	root     string
	maxBytes int64
	now      func() time.Time

	mu    sync.Mutex
	locks map[string]*sync.Mutex // per upload, so appends to one id serialise
}

// Upload is the state of one upload.
type Upload struct {
	ID        string    `json:"id"`
	Name      string    `json:"name"` // sanitised file name
	Size      int64     `json:"size"` // declared at creation
	Offset    int64     `json:"offset"`
	SHA256    string    `json:"sha256,omitempty"` // expected, if given
	Complete  bool      `json:"complete"`
	CreatedAt time.Time `json:"created_at"`
	UpdatedAt time.Time `json:"updated_at"`
}

// ErrUploadNotFound wraps model.ErrNotFound so the API answers 404.
var ErrUploadNotFound = fmt.Errorf("upload %w", model.ErrNotFound)

// OffsetMismatchError says where the client must resume.
type OffsetMismatchError struct {
	ID       string
	Expected int64
	Got      int64
}

func (e *OffsetMismatchError) Error() string {
	return fmt.Sprintf("upload %s: chunk starts at byte %d but the server holds %d bytes; resume from offset %d",
		e.ID, e.Got, e.Expected, e.Expected)
}

// UploadTooLargeError is a declared or actual size over a limit.
type UploadTooLargeError struct {
	ID    string
	Size  int64 // what was declared or sent
	Limit int64
	What  string // "the declared size" or "the server limit"
}

func (e *UploadTooLargeError) Error() string {
	return fmt.Sprintf("upload %s: %d bytes exceed %s of %d bytes; check the file, or ask the administrator to raise the upload limit",
		e.ID, e.Size, e.What, e.Limit)
}

// UploadIncompleteError is a Complete call before all bytes arrived.
type UploadIncompleteError struct {
	ID     string
	Offset int64
	Size   int64
}

func (e *UploadIncompleteError) Error() string {
	return fmt.Sprintf("upload %s is incomplete: %d of %d bytes received; send the rest from offset %d",
		e.ID, e.Offset, e.Size, e.Offset)
}

// ChecksumError is a complete upload whose content is not what the client
// said it would send.
type ChecksumError struct {
	ID   string
	Want string
	Got  string
}

func (e *ChecksumError) Error() string {
	return fmt.Sprintf("upload %s: sha256 is %s but %s was expected; the file was damaged in transit, upload it again",
		e.ID, e.Got, e.Want)
}

// ErrUploadComplete refuses appends to an upload already completed.
var ErrUploadComplete = errors.New("upload is already complete")

var (
	idRe     = regexp.MustCompile(`^[0-9a-f]{32}$`)
	sha256Re = regexp.MustCompile(`^[0-9a-f]{64}$`)
	unsafeRe = regexp.MustCompile(`[^A-Za-z0-9._-]+`)
)

// NewUploads keeps uploads under root and refuses any larger than maxBytes.
func NewUploads(root string, maxBytes int64) (*Uploads, error) {
	if maxBytes <= 0 {
		return nil, fmt.Errorf("upload limit must be positive, got %d", maxBytes)
	}
	if err := os.MkdirAll(root, 0o700); err != nil {
		return nil, fmt.Errorf("create upload directory: %w", err)
	}
	return &Uploads{root: root, maxBytes: maxBytes, now: time.Now, locks: map[string]*sync.Mutex{}}, nil
}

// Create starts an upload of size bytes. sha256hex, if not empty, is checked
// by Complete.
func (u *Uploads) Create(name string, size int64, sha256hex string) (Upload, error) {
	if size <= 0 {
		return Upload{}, &model.ValidationError{Field: "size", Rule: "must be the file's size in bytes, more than 0"}
	}
	if size > u.maxBytes {
		return Upload{}, &UploadTooLargeError{Size: size, Limit: u.maxBytes, What: "the server limit"}
	}
	sha256hex = strings.ToLower(strings.TrimSpace(sha256hex))
	if sha256hex != "" && !sha256Re.MatchString(sha256hex) {
		return Upload{}, &model.ValidationError{Field: "sha256", Rule: "must be 64 hexadecimal digits"}
	}
	var raw [16]byte
	if _, err := rand.Read(raw[:]); err != nil {
		return Upload{}, fmt.Errorf("upload id: %w", err)
	}
	now := u.now().UTC()
	up := Upload{ID: hex.EncodeToString(raw[:]), Name: sanitizeName(name), Size: size,
		SHA256: sha256hex, CreatedAt: now, UpdatedAt: now}
	f, err := os.OpenFile(u.partPath(up.ID), os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	if err != nil {
		return Upload{}, fmt.Errorf("create upload: %w", err)
	}
	_ = f.Close()
	if err := u.writeMeta(up); err != nil {
		_ = os.Remove(u.partPath(up.ID))
		return Upload{}, err
	}
	slog.Info("upload created", "id", up.ID, "name", up.Name, "size", size)
	return up, nil
}

// Append writes r at offset, which must equal the bytes already held. It
// returns the new offset even on error: what arrived before a broken
// connection is kept, and the client resumes from there.
func (u *Uploads) Append(id string, offset int64, r io.Reader) (int64, error) {
	unlock, err := u.lock(id)
	if err != nil {
		return 0, err
	}
	defer unlock()
	up, err := u.readMeta(id)
	if err != nil {
		return 0, err
	}
	if up.Complete {
		return up.Size, fmt.Errorf("upload %s: %w", id, ErrUploadComplete)
	}
	held, err := u.held(id)
	if err != nil {
		return 0, err
	}
	if offset != held {
		return held, &OffsetMismatchError{ID: id, Expected: held, Got: offset}
	}
	f, err := os.OpenFile(u.partPath(id), os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		return held, fmt.Errorf("open upload %s: %w", id, err)
	}
	room := up.Size - held
	n, copyErr := io.Copy(f, io.LimitReader(r, room))
	syncErr := f.Sync()
	closeErr := f.Close()
	newOffset := held + n
	// One byte more than the declared size means the client lies about
	// the file; the bytes up to the size are still good.
	var extra [1]byte
	if copyErr == nil && n == room {
		if m, _ := io.ReadFull(r, extra[:]); m > 0 {
			copyErr = &UploadTooLargeError{ID: id, Size: up.Size + 1, Limit: up.Size, What: "the declared size"}
		}
	}
	up.Offset, up.UpdatedAt = newOffset, u.now().UTC()
	if err := u.writeMeta(up); err != nil {
		return newOffset, err
	}
	if err := errors.Join(copyErr, syncErr, closeErr); err != nil {
		var tooLarge *UploadTooLargeError
		if errors.As(err, &tooLarge) {
			return newOffset, tooLarge
		}
		return newOffset, fmt.Errorf("upload %s: receive chunk at offset %d: %w", id, offset, err)
	}
	return newOffset, nil
}

// Status reports an upload, with the offset the client must resume from.
func (u *Uploads) Status(id string) (Upload, error) {
	unlock, err := u.lock(id)
	if err != nil {
		return Upload{}, err
	}
	defer unlock()
	up, err := u.readMeta(id)
	if err != nil {
		return Upload{}, err
	}
	if !up.Complete {
		// The part file is the truth: metadata may lag after a crash
		// between a write and its metadata update.
		if up.Offset, err = u.held(id); err != nil {
			return Upload{}, err
		}
	}
	return up, nil
}

// Complete checks size and checksum and returns the path of the file. It is
// idempotent: completing twice returns the same path.
func (u *Uploads) Complete(id string) (string, error) {
	unlock, err := u.lock(id)
	if err != nil {
		return "", err
	}
	defer unlock()
	up, err := u.readMeta(id)
	if err != nil {
		return "", err
	}
	final := filepath.Join(u.root, id, up.Name)
	if up.Complete {
		return final, nil
	}
	held, err := u.held(id)
	if err != nil {
		return "", err
	}
	if held != up.Size {
		return "", &UploadIncompleteError{ID: id, Offset: held, Size: up.Size}
	}
	if up.SHA256 != "" {
		got, err := fileSHA256(u.partPath(id))
		if err != nil {
			return "", err
		}
		if got != up.SHA256 {
			return "", &ChecksumError{ID: id, Want: up.SHA256, Got: got}
		}
	}
	if err := os.MkdirAll(filepath.Dir(final), 0o700); err != nil {
		return "", fmt.Errorf("complete upload %s: %w", id, err)
	}
	if err := os.Rename(u.partPath(id), final); err != nil {
		return "", fmt.Errorf("complete upload %s: %w", id, err)
	}
	up.Offset, up.Complete, up.UpdatedAt = held, true, u.now().UTC()
	if err := u.writeMeta(up); err != nil {
		return "", err
	}
	slog.Info("upload complete", "id", id, "name", up.Name, "size", up.Size)
	return final, nil
}

// Remove deletes an upload and its file, complete or not.
func (u *Uploads) Remove(id string) error {
	unlock, err := u.lock(id)
	if err != nil {
		return err
	}
	defer unlock()
	return u.remove(id)
}

func (u *Uploads) remove(id string) error {
	return errors.Join(
		ignoreNotExist(os.Remove(u.partPath(id))),
		ignoreNotExist(os.RemoveAll(filepath.Join(u.root, id))),
		ignoreNotExist(os.Remove(u.metaPath(id))),
	)
}

// Cleanup removes uploads not touched for olderThan: abandoned ones, and
// completed ones whose build never came to take them. It returns how many
// were removed.
func (u *Uploads) Cleanup(olderThan time.Duration) (int, error) {
	entries, err := os.ReadDir(u.root)
	if err != nil {
		return 0, fmt.Errorf("list uploads: %w", err)
	}
	cutoff := u.now().Add(-olderThan)
	removed := 0
	var errs []error
	for _, e := range entries {
		id, ok := strings.CutSuffix(e.Name(), ".json")
		if !ok || !idRe.MatchString(id) {
			continue
		}
		unlock, err := u.lock(id)
		if err != nil {
			continue
		}
		up, err := u.readMeta(id)
		if err == nil && up.UpdatedAt.Before(cutoff) {
			if err := u.remove(id); err != nil {
				errs = append(errs, err)
			} else {
				removed++
			}
		}
		unlock()
	}
	if removed > 0 {
		slog.Info("stale uploads removed", "count", removed, "older_than", olderThan)
	}
	return removed, errors.Join(errs...)
}

func (u *Uploads) lock(id string) (func(), error) {
	// The id becomes a file name: only our own format may pass.
	if !idRe.MatchString(id) {
		return nil, fmt.Errorf("upload %q: %w", id, ErrUploadNotFound)
	}
	u.mu.Lock()
	m, ok := u.locks[id]
	if !ok {
		m = &sync.Mutex{}
		u.locks[id] = m
	}
	u.mu.Unlock()
	m.Lock()
	return m.Unlock, nil
}

func (u *Uploads) partPath(id string) string { return filepath.Join(u.root, id+".part") }
func (u *Uploads) metaPath(id string) string { return filepath.Join(u.root, id+".json") }

func (u *Uploads) held(id string) (int64, error) {
	st, err := os.Stat(u.partPath(id))
	if err != nil {
		return 0, fmt.Errorf("upload %s: %w", id, err)
	}
	return st.Size(), nil
}

func (u *Uploads) readMeta(id string) (Upload, error) {
	data, err := os.ReadFile(u.metaPath(id))
	if errors.Is(err, os.ErrNotExist) {
		return Upload{}, fmt.Errorf("upload %s: %w", id, ErrUploadNotFound)
	}
	if err != nil {
		return Upload{}, fmt.Errorf("read upload %s: %w", id, err)
	}
	var up Upload
	if err := json.Unmarshal(data, &up); err != nil {
		return Upload{}, fmt.Errorf("read upload %s: %w", id, err)
	}
	return up, nil
}

// writeMeta replaces the metadata atomically, so a crash leaves the old or
// the new state, never half of one.
func (u *Uploads) writeMeta(up Upload) error {
	data, err := json.Marshal(up)
	if err != nil {
		return fmt.Errorf("write upload %s: %w", up.ID, err)
	}
	tmp := u.metaPath(up.ID) + ".tmp"
	if err := os.WriteFile(tmp, data, 0o600); err != nil {
		return fmt.Errorf("write upload %s: %w", up.ID, err)
	}
	if err := os.Rename(tmp, u.metaPath(up.ID)); err != nil {
		return fmt.Errorf("write upload %s: %w", up.ID, err)
	}
	return nil
}

// sanitizeName keeps a name usable as one file name: the extension matters
// (app.jar) but directories and odd characters do not.
func sanitizeName(name string) string {
	name = filepath.Base(strings.ReplaceAll(name, `\`, "/"))
	name = unsafeRe.ReplaceAllString(name, "_")
	name = strings.TrimLeft(name, ".")
	if len(name) > 128 {
		name = name[len(name)-128:]
	}
	if name == "" || name == "_" {
		return "upload"
	}
	return name
}

func fileSHA256(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", fmt.Errorf("checksum: %w", err)
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", fmt.Errorf("checksum: %w", err)
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

func ignoreNotExist(err error) error {
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	return err
}

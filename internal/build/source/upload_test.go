package source

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/berth-platform/berth/internal/model"
)

// brokenReader delivers n bytes and then fails like a dropped connection.
type brokenReader struct {
	data []byte
	n    int
}

func (b *brokenReader) Read(p []byte) (int, error) {
	if b.n == 0 {
		return 0, errors.New("connection reset by peer")
	}
	k := copy(p, b.data[:min(len(b.data), b.n)])
	b.data, b.n = b.data[k:], b.n-k
	return k, nil
}

func TestUploadResumes(t *testing.T) {
	u, err := NewUploads(t.TempDir(), 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	data := bytes.Repeat([]byte("0123456789"), 1000) // 10,000 bytes
	sum := sha256.Sum256(data)
	up, err := u.Create("../../My App (1).jar", int64(len(data)), hex.EncodeToString(sum[:]))
	if err != nil {
		t.Fatal(err)
	}
	if up.Name != "My_App_1_.jar" || up.Offset != 0 || up.Size != 10000 {
		t.Fatalf("created %+v", up)
	}

	off, err := u.Append(up.ID, 0, bytes.NewReader(data[:3000]))
	if err != nil || off != 3000 {
		t.Fatalf("Append = %d, %v", off, err)
	}
	// A client that lost track and resends from the start learns where to resume.
	off, err = u.Append(up.ID, 0, bytes.NewReader(data[:3000]))
	var mismatch *OffsetMismatchError
	if !errors.As(err, &mismatch) || mismatch.Expected != 3000 || off != 3000 {
		t.Fatalf("Append at a stale offset = %d, %v; want an OffsetMismatchError expecting 3000", off, err)
	}
	if !strings.Contains(err.Error(), "resume from offset 3000") {
		t.Fatalf("message %q does not say where to resume", err)
	}
	// The connection drops half-way through a chunk: what arrived is kept.
	off, err = u.Append(up.ID, 3000, &brokenReader{data: data[3000:8000], n: 2500})
	if err == nil || off != 5500 {
		t.Fatalf("broken Append = %d, %v; want 5500 and an error", off, err)
	}
	st, err := u.Status(up.ID)
	if err != nil || st.Offset != 5500 || st.Complete {
		t.Fatalf("Status = %+v, %v", st, err)
	}
	if _, err := u.Complete(up.ID); !isIncomplete(err, 5500) {
		t.Fatalf("Complete of a partial upload = %v", err)
	}
	off, err = u.Append(up.ID, st.Offset, bytes.NewReader(data[st.Offset:]))
	if err != nil || off != 10000 {
		t.Fatalf("resumed Append = %d, %v", off, err)
	}
	path, err := u.Complete(up.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got, _ := os.ReadFile(path); !bytes.Equal(got, data) {
		t.Fatal("completed file differs from what was sent")
	}
	if filepath.Base(path) != "My_App_1_.jar" {
		t.Fatalf("path %s should keep the sanitised name", path)
	}
	if again, err := u.Complete(up.ID); err != nil || again != path {
		t.Fatalf("second Complete = %s, %v", again, err)
	}
	if _, err := u.Append(up.ID, 10000, strings.NewReader("x")); !errors.Is(err, ErrUploadComplete) {
		t.Fatalf("Append after Complete = %v", err)
	}
	if st, _ := u.Status(up.ID); !st.Complete || st.Offset != 10000 {
		t.Fatalf("Status after Complete = %+v", st)
	}

	// State is on disk: another store on the same root sees it.
	u2, _ := NewUploads(u.root, 1<<20)
	if st, err := u2.Status(up.ID); err != nil || !st.Complete {
		t.Fatalf("reopened Status = %+v, %v", st, err)
	}
}

func isIncomplete(err error, offset int64) bool {
	var ie *UploadIncompleteError
	return errors.As(err, &ie) && ie.Offset == offset
}

func TestUploadLimits(t *testing.T) {
	u, err := NewUploads(t.TempDir(), 100)
	if err != nil {
		t.Fatal(err)
	}
	var tooLarge *UploadTooLargeError
	if _, err := u.Create("big.zip", 101, ""); !errors.As(err, &tooLarge) || tooLarge.Limit != 100 {
		t.Fatalf("Create over the limit = %v", err)
	}
	var ve *model.ValidationError
	if _, err := u.Create("x.zip", 0, ""); !errors.As(err, &ve) {
		t.Fatalf("Create of size 0 = %v", err)
	}
	if _, err := u.Create("x.zip", 10, "nothex"); !errors.As(err, &ve) {
		t.Fatalf("Create with a bad sha256 = %v", err)
	}

	up, err := u.Create("x.zip", 10, "")
	if err != nil {
		t.Fatal(err)
	}
	off, err := u.Append(up.ID, 0, strings.NewReader("0123456789EXTRA"))
	if !errors.As(err, &tooLarge) || off != 10 {
		t.Fatalf("Append beyond the declared size = %d, %v", off, err)
	}
	if _, err := u.Complete(up.ID); err != nil {
		t.Fatalf("the declared bytes should still complete: %v", err)
	}
}

func TestUploadChecksum(t *testing.T) {
	u, _ := NewUploads(t.TempDir(), 100)
	sum := sha256.Sum256([]byte("expected"))
	up, err := u.Create("x.tgz", 8, hex.EncodeToString(sum[:]))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := u.Append(up.ID, 0, strings.NewReader("tampered")); err != nil {
		t.Fatal(err)
	}
	var ce *ChecksumError
	if _, err := u.Complete(up.ID); !errors.As(err, &ce) {
		t.Fatalf("Complete with a wrong checksum = %v", err)
	}
}

func TestUploadNotFound(t *testing.T) {
	u, _ := NewUploads(t.TempDir(), 100)
	for _, id := range []string{"../../etc/passwd", "0123456789abcdef0123456789abcdef", ""} {
		if _, err := u.Status(id); !errors.Is(err, model.ErrNotFound) {
			t.Errorf("Status(%q) = %v, want ErrNotFound", id, err)
		}
		if _, err := u.Append(id, 0, strings.NewReader("x")); !errors.Is(err, ErrUploadNotFound) {
			t.Errorf("Append(%q) = %v, want ErrUploadNotFound", id, err)
		}
	}
}

func TestUploadCleanup(t *testing.T) {
	u, _ := NewUploads(t.TempDir(), 100)
	now := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	u.now = func() time.Time { return now }
	old, _ := u.Create("old.zip", 10, "")
	if _, err := u.Append(old.ID, 0, strings.NewReader("01234")); err != nil {
		t.Fatal(err)
	}
	now = now.Add(25 * time.Hour)
	fresh, _ := u.Create("fresh.zip", 10, "")

	n, err := u.Cleanup(24 * time.Hour)
	if err != nil || n != 1 {
		t.Fatalf("Cleanup = %d, %v; want 1 removed", n, err)
	}
	if _, err := u.Status(old.ID); !errors.Is(err, ErrUploadNotFound) {
		t.Fatalf("stale upload still there: %v", err)
	}
	if _, err := u.Status(fresh.ID); err != nil {
		t.Fatalf("fresh upload removed: %v", err)
	}
	entries, _ := os.ReadDir(u.root)
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), old.ID) {
			t.Fatalf("left behind %s", e.Name())
		}
	}
}

func TestUploadConcurrentAppendsSerialise(t *testing.T) {
	u, _ := NewUploads(t.TempDir(), 1<<20)
	up, _ := u.Create("x.zip", 2000, "")
	errs := make(chan error, 2)
	for range 2 {
		go func() {
			_, err := u.Append(up.ID, 0, bytes.NewReader(bytes.Repeat([]byte("a"), 1000)))
			errs <- err
		}()
	}
	var mismatches int
	for range 2 {
		var m *OffsetMismatchError
		if err := <-errs; errors.As(err, &m) {
			mismatches++
		} else if err != nil {
			t.Fatal(err)
		}
	}
	if st, _ := u.Status(up.ID); mismatches != 1 || st.Offset != 1000 {
		t.Fatalf("two appends at offset 0: %d mismatches, offset %d; want exactly one accepted", mismatches, st.Offset)
	}
}

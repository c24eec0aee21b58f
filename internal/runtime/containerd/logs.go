package containerd

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	rt "github.com/berth-platform/berth/internal/runtime"
)

// Instance logs are plain files written by the containerd shim: it opens
// the file with O_APPEND (verified for Debian's 1.6 shim by
// TestLogRotation, which reads the shim's fdinfo) and keeps writing to it
// while berth restarts. Berth never holds the writing end, so rotation
// cannot be rename-and-reopen; it has to shorten the file in place:
//
//   - The prefix to drop is copied to <log>.1 (via a temporary file and a
//     rename, so readers always see a complete .1), then removed from the
//     front of the file with fallocate(FALLOC_FL_COLLAPSE_RANGE). That is
//     atomic with respect to the shim's appends, so nothing is lost. It
//     needs a block-aligned length and ext4 or XFS.
//   - Elsewhere (tmpfs, overlay) it falls back to copy-truncate, which is
//     correct only because the shim appends: after the truncation its next
//     write lands at the new end instead of leaving a hole. Lines written
//     between the copy and the truncation are lost.
//
// Followers in this process must not be confused by the shortened file:
// rotation and reads of one file exclude each other through a per-path
// lock, and each rotation bumps a generation counter together with the
// number of bytes removed, from which a follower recomputes its offset
// (and first reads the part it had not seen from the new .1). Only one
// rotated file is kept, so a follower that falls more than one rotation
// behind (a consumer that stops reading for a whole rotation interval)
// loses the lines in between and resumes at the next whole line.
//
// When an instance's container is replaced, Run moves its log to
// <instance>.previous.log (what `logs --previous` shows) and drops the old
// .1; followers of the old file see the replacement and end.

// DefaultLogMaxSize is the size at which RotateLogs rotates a log.
const DefaultLogMaxSize = 10 << 20

// PreviousLogPath is where the log of an instance's previous container is
// kept: "<dir>/<name>.previous.log" for "<dir>/<name>.log".
func PreviousLogPath(path string) string {
	return strings.TrimSuffix(path, ".log") + ".previous.log"
}

// RotatedLogPath is the one rotated generation kept: "<log>.1".
func RotatedLogPath(path string) string { return path + ".1" }

// logState coordinates rotation and readers of one file in this process.
type logState struct {
	mu      sync.RWMutex
	gen     uint64 // rotations so far
	removed int64  // bytes the last rotation removed from the front
}

var logStates sync.Map // cleaned path -> *logState

func stateOf(path string) *logState {
	s, _ := logStates.LoadOrStore(filepath.Clean(path), &logState{})
	return s.(*logState)
}

// preserveLog keeps an existing log of the instance as its previous log,
// then creates the new one owner-only: the shim opens an existing file
// without changing its mode, and an instance's output may carry secrets.
func preserveLog(path string) error {
	st := stateOf(path)
	st.mu.Lock()
	defer st.mu.Unlock()
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return fmt.Errorf("log directory: %w", err)
	}
	_ = os.Remove(RotatedLogPath(path))
	if err := keepPrevious(path); err != nil {
		return err
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		return fmt.Errorf("create log: %w", err)
	}
	return f.Close()
}

func keepPrevious(path string) error {
	fi, err := os.Stat(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("log: %w", err)
	}
	if fi.Size() == 0 {
		return os.Remove(path)
	}
	if err := os.Rename(path, PreviousLogPath(path)); err != nil {
		return fmt.Errorf("keep previous log: %w", err)
	}
	return nil
}

// RotateLog rotates path when it is at least maxSize bytes: the older part
// goes to <path>.1 (replacing the previous .1), the file keeps its newest
// part (less than one file-system block) and keeps receiving output. It
// reports whether it rotated.
func RotateLog(path string, maxSize int64) (bool, error) {
	if maxSize <= 0 {
		maxSize = DefaultLogMaxSize
	}
	st := stateOf(path)
	st.mu.Lock()
	defer st.mu.Unlock()

	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if errors.Is(err, os.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("rotate %s: %w", path, err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return false, fmt.Errorf("rotate %s: %w", path, err)
	}
	size := fi.Size()
	if size < maxSize {
		return false, nil
	}

	var fs unix.Statfs_t
	block := int64(4096)
	if unix.Fstatfs(int(f.Fd()), &fs) == nil && fs.Bsize > 0 {
		block = fs.Bsize
	}
	// Collapse must stop short of EOF and be block aligned.
	n := size / block * block
	if n == size {
		n -= block
	}
	if n > 0 {
		if err := copyPrefix(f, RotatedLogPath(path), n); err != nil {
			return false, fmt.Errorf("rotate %s: %w", path, err)
		}
		if err := unix.Fallocate(int(f.Fd()), unix.FALLOC_FL_COLLAPSE_RANGE, 0, n); err == nil {
			st.gen, st.removed = st.gen+1, n
			return true, nil
		}
	}

	// Copy-truncate: copy all there is now, then truncate.
	fi, err = f.Stat()
	if err != nil {
		return false, fmt.Errorf("rotate %s: %w", path, err)
	}
	if err := copyPrefix(f, RotatedLogPath(path), fi.Size()); err != nil {
		return false, fmt.Errorf("rotate %s: %w", path, err)
	}
	if fi2, err := f.Stat(); err == nil {
		// What arrived between copy and truncate is lost; say how much was
		// removed so followers land at 0.
		size = fi2.Size()
	}
	if err := f.Truncate(0); err != nil {
		return false, fmt.Errorf("rotate %s: truncate: %w", path, err)
	}
	st.gen, st.removed = st.gen+1, size
	return true, nil
}

// copyPrefix writes the first n bytes of f to dst atomically (temp+rename).
func copyPrefix(f *os.File, dst string, n int64) error {
	tmp, err := os.CreateTemp(filepath.Dir(dst), filepath.Base(dst)+".tmp*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := io.Copy(tmp, io.NewSectionReader(f, 0, n)); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), dst)
}

// RotateLogs rotates every "*.log" in dir (not the previous logs) that has
// reached maxSize.
func RotateLogs(dir string, maxSize int64) error {
	paths, err := filepath.Glob(filepath.Join(dir, "*.log"))
	if err != nil {
		return err
	}
	var errs []error
	for _, p := range paths {
		if strings.HasSuffix(p, ".previous.log") {
			continue
		}
		if _, err := RotateLog(p, maxSize); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// LogRotator runs RotateLogs periodically.
type LogRotator struct {
	Dir      string
	MaxSize  int64         // default DefaultLogMaxSize
	Interval time.Duration // default 10s
	Logger   *slog.Logger
}

// Run rotates until ctx ends.
func (r LogRotator) Run(ctx context.Context) {
	if r.Interval <= 0 {
		r.Interval = 10 * time.Second
	}
	if r.Logger == nil {
		r.Logger = slog.Default()
	}
	t := time.NewTicker(r.Interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if err := RotateLogs(r.Dir, r.MaxSize); err != nil {
			r.Logger.Warn("log rotation", "dir", r.Dir, "err", err)
		}
	}
}

// OpenLog opens an instance log for reading. See OpenLogContext.
func OpenLog(path string, opts rt.LogOptions) (io.ReadCloser, error) {
	return OpenLogContext(context.Background(), path, opts)
}

// OpenLogContext opens the instance log at path: with Previous the log of
// the instance's previous container, else the rotated part and the current
// file as one stream. Tail limits it to the last N lines. Follow keeps the
// stream open for new output, across rotations, until Close, until ctx
// ends or until the instance's container is replaced (then it ends with
// io.EOF after the last line of the old file).
func OpenLogContext(ctx context.Context, path string, opts rt.LogOptions) (io.ReadCloser, error) {
	if opts.Previous {
		f, err := os.Open(PreviousLogPath(path))
		if err != nil {
			return nil, fmt.Errorf("previous log: %w", err)
		}
		r := &logReader{ctx: ctx, path: PreviousLogPath(path), cur: f, closed: make(chan struct{})}
		r.state = &logState{}
		if opts.Tail > 0 {
			fi, err := f.Stat()
			if err != nil {
				f.Close()
				return nil, err
			}
			start, err := tailStart([]io.ReaderAt{f}, []int64{fi.Size()}, opts.Tail)
			if err != nil {
				f.Close()
				return nil, err
			}
			r.off = start
		}
		return r, nil
	}

	st := stateOf(path)
	st.mu.RLock()
	defer st.mu.RUnlock()
	cur, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("log: %w", err)
	}
	r := &logReader{ctx: ctx, path: path, cur: cur, state: st, gen: st.gen, follow: opts.Follow, closed: make(chan struct{})}
	curInfo, err := cur.Stat()
	if err != nil {
		cur.Close()
		return nil, err
	}
	readers, sizes := []io.ReaderAt{}, []int64{}
	var rotated *os.File
	var rotatedSize int64
	if f, err := os.Open(RotatedLogPath(path)); err == nil {
		if fi, err := f.Stat(); err == nil {
			rotated, rotatedSize = f, fi.Size()
			readers, sizes = append(readers, f), append(sizes, rotatedSize)
		} else {
			f.Close()
		}
	}
	readers, sizes = append(readers, cur), append(sizes, curInfo.Size())
	start := int64(0)
	if opts.Tail > 0 {
		if start, err = tailStart(readers, sizes, opts.Tail); err != nil {
			cur.Close()
			if rotated != nil {
				rotated.Close()
			}
			return nil, err
		}
	}
	if rotated != nil && start < rotatedSize {
		r.pending, r.pendingOff, r.pendingEnd = rotated, start, rotatedSize
	} else {
		if rotated != nil {
			rotated.Close()
		}
		r.off = start - rotatedSize
	}
	return r, nil
}

// tailStart finds where the last n lines of the concatenation of files
// begin, scanning backwards in chunks. A final newline does not start an
// empty line.
func tailStart(files []io.ReaderAt, sizes []int64, n int) (int64, error) {
	var total int64
	for _, s := range sizes {
		total += s
	}
	readAt := func(p []byte, off int64) error {
		for i, f := range files {
			if len(p) == 0 {
				break
			}
			if off >= sizes[i] {
				off -= sizes[i]
				continue
			}
			m := min(int64(len(p)), sizes[i]-off)
			if _, err := f.ReadAt(p[:m], off); err != nil {
				return err
			}
			p, off = p[m:], 0
		}
		return nil
	}
	const chunk = 32 << 10
	buf := make([]byte, chunk)
	newlines := 0
	end := total
	for end > 0 {
		begin := max(end-chunk, 0)
		p := buf[:end-begin]
		if err := readAt(p, begin); err != nil {
			return 0, err
		}
		for i := len(p) - 1; i >= 0; i-- {
			if p[i] != '\n' {
				continue
			}
			if begin+int64(i) == total-1 {
				continue // the final newline ends the last line
			}
			newlines++
			if newlines == n {
				return begin + int64(i) + 1, nil
			}
		}
		end = begin
	}
	return 0, nil
}

// logReader streams a log file, optionally following it.
type logReader struct {
	ctx    context.Context
	path   string
	state  *logState
	follow bool

	// pending is a part of the rotated file still to be sent.
	pending                *os.File
	pendingOff, pendingEnd int64

	cur *os.File
	off int64
	gen uint64

	// mu guards the files against Close while a read step runs; it is
	// not held while a follower sleeps.
	mu        sync.Mutex
	closeOnce sync.Once
	closed    chan struct{}
}

// pollInterval is how often a follower looks for new output.
const pollInterval = 200 * time.Millisecond

func (r *logReader) Read(p []byte) (int, error) {
	for {
		n, err, wait := r.step(p)
		if !wait {
			return n, err
		}
		select {
		case <-r.closed:
			return 0, os.ErrClosed
		case <-r.ctx.Done():
			// One last look, then end cleanly.
			r.mu.Lock()
			r.follow = false
			r.mu.Unlock()
		case <-time.After(pollInterval):
		}
	}
}

// step does one read attempt; wait says there is nothing yet and the
// caller should poll again.
func (r *logReader) step(p []byte) (n int, err error, wait bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	select {
	case <-r.closed:
		return 0, os.ErrClosed, false
	default:
	}
	for {
		if r.pending != nil {
			if r.pendingOff < r.pendingEnd {
				m := min(int64(len(p)), r.pendingEnd-r.pendingOff)
				n, err := r.pending.ReadAt(p[:m], r.pendingOff)
				r.pendingOff += int64(n)
				if n > 0 {
					return n, nil, false
				}
				if err != nil && !errors.Is(err, io.EOF) {
					return 0, err, false
				}
			}
			r.pending.Close()
			r.pending = nil
		}
		n, err := r.readCurrent(p)
		if n > 0 || err != nil {
			return n, err, false
		}
		if r.pending == nil {
			break
		}
		// A rotation left a part of .1 to send first.
	}
	if !r.follow {
		return 0, io.EOF, false
	}
	if r.replaced() {
		// Drain what the old file got before it was replaced.
		if n, _ := r.cur.ReadAt(p, r.off); n > 0 {
			r.off += int64(n)
			return n, nil, false
		}
		return 0, io.EOF, false
	}
	return 0, nil, true
}

// readCurrent reads from the current file under the rotation lock, first
// adjusting the offset if rotations happened since the last read.
func (r *logReader) readCurrent(p []byte) (int, error) {
	r.state.mu.RLock()
	defer r.state.mu.RUnlock()
	if r.state.gen != r.gen && r.replaced() {
		// The rotations were of the instance's next log, not of the file
		// being read, which is finished: read it to its end.
		r.gen = r.state.gen
	}
	if r.state.gen != r.gen {
		if r.state.gen == r.gen+1 {
			removed := r.state.removed
			if r.off < removed {
				if f, err := os.Open(RotatedLogPath(r.path)); err == nil {
					end := removed
					if fi, err := f.Stat(); err == nil {
						end = min(end, fi.Size())
					}
					if r.off < end {
						r.pending, r.pendingOff, r.pendingEnd = f, r.off, end
					} else {
						f.Close()
					}
				}
				r.off = 0
			} else {
				r.off -= removed
			}
		} else {
			// Several rotations since the last look (a consumer far
			// behind): what they removed is gone. Resume at the first
			// whole line of the current file.
			r.off = firstLineStart(r.cur)
		}
		r.gen = r.state.gen
		if r.pending != nil {
			return 0, nil
		}
	}
	fi, err := r.cur.Stat()
	if err != nil {
		return 0, err
	}
	if fi.Size() < r.off {
		r.off = 0 // truncated by someone else
	}
	if r.off >= fi.Size() {
		return 0, nil
	}
	m := min(int64(len(p)), fi.Size()-r.off)
	n, err := r.cur.ReadAt(p[:m], r.off)
	r.off += int64(n)
	if errors.Is(err, io.EOF) {
		err = nil
	}
	return n, err
}

// firstLineStart is the offset after the first newline of f (0 if there
// is none in the first 64 KiB): a rotated file may begin mid-line.
func firstLineStart(f *os.File) int64 {
	buf := make([]byte, 64<<10)
	n, _ := f.ReadAt(buf, 0)
	if i := bytes.IndexByte(buf[:n], '\n'); i >= 0 {
		return int64(i + 1)
	}
	return 0
}

// replaced reports whether path now names another file than the one being
// read (the instance's container was replaced).
func (r *logReader) replaced() bool {
	a, err := os.Stat(r.path)
	if err != nil {
		return true
	}
	b, err := r.cur.Stat()
	return err != nil || !os.SameFile(a, b)
}

func (r *logReader) Close() error {
	r.closeOnce.Do(func() {
		close(r.closed)
		r.mu.Lock()
		defer r.mu.Unlock()
		r.cur.Close()
		if r.pending != nil {
			r.pending.Close()
		}
	})
	return nil
}

package containerd

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	rt "github.com/berth-platform/berth/internal/runtime"
)

// appendWriter writes numbered lines to path with O_APPEND, like the shim.
func appendWriter(t *testing.T, path string, from, to int, every time.Duration) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for i := from; i < to; i++ {
		if _, err := fmt.Fprintf(f, "n=%d %s\n", i, strings.Repeat("x", 90)); err != nil {
			t.Error(err)
			return
		}
		if every > 0 && i%20 == 0 {
			time.Sleep(every)
		}
	}
}

// readNumbers collects the n= numbers of every line from r until EOF.
func readNumbers(t *testing.T, r io.Reader) []int {
	t.Helper()
	var nums []int
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, "n=") {
			t.Errorf("garbled line %q", line)
			continue
		}
		n, err := strconv.Atoi(strings.Fields(line)[0][2:])
		if err != nil {
			t.Errorf("garbled line %q", line)
			continue
		}
		nums = append(nums, n)
	}
	if err := sc.Err(); err != nil {
		t.Errorf("read: %v", err)
	}
	return nums
}

func checkConsecutive(t *testing.T, nums []int, from, to int) {
	t.Helper()
	if len(nums) == 0 {
		t.Fatalf("no lines, want %d..%d", from, to-1)
	}
	for i, n := range nums {
		if n != from+i {
			t.Fatalf("line %d is n=%d, want n=%d (gap or duplicate); first %d last %d of %d", i, n, from+i, nums[0], nums[len(nums)-1], len(nums))
		}
	}
	if last := nums[len(nums)-1]; last != to-1 {
		t.Fatalf("last line n=%d, want %d", last, to-1)
	}
}

// TestLogRotationFollowInProcess rotates a file under a follower while a
// writer appends, in every file system variant available.
func TestLogRotationFollowInProcess(t *testing.T) {
	dirs := map[string]string{"ext4 or similar (collapse range)": t.TempDir()}
	if st, err := os.Stat("/dev/shm"); err == nil && st.IsDir() {
		d, err := os.MkdirTemp("/dev/shm", "bt-logs-")
		if err == nil {
			t.Cleanup(func() { os.RemoveAll(d) })
			dirs["tmpfs (copy-truncate)"] = d
		}
	}
	for name, dir := range dirs {
		t.Run(name, func(t *testing.T) {
			path := filepath.Join(dir, "inst.log")
			appendWriter(t, path, 0, 100, 0)
			ctx, cancel := context.WithCancel(context.Background())
			r, err := OpenLogContext(ctx, path, rt.LogOptions{Follow: true})
			if err != nil {
				t.Fatal(err)
			}
			defer r.Close()
			got := make(chan []int, 1)
			go func() { got <- readNumbers(t, r) }()

			const total = 6000
			var wg sync.WaitGroup
			// ~200 KB/s for ~3s, rotated at 32 KiB checked every 250 ms:
			// a rotation per check, never two within a follower's poll.
			wg.Go(func() { appendWriter(t, path, 100, total, 10*time.Millisecond) })
			rotations := 0
			done := make(chan struct{})
			go func() { wg.Wait(); close(done) }()
		loop:
			for {
				select {
				case <-done:
					break loop
				case <-time.After(250 * time.Millisecond):
				}
				ok, err := RotateLog(path, 32<<10)
				if err != nil {
					t.Fatal(err)
				}
				if ok {
					rotations++
				}
			}
			if rotations < 3 {
				t.Fatalf("only %d rotations", rotations)
			}
			time.Sleep(3 * pollInterval)
			cancel()
			nums := <-got
			t.Logf("%d rotations, %d lines followed", rotations, len(nums))
			if strings.Contains(name, "copy-truncate") {
				// Lines between copy and truncate may be lost; order holds.
				for i := 1; i < len(nums); i++ {
					if nums[i] <= nums[i-1] {
						t.Fatalf("out of order at %d: %d after %d", i, nums[i], nums[i-1])
					}
				}
				if nums[0] != 0 || nums[len(nums)-1] != total-1 {
					t.Fatalf("first %d last %d", nums[0], nums[len(nums)-1])
				}
				return
			}
			checkConsecutive(t, nums, 0, total)

			// Tail across .1 and the current file.
			for _, n := range []int{1, 5, 400} {
				r, err := OpenLog(path, rt.LogOptions{Tail: n})
				if err != nil {
					t.Fatal(err)
				}
				nums := readNumbers(t, r)
				r.Close()
				if len(nums) != n {
					t.Fatalf("tail %d gave %d lines", n, len(nums))
				}
				checkConsecutive(t, nums, total-n, total)
			}
			// The writer may have finished after the last periodic check.
			if _, err := RotateLog(path, 32<<10); err != nil {
				t.Fatal(err)
			}
			st, _ := os.Stat(path)
			if st.Size() >= 32<<10+4096 {
				t.Fatalf("log is %d bytes after rotation", st.Size())
			}
		})
	}
}

func TestTailStart(t *testing.T) {
	dir := t.TempDir()
	write := func(name, s string) *os.File {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
		f, err := os.Open(p)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { f.Close() })
		return f
	}
	a := write("a", "one\ntwo\nth")
	b := write("b", "ree\nfour\n")
	files := []io.ReaderAt{a, b}
	sizes := []int64{int64(len("one\ntwo\nth")), int64(len("ree\nfour\n"))}
	all := "one\ntwo\nthree\nfour\n"
	for n, want := range map[int]string{1: "four\n", 2: "three\nfour\n", 3: "two\nthree\nfour\n", 4: all, 10: all} {
		start, err := tailStart(files, sizes, n)
		if err != nil {
			t.Fatal(err)
		}
		if got := all[start:]; got != want {
			t.Errorf("tail %d = %q, want %q", n, got, want)
		}
	}
	c := write("c", "no newline at end")
	if start, _ := tailStart([]io.ReaderAt{c}, []int64{17}, 1); start != 0 {
		t.Errorf("partial last line: start %d", start)
	}
}

// TestContainerLogs runs a container that writes steadily and checks what
// the shim does with the file, tail, follow through rotation, the previous
// log and that a follower ends when the container is replaced.
func TestContainerLogs(t *testing.T) {
	env := newEnv(t)
	ref := env.pullBusybox(t)
	ctx := context.Background()
	path := env.logPath("chatty")
	const lines = 4000
	script := fmt.Sprintf(`i=0; while [ $i -lt %d ]; do echo "n=$i %s"; i=$((i+1)); [ $((i%%50)) = 0 ] && usleep 25000; done; echo "n=done"; exec sleep 300`, lines, strings.Repeat("y", 90))
	r := env.run(t, ref, "chatty", "sh", "-c", script)

	// The shim writes the log through a descriptor opened with O_APPEND,
	// which is what makes shortening the file in place safe.
	shim := parentPID(t, int(r.PID))
	if flags, ok := fdFlagsFor(shim, path); !ok {
		t.Fatalf("shim %d has no descriptor for %s", shim, path)
	} else if flags&0o2000 == 0 {
		t.Fatalf("shim opened the log without O_APPEND (flags %o)", flags)
	} else {
		t.Logf("shim %d writes %s with flags %o (O_APPEND set)", shim, path, flags)
	}

	fctx, cancel := context.WithCancel(ctx)
	defer cancel()
	follower, err := OpenLogContext(fctx, path, rt.LogOptions{Follow: true})
	if err != nil {
		t.Fatal(err)
	}
	defer follower.Close()
	got := make(chan []string, 1)
	go func() {
		var all []string
		sc := bufio.NewScanner(follower)
		for sc.Scan() {
			all = append(all, sc.Text())
		}
		got <- all
	}()

	rotations := 0
	deadline := time.Now().Add(time.Minute)
	for !strings.Contains(readFile(path), "n=done") {
		if time.Now().After(deadline) {
			t.Fatal("container did not finish writing")
		}
		ok, err := RotateLog(path, 64<<10)
		if err != nil {
			t.Fatal(err)
		}
		if ok {
			rotations++
		}
		time.Sleep(300 * time.Millisecond)
	}
	if rotations == 0 {
		t.Fatal("no rotation happened")
	}
	if _, err := os.Stat(RotatedLogPath(path)); err != nil {
		t.Fatal(err)
	}
	time.Sleep(3 * pollInterval)
	cancel()
	followed := <-got
	if len(followed) == 0 || followed[len(followed)-1] != "n=done" {
		t.Fatalf("follower ended with %q", followed[max(0, len(followed)-1):])
	}
	var nums []int
	for _, l := range followed[:len(followed)-1] {
		n, err := strconv.Atoi(strings.Fields(l)[0][2:])
		if err != nil {
			t.Fatalf("garbled %q", l)
		}
		nums = append(nums, n)
	}
	checkConsecutive(t, nums, 0, lines)
	t.Logf("%d rotations; follower saw all %d lines in order", rotations, len(followed))

	tail, err := OpenLog(path, rt.LogOptions{Tail: 3})
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(tail)
	tail.Close()
	tl := strings.Split(strings.TrimSuffix(string(b), "\n"), "\n")
	if len(tl) != 3 || tl[2] != "n=done" || !strings.HasPrefix(tl[1], fmt.Sprintf("n=%d ", lines-1)) {
		t.Fatalf("tail 3: %q", tl)
	}

	// Replace the instance's container: the follower of the old log ends,
	// the old log becomes the previous log.
	f2, err := OpenLog(path, rt.LogOptions{Follow: true, Tail: 1})
	if err != nil {
		t.Fatal(err)
	}
	ended := make(chan string, 1)
	go func() { b, _ := io.ReadAll(f2); ended <- string(b) }()
	if err := env.engine.Stop(ctx, "chatty", 0); err != nil {
		t.Fatal(err)
	}
	env.run(t, ref, "chatty", "sh", "-c", "echo second life; exec sleep 300")
	select {
	case s := <-ended:
		if s != "n=done\n" {
			t.Fatalf("old follower read %d bytes: %q", len(s), clip(s))
		}
	case <-time.After(10 * time.Second):
		t.Fatal("follower of the replaced log did not end")
	}
	f2.Close()
	waitLog(t, path, "second life", 10*time.Second)
	prev, err := OpenLog(path, rt.LogOptions{Previous: true, Tail: 2})
	if err != nil {
		t.Fatal(err)
	}
	b, _ = io.ReadAll(prev)
	prev.Close()
	if !strings.HasSuffix(string(b), "n=done\n") || strings.Count(string(b), "\n") != 2 {
		t.Fatalf("previous tail 2: %q", clip(string(b)))
	}
	if _, err := os.Stat(RotatedLogPath(path)); !os.IsNotExist(err) {
		t.Fatalf("old .1 should be gone: %v", err)
	}
	if cur := readFile(path); cur != "second life\n" {
		t.Fatalf("current log %q", clip(cur))
	}
	if err := RotateLogs(filepath.Dir(path), 1<<20); err != nil {
		t.Fatal(err)
	}
}

func parentPID(t *testing.T, pid int) int {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		t.Fatal(err)
	}
	s := string(b)
	fields := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	ppid, _ := strconv.Atoi(fields[1])
	return ppid
}

// fdFlagsFor finds a descriptor of pid open on path and returns its flags.
func fdFlagsFor(pid int, path string) (int64, bool) {
	fds, _ := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	for _, fd := range fds {
		target, err := os.Readlink(fmt.Sprintf("/proc/%d/fd/%s", pid, fd.Name()))
		if err != nil || target != path {
			continue
		}
		info, err := os.ReadFile(fmt.Sprintf("/proc/%d/fdinfo/%s", pid, fd.Name()))
		if err != nil {
			continue
		}
		for _, line := range strings.Split(string(info), "\n") {
			if v, ok := strings.CutPrefix(line, "flags:"); ok {
				flags, err := strconv.ParseInt(strings.TrimSpace(v), 8, 64)
				if err == nil {
					return flags, true
				}
			}
		}
	}
	return 0, false
}

// clip keeps failure messages short.
func clip(s string) string {
	if len(s) > 300 {
		return s[:150] + " … " + s[len(s)-150:]
	}
	return s
}

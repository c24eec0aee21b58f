package supervisor

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/berth-platform/berth/internal/testdaemon"
)

// The tests supervise this test binary: run with fakeEnv set, it is a
// fake daemon instead (see fakeDaemon), with "--config FILE" on its
// command line like the real ones.
const fakeEnv = "SUPERVISOR_TEST_FAKE"

func TestMain(m *testing.M) {
	if mode := os.Getenv(fakeEnv); mode != "" {
		fakeDaemon(mode)
		return
	}
	os.Exit(m.Run())
}

// fakeDaemon behaves as mode says:
//   - fail: writes a line to stderr and exits with status 3;
//   - serve: runs until signalled;
//   - group: starts a descendant (mode serve, its pid in DIR/descendant.pid)
//     and runs until signalled;
//   - stubborn: ignores SIGTERM and runs until killed.
func fakeDaemon(mode string) {
	fs := flag.NewFlagSet("fake", flag.ExitOnError)
	config := fs.String("config", "", "")
	_ = fs.Parse(os.Args[1:])
	fmt.Printf("fake daemon %d: %s\n", os.Getpid(), mode)
	switch mode {
	case "fail":
		fmt.Fprintln(os.Stderr, "fake: boom-marker: cannot start", strings.Join(os.Args[1:], " "))
		os.Exit(3)
	case "group":
		cmd := exec.Command(os.Args[0], os.Args[1:]...)
		cmd.Env = append(os.Environ(), fakeEnv+"=serve")
		if err := cmd.Start(); err != nil {
			os.Exit(4)
		}
		pidFile := filepath.Join(filepath.Dir(*config), "descendant.pid")
		_ = os.WriteFile(pidFile, []byte(strconv.Itoa(cmd.Process.Pid)), 0o644)
	case "stubborn":
		signal.Ignore(syscall.SIGTERM)
	}
	time.Sleep(10 * time.Minute)
}

// fakeConfig is a Config that runs the fake daemon in mode in dir, ready
// as soon as it runs.
func fakeConfig(dir, mode string) Config {
	conf := filepath.Join(dir, "fake.conf")
	return Config{
		Name:    "fake",
		Binary:  os.Args[0],
		Args:    []string{"--config", conf},
		Env:     append(os.Environ(), fakeEnv+"="+mode),
		LogPath: filepath.Join(dir, "logs", "fake.log"),
		PidPath: filepath.Join(dir, "fake.pid"),
		OwnArg:  conf,
		Address: filepath.Join(dir, "fake.sock"),
		Ready:   func(ctx context.Context) error { return nil },
	}
}

// scratch is a directory whose cleanup also kills the fakes started in it.
func scratch(t *testing.T) string {
	dir := testdaemon.Dir(t, "sup-")
	if err := os.MkdirAll(filepath.Join(dir, "logs"), 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

// waitFor polls cond for up to timeout.
func waitFor(t *testing.T, what string, timeout time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %s", what, timeout)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

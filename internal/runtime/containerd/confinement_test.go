package containerd

import (
	"context"
	"os"
	"strings"
	"testing"
	"time"
)

// A tenant container runs under the default seccomp profile, with
// no-new-privileges and exactly Docker's default capability set: what its
// own kernel status says, not what the spec was meant to say.
func TestContainerIsConfined(t *testing.T) {
	env := newEnv(t)
	ref := env.pullBusybox(t)
	exits, err := env.engine.Exits(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	const id = "confined"
	_, err = env.engine.Run(context.Background(), InstanceSpec{ID: id, Image: ref, LogPath: env.logPath(id),
		Cmd: []string{"sh", "-c", `grep -E '^(Seccomp|NoNewPrivs|CapBnd|CapEff):' /proc/self/status`}})
	if err != nil {
		t.Fatal(err)
	}
	if ex := waitExit(t, exits, id, 30*time.Second); ex.ExitCode != 0 {
		t.Fatalf("exited %d", ex.ExitCode)
	}
	b, _ := os.ReadFile(env.logPath(id))
	status := parseStatus(string(b))
	// 0xa80425fb: CHOWN DAC_OVERRIDE FOWNER FSETID KILL SETGID SETUID
	// SETPCAP NET_BIND_SERVICE NET_RAW SYS_CHROOT MKNOD AUDIT_WRITE SETFCAP.
	want := map[string]string{"Seccomp": "2", "NoNewPrivs": "1", "CapBnd": "00000000a80425fb", "CapEff": "00000000a80425fb"}
	for k, v := range want {
		if status[k] != v {
			t.Errorf("%s = %q, want %q (status:\n%s)", k, status[k], v, b)
		}
	}
}

func parseStatus(text string) map[string]string {
	out := map[string]string{}
	for _, line := range strings.Split(text, "\n") {
		if k, v, ok := strings.Cut(line, ":"); ok {
			out[k] = strings.TrimSpace(v)
		}
	}
	return out
}

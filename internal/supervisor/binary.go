package supervisor

import (
	"fmt"
	"os"
	"os/exec"
)

// LookBinary finds a daemon's executable: name on PATH, else fallback,
// where packages or berth's install script put it (berth may run with a
// PATH that lacks /usr/local/bin or /usr/sbin).
func LookBinary(name, fallback string) (string, error) {
	if p, err := exec.LookPath(name); err == nil {
		return p, nil
	}
	if _, err := os.Stat(fallback); err == nil {
		return fallback, nil
	}
	return "", fmt.Errorf("%s not found on PATH nor at %s", name, fallback)
}

package source

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
)

// prepareEmptyDir makes sure dir exists and is empty: clones and
// extractions never mix with what was there. created tells emptyDir whether
// to remove dir itself afterwards.
func prepareEmptyDir(dir string) (created bool, err error) {
	entries, err := os.ReadDir(dir)
	switch {
	case errors.Is(err, os.ErrNotExist):
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return false, fmt.Errorf("create directory %s: %w", dir, err)
		}
		return true, nil
	case err != nil:
		return false, fmt.Errorf("read directory %s: %w", dir, err)
	case len(entries) > 0:
		return false, fmt.Errorf("directory %s is not empty; berth fetches and unpacks into a fresh directory", dir)
	}
	return false, nil
}

// emptyDir undoes a failed fetch or extraction, so that a half-written
// tree is never built.
func emptyDir(dir string, created bool) {
	if created {
		_ = os.RemoveAll(dir)
		return
	}
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		_ = os.RemoveAll(filepath.Join(dir, e.Name()))
	}
}

package hub

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestOCIConformance runs the OCI distribution-spec conformance program
// (version 1.1: push, pull, content discovery and management, sha512
// content, referrers) against a fresh hub, as a team that owns the
// repositories. The program is a tool dependency in go.mod, built here by
// the go command from the module cache.
//
// Upload cancel, off by default in the program, is on. Two tests are
// skipped by the program itself, because the hub answers them the way the
// spec allows for a registry that does not do them: a mount without a
// source repository (the hub never looks a blob up across repositories,
// which would let a team reach another team's layers by digest) falls
// back to an ordinary upload. Left at the program's defaults (off): sparse
// manifests (an index whose children were never pushed, which the hub
// refuses like distribution) and tags given as parameters of a push by
// digest.
func TestOCIConformance(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the conformance program")
	}
	bin := filepath.Join(t.TempDir(), "oci-conformance")
	build := exec.Command("go", "build", "-o", bin, "github.com/opencontainers/distribution-spec/conformance")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("building the conformance program: %v\n%s", err, out)
	}
	th := startHub(t, t.TempDir(), nil)
	results := t.TempDir()
	run := exec.Command(bin)
	run.Dir = results
	run.Env = append(os.Environ(),
		"OCI_REGISTRY="+th.host, "OCI_TLS=disabled", "OCI_VERSION=1.1",
		"OCI_REPO1=alpha/conformance1", "OCI_REPO2=alpha/conformance2",
		"OCI_USERNAME=olga", "OCI_PASSWORD=alpha-owner",
		"OCI_RESULTS_DIR="+filepath.Join(results, "results"),
		"OCI_API_REFERRER=true", "OCI_DATA_SHA512=true", "OCI_API_BLOBS_UPLOAD_CANCEL=true", "OCI_LOG=warn")
	out, err := run.CombinedOutput()
	summary := string(out)
	if i := strings.Index(summary, "OCI Conformance Result"); i >= 0 {
		summary = summary[i:]
	}
	if err != nil || !strings.Contains(summary, "OCI Conformance Result: Pass") {
		t.Fatalf("conformance failed (%v):\n%s", err, out)
	}
	t.Logf("%s", summary)
}

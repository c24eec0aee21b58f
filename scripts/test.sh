#!/usr/bin/env bash
# Runs berth's whole test suite, installing what the tests need first (as
# root on Debian/Ubuntu): PostgreSQL for the store suite, containerd, runc,
# CNI plugins and busybox-static for the runtime tests. Prints go test's
# summary and exits non-zero on any failure.
set -euo pipefail

cd "$(dirname "$0")/.."
export DEBIAN_FRONTEND=noninteractive
export PATH="$PATH:/usr/local/go/bin:$HOME/go/bin"
export GOTOOLCHAIN="${GOTOOLCHAIN:-auto}"

step() { printf '==> %s\n' "$*"; }

need=()
command -v go >/dev/null || need+=(golang-go)
# The runtime tests run real containers: containerd, runc, CNI plugins,
# iptables, and busybox-static to build test images from.
# The build tests need git, debootstrap (offline base images) and a JDK (the
# uploaded-jar test compiles one).
for pkg in containerd runc containernetworking-plugins iptables iproute2 busybox-static procps git debootstrap default-jdk-headless; do
  dpkg -s "$pkg" >/dev/null 2>&1 || need+=("$pkg")
done
if [ ${#need[@]} -gt 0 ]; then
  step "Installing ${need[*]}"
  apt-get update -qq && apt-get install -y -qq "${need[@]}" >/dev/null
fi

# BuildKit for the build tests, Pebble (a real ACME server) for the gateway's
# automatic certificates; both from the Go module proxy, pinned.
export GOBIN=/usr/local/bin
command -v buildkitd >/dev/null || { step "Building buildkitd (about 2 minutes)"; go install github.com/moby/buildkit/cmd/buildkitd@v0.18.2 github.com/moby/buildkit/cmd/buildctl@v0.18.2; }
command -v pebble >/dev/null || { step "Building pebble"; go install github.com/letsencrypt/pebble/v2/cmd/pebble@v2.10.1; }
unset GOBIN

PGDIR="$(mktemp -d /tmp/berth-test-pg.XXXXXX)"
cleanup() { scripts/postgres-test.sh stop "$PGDIR" >/dev/null 2>&1 || true; }
trap cleanup EXIT

step "Starting a throwaway PostgreSQL for the store suite"
PGPORT="${BERTH_TEST_PG_PORT:-55432}"
BERTH_TEST_POSTGRES="$(scripts/postgres-test.sh "$PGDIR" "$PGPORT")"
export BERTH_TEST_POSTGRES
echo "    $BERTH_TEST_POSTGRES"

step "Checking format and vet"
unformatted="$(gofmt -l $(git ls-files '*.go' 2>/dev/null || find . -name '*.go'))"
if [ -n "$unformatted" ]; then
  echo "gofmt needed on:" >&2; echo "$unformatted" >&2; exit 1
fi
go vet ./...

step "Running the tests"
set +e
go test -count=1 -timeout 45m "$@" ./... 2>&1 | tee /tmp/berth-test.out
status=${PIPESTATUS[0]}
set -e
echo
pass=$(grep -c '^ok ' /tmp/berth-test.out || true)
fail=$(grep -Ec '^FAIL[[:space:]]' /tmp/berth-test.out || true)
echo "packages: $pass passed, $fail failed"
exit "$status"

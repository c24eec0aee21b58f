#!/usr/bin/env bash
# Installs what berth needs on Debian/Ubuntu (as root), builds berth from this
# clone, starts the all-in-one server and prints the console URL and the
# admin token. Safe to run again: it rebuilds and restarts.
#
#   BERTH_DATA     data directory   (default /var/lib/berth)
#   BERTH_LISTEN   API and console  (default :7070)
set -euo pipefail

cd "$(dirname "$0")/.."
DATA="${BERTH_DATA:-/var/lib/berth}"
LISTEN="${BERTH_LISTEN:-:7070}"
PORT="${LISTEN##*:}"
export DEBIAN_FRONTEND=noninteractive

step() { printf '\033[1m==> %s\033[0m\n' "$*"; }

if [ "$(id -u)" != 0 ]; then
  echo "ERROR: run as root (sudo $0): berth manages containers, networks and mounts." >&2
  exit 1
fi

step "Installing packages"
need=()
# containerd, runc and the CNI plugins run the components; iptables is how
# the bridge plugin masquerades their traffic.
# git fetches sources to build; debootstrap makes the offline base images
# (`berth images prepare`).
for pkg in ca-certificates git curl containerd runc containernetworking-plugins iptables iproute2 debootstrap; do
  dpkg -s "$pkg" >/dev/null 2>&1 || need+=("$pkg")
done
if [ ${#need[@]} -gt 0 ]; then
  apt-get update -qq
  apt-get install -y -qq "${need[@]}" >/dev/null
fi
# berth supervises its own containerd; Debian's system one is not needed.
if command -v systemctl >/dev/null && [ -d /run/systemd/system ]; then
  systemctl disable --now containerd >/dev/null 2>&1 || true
fi

export PATH="$PATH:/usr/local/go/bin:$HOME/go/bin"
if ! command -v go >/dev/null; then
  step "Installing Go (Debian's go fetches the toolchain go.mod asks for)"
  apt-get update -qq && apt-get install -y -qq golang-go >/dev/null
fi
export GOTOOLCHAIN="${GOTOOLCHAIN:-auto}"

if ! command -v buildkitd >/dev/null; then
  step "Building buildkitd and buildctl v0.18.2 (about 2 minutes)"
  GOBIN=/usr/local/bin go install github.com/moby/buildkit/cmd/buildkitd@v0.18.2 github.com/moby/buildkit/cmd/buildctl@v0.18.2
fi

step "Building berth"
go build -trimpath -o /usr/local/bin/berth ./cmd/berth
echo "    /usr/local/bin/berth"

step "Starting berth server (data $DATA, listen $LISTEN)"
mkdir -p "$DATA/logs"
if command -v systemctl >/dev/null && [ -d /run/systemd/system ]; then
  cat >/etc/systemd/system/berth.service <<UNIT
[Unit]
Description=berth all-in-one application platform
After=network-online.target

[Service]
ExecStart=/usr/local/bin/berth server --data $DATA --listen $LISTEN
Restart=always
KillMode=process
LimitNOFILE=1048576

[Install]
WantedBy=multi-user.target
UNIT
  systemctl daemon-reload
  systemctl enable berth >/dev/null 2>&1
  systemctl restart berth
  OUT="journalctl -u berth"
else
  if [ -f "$DATA/berth.lock" ] && pid=$(cat "$DATA/berth.lock" 2>/dev/null) && [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
    kill "$pid"; for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
  fi
  nohup /usr/local/bin/berth server --data "$DATA" --listen "$LISTEN" >"$DATA/logs/server.out" 2>&1 &
  OUT="$DATA/logs/server.out"
fi

for _ in $(seq 150); do
  if curl -fsS "http://127.0.0.1:$PORT/healthz" >/dev/null 2>&1; then break; fi
  sleep 0.2
done
if ! curl -fsS "http://127.0.0.1:$PORT/healthz" >/dev/null 2>&1; then
  echo "ERROR: berth did not become healthy. Start-up output: $OUT" >&2
  [ -f "$DATA/logs/server.out" ] && tail -20 "$DATA/logs/server.out" >&2
  exit 1
fi

[ -f "$DATA/logs/server.out" ] && sed -n '1,40p' "$DATA/logs/server.out"
TOKEN="$(cat "$DATA/admin-token")"
HOST="${LISTEN%:*}"
case "$HOST" in
  ""|0.0.0.0|"[::]") HOST="$(hostname -I 2>/dev/null | awk '{print $1}')" ;;
esac
URL="http://${HOST:-127.0.0.1}:$PORT"
berth login "http://127.0.0.1:$PORT" --token "$TOKEN" >/dev/null
echo
printf '\033[1;32mberth is running.\033[0m\n'
echo "  Console and API: $URL"
echo "  Admin token:     $TOKEN   (also in $DATA/admin-token)"
echo "  The berth CLI is logged in: try 'berth team create demo'."

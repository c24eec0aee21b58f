#!/usr/bin/env bash
# Starts a throwaway PostgreSQL server for the store tests and prints its DSN.
#
#   scripts/postgres-test.sh [DIR [PORT]]   start a cluster in DIR (default: a
#                                           new temporary directory) listening
#                                           on 127.0.0.1:PORT (default 55432)
#   scripts/postgres-test.sh stop DIR       stop that cluster and remove DIR
#
# Typical use:
#   export BERTH_TEST_POSTGRES=$(scripts/postgres-test.sh /tmp/pgtest 55432)
#   go test ./internal/store/
#   scripts/postgres-test.sh stop /tmp/pgtest
#
# Only the DSN goes to stdout; everything else goes to stderr. Running start
# again on a running cluster just prints its DSN again; stop on a missing
# directory does nothing. Installing PostgreSQL (when its server binaries are
# missing) needs root on Debian; as root, the server runs as the postgres
# user, since initdb and postgres refuse to run as root. The cluster trusts
# every connection from loopback: it is for tests only.
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive

# Marks a directory as made by this script, so that stop never removes
# anything else.
readonly MARKER=.berth-postgres-test

log() { printf 'postgres-test: %s\n' "$*" >&2; }
die() {
	log "$*"
	exit 1
}

# bindir prints the newest PostgreSQL server bin directory, if any. The
# client package also creates /usr/lib/postgresql/N/bin, so look for initdb.
bindir() {
	local d best=""
	for d in /usr/lib/postgresql/*/bin; do
		[[ -x $d/initdb && -x $d/pg_ctl && -x $d/postgres ]] || continue
		if [[ -z $best ]] || [[ $(basename "$(dirname "$d")") -gt $(basename "$(dirname "$best")") ]]; then
			best=$d
		fi
	done
	[[ -n $best ]] && printf '%s\n' "$best"
}

install_postgres() {
	[[ $EUID -eq 0 ]] || die "PostgreSQL server binaries are missing and installing them needs root: run as root, or apt-get install postgresql"
	command -v apt-get >/dev/null || die "PostgreSQL server binaries are missing and there is no apt-get to install them"
	log "installing PostgreSQL"
	# Debian's package would create and start a "main" cluster on port 5432;
	# the tests need none, and it would outlive this script.
	mkdir -p /etc/postgresql-common/createcluster.d
	printf 'create_main_cluster = false\n' >/etc/postgresql-common/createcluster.d/berth-postgres-test.conf
	apt-get update -qq >&2 </dev/null
	apt-get install -y -qq --no-install-recommends postgresql >&2 </dev/null
}

# as_pg runs a command as the user that owns the cluster.
as_pg() {
	if [[ $EUID -ne 0 ]]; then
		"$@"
	elif command -v runuser >/dev/null; then
		runuser -u postgres -- "$@"
	else
		su postgres -s /bin/sh -c "$(printf '%q ' "$@")"
	fi
}

dsn() { printf 'postgres://postgres@127.0.0.1:%s/postgres?sslmode=disable\n' "$1"; }

# running_port prints the port of the cluster in data dir $1 if it runs.
running_port() {
	local data=$1 bin=$2
	[[ -f $data/postmaster.pid ]] || return 1
	as_pg "$bin/pg_ctl" -D "$data" status >/dev/null 2>&1 || return 1
	# Line 4 of postmaster.pid is the port.
	sed -n 4p "$data/postmaster.pid"
}

start() {
	local dir=${1:-} port=${2:-55432}
	[[ $port =~ ^[0-9]+$ ]] && ((port > 0 && port < 65536)) || die "port must be a number from 1 to 65535, got '$port'"

	local bin
	bin=$(bindir) || true
	if [[ -z $bin ]]; then
		install_postgres
		bin=$(bindir) || die "no PostgreSQL server binaries under /usr/lib/postgresql/*/bin after installing"
	fi

	if [[ -z $dir ]]; then
		dir=$(mktemp -d "${TMPDIR:-/tmp}/berth-postgres.XXXXXX")
	fi
	mkdir -p "$dir"
	dir=$(cd "$dir" && pwd)
	if [[ ! -f $dir/$MARKER ]]; then
		[[ -z $(ls -A "$dir") ]] || die "$dir is not empty and was not made by this script; give an empty or new directory"
		touch "$dir/$MARKER"
	fi
	if [[ $EUID -eq 0 ]]; then
		id postgres >/dev/null 2>&1 || die "there is no postgres user to run the server as"
		chown -R postgres:postgres "$dir"
		as_pg test -w "$dir" || die "the postgres user cannot write $dir (is a parent directory closed to it?); use a directory under /tmp"
	fi
	# pg_ctl and postgres complain when they cannot read the working directory.
	cd "$dir"

	local data=$dir/data current
	if current=$(running_port "$data" "$bin"); then
		[[ $current == "$port" ]] || log "the cluster in $dir already runs on port $current, not $port"
		dsn "$current"
		return
	fi

	if [[ ! -f $data/PG_VERSION ]]; then
		log "creating a cluster in $data"
		as_pg "$bin/initdb" -D "$data" -U postgres --auth=trust --encoding=UTF8 --no-locale --no-sync >&2
		# Durability is pointless for a throwaway cluster, and speed is not.
		# No Unix socket: its directory would need root to create, and the
		# tests connect over TCP.
		cat >>"$data/postgresql.conf" <<-EOF

			# Added by berth scripts/postgres-test.sh
			listen_addresses = '127.0.0.1'
			unix_socket_directories = ''
			max_connections = 300
			fsync = off
			synchronous_commit = off
			full_page_writes = off
		EOF
	fi

	log "starting PostgreSQL on 127.0.0.1:$port"
	if ! as_pg "$bin/pg_ctl" -D "$data" -l "$dir/postgres.log" -o "-p $port" -w -t 60 start >&2; then
		tail -n 20 "$dir/postgres.log" >&2 || true
		die "PostgreSQL did not start; the log is $dir/postgres.log"
	fi
	local i
	for ((i = 0; i < 60; i++)); do
		if "$bin/pg_isready" -q -h 127.0.0.1 -p "$port" -U postgres -d postgres; then
			log "ready; stop it with: $0 stop $dir"
			dsn "$port"
			return
		fi
		sleep 0.5
	done
	die "PostgreSQL started but does not accept connections on 127.0.0.1:$port; the log is $dir/postgres.log"
}

stop() {
	local dir=${1:-}
	[[ -n $dir ]] || die "usage: $0 stop DIR"
	if [[ ! -e $dir ]]; then
		log "$dir does not exist: nothing to stop"
		return
	fi
	[[ -f $dir/$MARKER ]] || die "$dir was not made by this script; not touching it"
	local bin
	bin=$(bindir) || true
	if [[ -f $dir/data/postmaster.pid ]]; then
		[[ -n $bin ]] || die "a cluster may run in $dir but pg_ctl is missing"
		cd "$dir"
		# A postmaster.pid left by a crash names no running server.
		if running_port "$dir/data" "$bin" >/dev/null; then
			log "stopping the cluster in $dir"
			as_pg "$bin/pg_ctl" -D "$dir/data" -m fast -w -t 60 stop >&2 ||
				die "could not stop the cluster in $dir; see $dir/postgres.log"
		fi
		cd /
	fi
	rm -rf -- "$dir"
}

case ${1:-} in
stop)
	shift
	stop "$@"
	;;
-h | --help)
	sed -n '2,/^set -euo/p' "$0" | sed '$d' | sed 's/^# \{0,1\}//' >&2
	;;
*)
	start "$@"
	;;
esac

#!/usr/bin/env bash
# Runs a local PostgreSQL for hookline's outbox relay, its receiver store and
# their tests: Debian's postgresql (15 on bookworm), a cluster of its own on
# loopback, with its own data directory and port, never the system's cluster.
#
#   deploy/postgres/postgres.sh start    install (apt-get) when missing, init, start, wait until it answers
#   deploy/postgres/postgres.sh stop     stop the cluster this script started (fast shutdown)
#   deploy/postgres/postgres.sh kill     SIGKILL its postmaster, as a crash would
#   deploy/postgres/postgres.sh status   exit 0 when it answers
#   deploy/postgres/postgres.sh dsn      print the DSN (postgres://postgres@127.0.0.1:PORT/postgres)
#
# The server runs as the postgres user when this script runs as root, else
# as the caller. Authentication is "trust" on 127.0.0.1 only: a development
# and test cluster, not a production one. Every command is idempotent.
#
# Environment:
#   HOOKLINE_PG_PORT   port                 (15432)
#   HOOKLINE_PG_DIR    cluster directory    (/var/lib/hookline-postgres as root, else ~/.cache/hookline-postgres)
set -euo pipefail

PORT=${HOOKLINE_PG_PORT:-15432}
if [ "$(id -u)" -eq 0 ]; then
	DIR=${HOOKLINE_PG_DIR:-/var/lib/hookline-postgres}
	RUN_AS=(setpriv --reuid=postgres --regid=postgres --init-groups)
else
	DIR=${HOOKLINE_PG_DIR:-$HOME/.cache/hookline-postgres}
	RUN_AS=()
fi
DATA=$DIR/data-$PORT
LOG=$DIR/postgres-$PORT.log
DSN="postgres://postgres@127.0.0.1:$PORT/postgres?sslmode=disable"

log() { echo "postgres.sh: $*" >&2; }

bindir() {
	local d
	d=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
	[ -n "$d" ] && [ -x "$d/postgres" ] && echo "$d"
}

install_if_missing() {
	if bindir >/dev/null; then
		return
	fi
	if [ "$(id -u)" -ne 0 ]; then
		log "postgresql is not installed and installing it needs root"
		exit 1
	fi
	log "installing postgresql with apt-get"
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -q >/dev/null
	apt-get install -y -q --no-install-recommends postgresql >/dev/null
}

as_owner() {
	"${RUN_AS[@]}" "$@"
}

answers() {
	"$(bindir)/pg_isready" -q -h 127.0.0.1 -p "$PORT" -U postgres 2>/dev/null
}

start() {
	install_if_missing
	local bin
	bin=$(bindir)
	if answers; then
		log "already answering on 127.0.0.1:$PORT"
		echo "HOOKLINE_TEST_POSTGRES=$DSN"
		return
	fi
	mkdir -p "$DIR"
	[ ${#RUN_AS[@]} -eq 0 ] || chown postgres:postgres "$DIR"
	chmod 0700 "$DIR"
	if [ ! -f "$DATA/PG_VERSION" ]; then
		log "initialising a cluster in $DATA"
		as_owner "$bin/initdb" -D "$DATA" -U postgres --auth=trust --encoding=UTF8 --locale=C >/dev/null
		cat >>"$DATA/postgresql.conf" <<CONF
# hookline development cluster (deploy/postgres/postgres.sh)
listen_addresses = '127.0.0.1'
port = $PORT
unix_socket_directories = '$DIR'
wal_level = logical
max_connections = 200
fsync = on
CONF
	fi
	as_owner "$bin/pg_ctl" -D "$DATA" -l "$LOG" -w -t 60 start >/dev/null || {
		log "server did not start; tail of $LOG:"
		tail -n 20 "$LOG" >&2 || true
		exit 1
	}
	log "answering on 127.0.0.1:$PORT (data $DATA, log $LOG)"
	echo "HOOKLINE_TEST_POSTGRES=$DSN"
}

stop_mode() {
	local bin
	bin=$(bindir) || return 0
	if [ ! -f "$DATA/postmaster.pid" ]; then
		if answers; then
			log "a server answers on 127.0.0.1:$PORT but was not started by this script; leaving it alone"
			exit 3
		fi
		return 0
	fi
	if [ "$1" = kill ]; then
		local pid
		pid=$(head -n 1 "$DATA/postmaster.pid")
		kill -KILL "$pid" 2>/dev/null || true
		log "postmaster $pid killed"
		return 0
	fi
	as_owner "$bin/pg_ctl" -D "$DATA" -m fast -w -t 60 stop >/dev/null
	log "stopped"
}

case "${1:-}" in
start) start ;;
stop) stop_mode fast ;;
kill) stop_mode kill ;;
status)
	if bindir >/dev/null && answers; then
		log "answering on 127.0.0.1:$PORT"
	else
		log "not answering on 127.0.0.1:$PORT"
		exit 1
	fi
	;;
dsn) echo "$DSN" ;;
*)
	sed -n '2,17p' "$0" | sed 's/^# \{0,1\}//' >&2
	exit 2
	;;
esac

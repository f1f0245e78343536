#!/usr/bin/env bash
# Runs a local ClickHouse server for development, tests and CI.
#
#   deploy/clickhouse/clickhouse.sh start    install (apt-get) when missing, start, wait until it answers
#   deploy/clickhouse/clickhouse.sh stop     stop the server this script started (SIGTERM, then SIGKILL)
#   deploy/clickhouse/clickhouse.sh kill     kill it at once (SIGKILL), as a crash would
#   deploy/clickhouse/clickhouse.sh status   exit 0 when it answers SELECT 1
#
# stop and kill exit 3 when a server answers that this script did not start
# (it is left alone), so tests that need to control the server can tell.
#
# The server is Debian's clickhouse-server (18.16 on bookworm) with its own
# config (/etc/clickhouse-server/config.xml: native port 9000 on loopback),
# run as the clickhouse user in the background, not through systemd, so it
# works in containers and CI. Every command is idempotent.
#
# A private instance: with HOOKLINE_CH_DIR set, the server gets a config of
# its own under that directory (data, logs, pid file) and listens on
# HOOKLINE_CH_PORT (native) and HOOKLINE_CH_HTTP_PORT / _INTERSERVER_PORT;
# it never touches the shared server on 9000 or its files. Tests that kill
# ClickHouse use one (analytics' outage test).
#
# Environment:
#   HOOKLINE_CH_DIR           private instance directory (unset: the shared server)
#   HOOKLINE_CH_CONFIG        server config     (/etc/clickhouse-server/config.xml; DIR/config.xml)
#   HOOKLINE_CH_PORT          native port       (9000, must match the config)
#   HOOKLINE_CH_HTTP_PORT     HTTP port of a private instance         (native port + 1)
#   HOOKLINE_CH_INTERSERVER_PORT interserver port of a private instance (native port + 2)
#   HOOKLINE_CH_PIDFILE       pid file          (/var/run/clickhouse-server/hookline.pid; DIR/clickhouse.pid)
#   HOOKLINE_CH_START_TIMEOUT seconds to wait   (60)
set -euo pipefail

DIR=${HOOKLINE_CH_DIR:-}
PORT=${HOOKLINE_CH_PORT:-9000}
if [ -n "$DIR" ]; then
	DIR=$(realpath -m "$DIR")
	CONFIG=${HOOKLINE_CH_CONFIG:-$DIR/config.xml}
	PIDFILE=${HOOKLINE_CH_PIDFILE:-$DIR/clickhouse.pid}
	LOGDIR=$DIR/log
	DATADIR=$DIR/data
	HTTP_PORT=${HOOKLINE_CH_HTTP_PORT:-$((PORT + 1))}
	INTERSERVER_PORT=${HOOKLINE_CH_INTERSERVER_PORT:-$((PORT + 2))}
else
	CONFIG=${HOOKLINE_CH_CONFIG:-/etc/clickhouse-server/config.xml}
	PIDFILE=${HOOKLINE_CH_PIDFILE:-/var/run/clickhouse-server/hookline.pid}
	LOGDIR=/var/log/clickhouse-server
	DATADIR=/var/lib/clickhouse
fi
START_TIMEOUT=${HOOKLINE_CH_START_TIMEOUT:-60}
ADDR=127.0.0.1:$PORT
# The server runs as the clickhouse user when we are root, else as us.
if [ "$(id -u)" -eq 0 ]; then
	RUN_AS=(setpriv --reuid=clickhouse --regid=clickhouse --init-groups)
	OWNER=clickhouse:clickhouse
else
	RUN_AS=()
	OWNER=""
fi

log() { echo "clickhouse.sh: $*" >&2; }

answers() {
	clickhouse-client --host 127.0.0.1 --port "$PORT" --query 'SELECT 1' >/dev/null 2>&1
}

install_if_missing() {
	if command -v clickhouse-server >/dev/null 2>&1 && command -v clickhouse-client >/dev/null 2>&1; then
		return
	fi
	if [ "$(id -u)" -ne 0 ]; then
		log "clickhouse-server is not installed and installing it needs root"
		exit 1
	fi
	log "installing clickhouse-server and clickhouse-client with apt-get"
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -q >/dev/null
	apt-get install -y -q --no-install-recommends clickhouse-server clickhouse-client >/dev/null
}

# server_pid prints the pid of the running server started by this script.
server_pid() {
	[ -f "$PIDFILE" ] || return 1
	local pid
	pid=$(cat "$PIDFILE")
	[ -n "$pid" ] && kill -0 "$pid" 2>/dev/null || return 1
	# Guard against a recycled pid.
	grep -q clickhouse "/proc/$pid/cmdline" 2>/dev/null || return 1
	echo "$pid"
}

hints() {
	echo "HOOKLINE_TEST_CLICKHOUSE=$ADDR"
	echo "# export HOOKLINE_TEST_CLICKHOUSE=$ADDR"
	echo "# hookline migrate --clickhouse $ADDR"
}

# private_config writes the config of a private instance: Debian's, with
# its ports, paths and logs moved into DIR.
private_config() {
	[ -f "$CONFIG" ] && return
	mkdir -p "$(dirname "$CONFIG")"
	sed -e "s|<tcp_port>9000</tcp_port>|<tcp_port>$PORT</tcp_port>|" \
		-e "s|<http_port>8123</http_port>|<http_port>$HTTP_PORT</http_port>|" \
		-e "s|<interserver_http_port>9009</interserver_http_port>|<interserver_http_port>$INTERSERVER_PORT</interserver_http_port>|" \
		-e "s|/var/lib/clickhouse/|$DATADIR/|g" \
		-e "s|/var/log/clickhouse-server/|$LOGDIR/|g" \
		/etc/clickhouse-server/config.xml >"$CONFIG"
	cp /etc/clickhouse-server/users.xml "$(dirname "$CONFIG")/users.xml"
}

start() {
	install_if_missing
	if answers; then
		log "already answering on $ADDR"
		hints
		return
	fi
	if pid=$(server_pid); then
		log "server $pid is starting"
	else
		if [ -n "$DIR" ]; then
			mkdir -p "$DIR"
			private_config
		fi
		mkdir -p "$(dirname "$PIDFILE")" "$DATADIR" "$LOGDIR"
		if [ -n "$OWNER" ]; then
			chown "$OWNER" "$(dirname "$PIDFILE")" "$DATADIR" "$LOGDIR"
			[ -z "$DIR" ] || chown -R "$OWNER" "$DIR"
		fi
		rm -f "$PIDFILE"
		# setpriv execs in place (no lingering su), and setsid detaches the
		# server from our session, so the pid we record is the server's and
		# it outlives this script.
		setsid "${RUN_AS[@]}" \
			clickhouse-server --config-file="$CONFIG" \
			</dev/null >>"$LOGDIR/stdout.log" 2>&1 &
		echo $! >"$PIDFILE"
		log "started server $! (log $LOGDIR/)"
	fi
	local deadline=$((SECONDS + START_TIMEOUT))
	until answers; do
		# Only whether the pid is alive: between setsid's exec and the
		# server's, /proc/<pid>/cmdline can read empty, and server_pid's
		# check of the name would take a starting server for a dead one.
		if ! kill -0 "$(cat "$PIDFILE" 2>/dev/null)" 2>/dev/null; then
			log "server exited while starting; tail of its log:"
			tail -n 20 "$LOGDIR/clickhouse-server.err.log" >&2 2>/dev/null || true
			tail -n 20 "$LOGDIR/stdout.log" >&2 2>/dev/null || true
			exit 1
		fi
		if [ "$SECONDS" -ge "$deadline" ]; then
			log "server did not answer on $ADDR within ${START_TIMEOUT}s"
			exit 1
		fi
		sleep 0.2
	done
	log "answering on $ADDR"
	hints
}

# stop_with SIGNAL: signal the server, wait until it is gone (bounded), then
# SIGKILL what is left.
stop_with() {
	local sig=$1 pid
	if ! pid=$(server_pid); then
		rm -f "$PIDFILE"
		if answers; then
			log "a server answers on $ADDR but was not started by this script; leaving it alone"
			exit 3
		fi
		return
	fi
	kill "-$sig" "$pid" 2>/dev/null || true
	local deadline=$((SECONDS + 30))
	while kill -0 "$pid" 2>/dev/null; do
		if [ "$SECONDS" -ge "$deadline" ]; then
			log "server $pid still running after ${sig}; sending KILL"
			kill -KILL "$pid" 2>/dev/null || true
			deadline=$((SECONDS + 10))
		fi
		sleep 0.1
	done
	rm -f "$PIDFILE"
	log "server $pid stopped ($sig)"
}

case "${1:-}" in
start) start ;;
stop) stop_with TERM ;;
kill) stop_with KILL ;;
status)
	if answers; then
		log "answering on $ADDR"
	else
		log "not answering on $ADDR"
		exit 1
	fi
	;;
*)
	echo "usage: $0 start|stop|kill|status" >&2
	exit 2
	;;
esac

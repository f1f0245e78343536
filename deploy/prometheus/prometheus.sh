#!/usr/bin/env bash
# Runs a private Prometheus server (and its promtool) for tests and CI.
#
#   deploy/prometheus/prometheus.sh install  install Debian's prometheus (apt-get) when missing; print promtool's path
#   deploy/prometheus/prometheus.sh start    install when missing, start, wait until it is ready
#   deploy/prometheus/prometheus.sh stop     stop the server this script started (SIGTERM, then SIGKILL)
#   deploy/prometheus/prometheus.sh status   exit 0 when the server answers /-/ready
#   deploy/prometheus/prometheus.sh path     print the path of the prometheus binary (installs when missing)
#
# The server is Debian's prometheus (2.42 on bookworm), run by this script in
# the background with its own config, data directory and port, never through
# systemd and never on Debian's 9090: the package's own service is kept from
# starting during the install (policy-rc.d), and stopped and disabled if it
# runs anyway, so a fresh CI machine ends up with no server but ours.
# stop exits 3 when a server answers on our port that this script did not
# start (it is left alone). Every command is idempotent.
#
# Environment:
#   HOOKLINE_PROM_DIR            instance directory: config, data, log, pid (/tmp/hookline-prometheus)
#   HOOKLINE_PROM_PORT           listen port on 127.0.0.1          (19090)
#   HOOKLINE_PROM_CONFIG         config file (DIR/prometheus.yml; written when missing, scraping nothing)
#   HOOKLINE_PROM_START_TIMEOUT  seconds to wait for /-/ready      (60)
#   HOOKLINE_PROM_BIN            the server binary to run          (prometheus, from PATH)
set -euo pipefail

DIR=$(realpath -m "${HOOKLINE_PROM_DIR:-/tmp/hookline-prometheus}")
PORT=${HOOKLINE_PROM_PORT:-19090}
CONFIG=${HOOKLINE_PROM_CONFIG:-$DIR/prometheus.yml}
PIDFILE=$DIR/prometheus.pid
LOG=$DIR/prometheus.log
START_TIMEOUT=${HOOKLINE_PROM_START_TIMEOUT:-60}
BIN=${HOOKLINE_PROM_BIN:-prometheus}
ADDR=127.0.0.1:$PORT

log() { echo "prometheus.sh: $*" >&2; }

# answers: GET /-/ready answers 200 (bash's /dev/tcp: no curl needed).
answers() {
	(
		exec 3<>"/dev/tcp/127.0.0.1/$PORT" || exit 1
		printf 'GET /-/ready HTTP/1.0\r\nHost: %s\r\n\r\n' "$ADDR" >&3
		status=""
		read -r -t 2 status <&3 || true
		[[ $status == *" 200 "* ]]
	) 2>/dev/null
}

# no_packaged_service stops and disables the Debian service if it runs: it
# would hold 9090 on a machine where someone else may want it.
no_packaged_service() {
	if command -v systemctl >/dev/null 2>&1 && [ -d /run/systemd/system ]; then
		if systemctl is-active --quiet prometheus 2>/dev/null || systemctl is-enabled --quiet prometheus 2>/dev/null; then
			log "stopping and disabling Debian's prometheus service"
			systemctl disable --now prometheus >/dev/null 2>&1 || true
		fi
	elif [ -x /etc/init.d/prometheus ] && [ -f /run/prometheus.pid ] && kill -0 "$(cat /run/prometheus.pid)" 2>/dev/null; then
		log "stopping Debian's prometheus service"
		/etc/init.d/prometheus stop >/dev/null 2>&1 || true
	fi
}

install_if_missing() {
	if command -v prometheus >/dev/null 2>&1 && command -v promtool >/dev/null 2>&1; then
		return
	fi
	if [ "$(id -u)" -ne 0 ]; then
		log "prometheus is not installed and installing it needs root"
		exit 1
	fi
	log "installing prometheus (server and promtool) with apt-get"
	export DEBIAN_FRONTEND=noninteractive
	# policy-rc.d exit 101 tells invoke-rc.d (and deb-systemd-invoke) not to
	# start the package's service; a policy already in place is restored.
	local policy=/usr/sbin/policy-rc.d saved=""
	if [ -e "$policy" ]; then
		saved=$(mktemp)
		cp -p "$policy" "$saved"
	fi
	printf '#!/bin/sh\nexit 101\n' >"$policy"
	chmod 755 "$policy"
	local rc=0
	{ apt-get update -q >/dev/null && apt-get install -y -q --no-install-recommends prometheus >/dev/null; } || rc=$?
	if [ -n "$saved" ]; then
		mv -f "$saved" "$policy"
	else
		rm -f "$policy"
	fi
	[ "$rc" -eq 0 ] || { log "apt-get install prometheus failed ($rc)"; exit "$rc"; }
	# The postinst enables the unit (and sysvinit links) even when it may
	# not start it: undo that too, or the next boot starts it on 9090.
	if command -v deb-systemd-helper >/dev/null 2>&1; then
		deb-systemd-helper disable prometheus.service >/dev/null 2>&1 || true
	fi
	update-rc.d prometheus disable >/dev/null 2>&1 || true
	no_packaged_service
}

server_pid() {
	[ -f "$PIDFILE" ] || return 1
	local pid
	pid=$(cat "$PIDFILE")
	[ -n "$pid" ] && kill -0 "$pid" 2>/dev/null || return 1
	grep -q prometheus "/proc/$pid/cmdline" 2>/dev/null || return 1
	echo "$pid"
}

default_config() {
	[ -f "$CONFIG" ] && return
	mkdir -p "$(dirname "$CONFIG")"
	cat >"$CONFIG" <<EOF
global:
  scrape_interval: 15s
  evaluation_interval: 15s
EOF
}

start() {
	[ -n "${HOOKLINE_PROM_BIN:-}" ] || install_if_missing
	no_packaged_service
	if pid=$(server_pid); then
		log "server $pid is running"
	else
		if answers; then
			log "a server answers on $ADDR but was not started by this script"
			exit 3
		fi
		mkdir -p "$DIR/data"
		default_config
		rm -f "$PIDFILE"
		# --web.enable-lifecycle lets a test reload rules with POST /-/reload.
		setsid "$BIN" --config.file="$CONFIG" --storage.tsdb.path="$DIR/data" \
			--web.listen-address="$ADDR" --web.enable-lifecycle \
			</dev/null >>"$LOG" 2>&1 &
		echo $! >"$PIDFILE"
		log "started server $! on $ADDR (log $LOG)"
	fi
	local deadline=$((SECONDS + START_TIMEOUT))
	until answers; do
		# Only whether the pid is alive: between setsid's exec and the
		# server's, /proc/<pid>/cmdline can read empty, and server_pid's
		# check of the name would take a starting server for a dead one.
		if ! kill -0 "$(cat "$PIDFILE" 2>/dev/null)" 2>/dev/null; then
			log "server exited while starting; tail of its log:"
			tail -n 20 "$LOG" >&2 || true
			exit 1
		fi
		if [ "$SECONDS" -ge "$deadline" ]; then
			log "server did not become ready on $ADDR within ${START_TIMEOUT}s"
			exit 1
		fi
		sleep 0.2
	done
	log "ready on $ADDR"
	echo "http://$ADDR"
}

stop() {
	local pid
	if ! pid=$(server_pid); then
		rm -f "$PIDFILE"
		if answers; then
			log "a server answers on $ADDR but was not started by this script; leaving it alone"
			exit 3
		fi
		return
	fi
	kill -TERM "$pid" 2>/dev/null || true
	local deadline=$((SECONDS + 30))
	while kill -0 "$pid" 2>/dev/null; do
		if [ "$SECONDS" -ge "$deadline" ]; then
			log "server $pid still running after TERM; sending KILL"
			kill -KILL "$pid" 2>/dev/null || true
			deadline=$((SECONDS + 10))
		fi
		sleep 0.1
	done
	rm -f "$PIDFILE"
	log "server $pid stopped"
}

case "${1:-}" in
install)
	install_if_missing
	no_packaged_service
	command -v promtool
	;;
path)
	install_if_missing
	no_packaged_service
	command -v prometheus
	;;
start) start ;;
stop) stop ;;
status)
	if answers; then
		log "ready on $ADDR"
	else
		log "not answering on $ADDR"
		exit 1
	fi
	;;
*)
	echo "usage: $0 install|start|stop|status|path" >&2
	exit 2
	;;
esac

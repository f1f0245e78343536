#!/usr/bin/env bash
# Installs chdb-core (the ClickHouse 26.9 engine, in-process, from PyPI) into
# a virtualenv of its own, for the modern-flavour analytics test.
#
#   deploy/chdb/chdb.sh install   create the venv and pip install the pinned requirements (idempotent)
#   deploy/chdb/chdb.sh python    install if needed, then print the venv's python: the value of HOOKLINE_TEST_CHDB
#   deploy/chdb/chdb.sh status    exit 0 when the venv imports chdb at the pinned version
#
# Environment:
#   HOOKLINE_CHDB_HOME   the venv (${XDG_CACHE_HOME:-$HOME/.cache}/hookline/chdb-core-26.9.0)
#   PYTHON               the interpreter that creates it (python3; 3.9 to 3.14)
set -euo pipefail

DIR=$(cd "$(dirname "$0")" && pwd)
REQ=$DIR/requirements.txt
VERSION=$(sed -n 's/^chdb-core==//p' "$REQ")
HOME_DIR=${HOOKLINE_CHDB_HOME:-${XDG_CACHE_HOME:-$HOME/.cache}/hookline/chdb-core-$VERSION}
PY=$HOME_DIR/bin/python

log() { echo "chdb.sh: $*" >&2; }

ready() {
	[ -x "$PY" ] && "$PY" - "$VERSION" >/dev/null 2>&1 <<'PYEOF'
import sys
from importlib.metadata import version
import chdb
sys.exit(0 if version("chdb-core") == sys.argv[1] else 1)
PYEOF
}

install() {
	if ready; then
		return
	fi
	log "installing chdb-core $VERSION into $HOME_DIR"
	mkdir -p "$(dirname "$HOME_DIR")"
	if ! "${PYTHON:-python3}" -m venv "$HOME_DIR"; then
		# Debian ships venv's ensurepip apart from python3.
		[ "$(id -u)" -eq 0 ] || { log "python3 -m venv failed; install python3-venv"; exit 1; }
		log "installing python3-venv with apt-get"
		rm -rf "$HOME_DIR"
		DEBIAN_FRONTEND=noninteractive apt-get update -q >/dev/null
		DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends python3-venv >/dev/null
		"${PYTHON:-python3}" -m venv "$HOME_DIR"
	fi
	"$PY" -m pip install --quiet --disable-pip-version-check --no-input -r "$REQ" >&2
	ready || { log "chdb-core $VERSION does not import from $HOME_DIR"; exit 1; }
}

case "${1:-}" in
install) install ;;
python) install; echo "$PY" ;;
status) ready ;;
*) echo "usage: $0 install|python|status" >&2; exit 2 ;;
esac

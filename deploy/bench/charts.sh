#!/usr/bin/env bash
# Turns the JSON files of deploy/bench/run.sh into the PNG charts of
# docs/performance.md, with matplotlib in a virtualenv of its own.
#
#   deploy/bench/charts.sh [RESULTS_DIR [CHARTS_DIR]]
#
# RESULTS_DIR   the JSON files (bench-results); CHARTS_DIR the PNGs (docs/performance)
# Charts, each drawn when its files are there:
#   partitions.png  e2e deliveries/s and raw POST/s vs --partitions   (e2e-partitions-*.json)
#   keys.png        e2e deliveries/s and peak RSS vs --keys           (keys-*.json)
#   tiers-cdf.png   CDF of the tier attempts' lateness                (tiers.json)
#   scale.png       deliveries/s of one vs two serve processes        (scale.json)
#
# Environment:
#   HOOKLINE_BENCH_VENV  the venv (${XDG_CACHE_HOME:-$HOME/.cache}/hookline/bench-charts-matplotlib-<version>)
#   PYTHON               the interpreter that creates it (python3)
set -euo pipefail

DIR=$(cd "$(dirname "$0")" && pwd)
REQ=$DIR/requirements.txt
VERSION=$(sed -n 's/^matplotlib==//p' "$REQ")
VENV=${HOOKLINE_BENCH_VENV:-${XDG_CACHE_HOME:-$HOME/.cache}/hookline/bench-charts-matplotlib-$VERSION}
PY=$VENV/bin/python
RESULTS=${1:-bench-results}
CHARTS=${2:-docs/performance}

log() { echo "charts.sh: $*" >&2; }

if ! { [ -x "$PY" ] && "$PY" -c 'import matplotlib' 2>/dev/null; }; then
	log "installing matplotlib $VERSION into $VENV"
	mkdir -p "$(dirname "$VENV")"
	"${PYTHON:-python3}" -m venv "$VENV" || { log "python3 -m venv failed; install python3-venv"; exit 1; }
	"$PY" -m pip install --quiet --disable-pip-version-check --no-input -r "$REQ" >&2
fi
[ -d "$RESULTS" ] || { log "no results directory $RESULTS (run deploy/bench/run.sh first)"; exit 1; }
mkdir -p "$CHARTS"
MPLBACKEND=Agg "$PY" "$DIR/charts.py" "$RESULTS" "$CHARTS"

#!/usr/bin/env bash
# Runs the hookline bench scenarios and writes one JSON file per run, the
# input of deploy/bench/charts.sh (docs/performance.md says how to read them).
#
#   deploy/bench/run.sh [RESULTS_DIR]     (default bench-results)
#
# Environment:
#   EVENTS      events per e2e run (20000); the other scenarios scale from it
#   RUNS        runs of each e2e setting, drawn as their median (3)
#   PARTITIONS  the --partitions of the partitions chart (1 2 4 8)
#   KEYS        the --keys of the keys chart (100 1000 10000 100000)
#   BROKERS     a real Kafka for the scale scenario (skipped without it) and
#               for nothing else
#   HOOKLINE    a hookline binary (default: built from this checkout)
#   SMALL=1     tiny sizes, to check that everything runs (figures meaningless)
# Run it on a machine with nothing else running: the figures are only worth
# what the machine was doing meanwhile.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
OUT=${1:-bench-results}
EVENTS=${EVENTS:-20000}
RUNS=${RUNS:-3}
PARTITIONS=${PARTITIONS:-1 2 4 8}
KEYS=${KEYS:-100 1000 10000 100000}
TIERS=(--events 50000)
SLOW=(--events "$EVENTS")
INGEST=(--events 50000)
SCALE=(--events 50000)
if [ "${SMALL:-}" = 1 ]; then
	EVENTS=2000 RUNS=1 KEYS="100 1000 3000"
	TIERS=(--events 200 --rate 200 --tier-scale 0.005)
	SLOW=(--events 2000 --slow-timeout 500ms)
	INGEST=(--events 2000)
	SCALE=(--events 2000)
fi
mkdir -p "$OUT"
if [ -z "${HOOKLINE:-}" ]; then
	HOOKLINE=$OUT/hookline
	(cd "$ROOT" && go build -o "$HOOKLINE" ./cmd/hookline)
fi
log() { echo "run.sh: $*" >&2; }
bench() { # bench FILE ARGS...: one run, its JSON into FILE
	local file=$OUT/$1
	shift
	log "hookline bench $* > $file"
	"$HOOKLINE" bench --json "$@" >"$file.tmp"
	mv "$file.tmp" "$file"
}

for p in $PARTITIONS; do
	for r in $(seq "$RUNS"); do
		bench "e2e-partitions-$p-run$r.json" --scenario e2e --events "$EVENTS" --partitions "$p"
	done
done
for k in $KEYS; do
	for r in $(seq "$RUNS"); do
		bench "keys-$k-run$r.json" --scenario keys --keys "$k" --events "$((k > EVENTS ? k : EVENTS))"
	done
done
bench tiers.json --scenario tiers "${TIERS[@]}"
bench ingest.json --scenario ingest "${INGEST[@]}"
bench slow.json --scenario slow "${SLOW[@]}"
if [ -n "${BROKERS:-}" ]; then
	bench scale.json --scenario scale --brokers "$BROKERS" "${SCALE[@]}"
else
	log "BROKERS not set: skipping the scale scenario (it needs a real Kafka)"
fi
log "done: $OUT; charts: deploy/bench/charts.sh $OUT"

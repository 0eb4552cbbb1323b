#!/usr/bin/env bash
# Launch -> first job command started, for make -j2 and `gantry run --max-parallel 2` on the
# 1000-job DAG, taking turns (in an order that turns each round) and without the shared
# harness's wrappers (it starts Gantry through `bash -c "exec …"`, about 1 ms more). Each tool
# is started by the harness's `t0exec`, which notes the time just before its exec; the DAG's
# first layer runs the harness's `stamp`, which appends the time it started. Extra binaries to
# compare (e.g. an older build) can be given as arguments.
# env: ROUNDS (default 15), BIN (the harness's tools, default /tmp/perfpeers/bin).
# Needs bench/dag.sh to have made the DAG first (it builds the binary and the tools).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
D=${D:-/tmp/gantry-bench/dag/dag-true}
T0EXEC=${BIN:-/tmp/perfpeers/bin}/t0exec
[ -x "$T0EXEC" ] || { echo "no $T0EXEC: run bench/dag.sh first (the harness builds it)" >&2; exit 1; }
BINS=("$ROOT/target/x86_64-unknown-linux-gnu/release/gantry" "$@")
TMP=$(mktemp -d); trap 'rm -rf "$TMP"' EXIT
first() { # name: the first stamp after t0
  python3 -c "import sys; t0=int(open('$TMP/t0.ns').read()); s=min(int(x) for x in open('$D/first.ns')); print(sys.argv[1], (s-t0)/1e6)" "$1"
}
# The order turns each round: a launch right after another tool's run is not like one after a
# pause (the VM's CPU speed follows its load), so no tool always comes first.
ALL=(make "${BINS[@]}")
for round in $(seq "${ROUNDS:-15}"); do
  k=$((round % ${#ALL[@]}))
  for b in "${ALL[@]:k}" "${ALL[@]:0:k}"; do
    rm -f "$D/first.ns"
    if [ "$b" = make ]; then
      rm -rf "$TMP/make" && mkdir "$TMP/make"
      (cd "$TMP/make" && "$T0EXEC" "$TMP/t0.ns" make -j2 -s -f "$D/Makefile" all >/dev/null 2>&1)
    else
      rm -rf "$TMP/state"
      "$T0EXEC" "$TMP/t0.ns" "$b" run "$D/gantry.json" --max-parallel 2 --data-dir "$TMP/state" >/dev/null 2>&1
    fi
    first "$b"
  done
done > "$TMP/times"
python3 - "$TMP/times" <<'PY'
import statistics, sys
by = {}
for line in open(sys.argv[1]):
    name, ms = line.split()
    by.setdefault(name, []).append(float(ms))
make = statistics.median(by["make"])
for name, ms in by.items():
    m = statistics.median(ms)
    print(f"{name:50} first job median {m:.2f} ms  min {min(ms):.2f} ms  {m / make:.2f}x make  n={len(ms)}")
PY

#!/usr/bin/env bash
# The 1000-job DAG of `true`, make -j2 and `gantry run --max-parallel 2` taking turns, without the
# shared harness's wrappers, so that a VM whose speed drifts treats both alike. Prints medians and
# the ratios (of medians, and the median of per-round ratios). Extra binaries to compare (e.g.
# an older build) can be given as arguments.
# env: ROUNDS (default 10). Needs bench/dag.sh to have made the DAG first (it builds the binary).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
D=${D:-/tmp/gantry-bench/dag/dag-true}
[ -f "$D/gantry.json" ] || { echo "run bench/dag.sh first (it writes $D)" >&2; exit 1; }
BINS=("$ROOT/target/x86_64-unknown-linux-gnu/release/gantry" "$@")
TMP=$(mktemp -d); trap 'rm -rf "$TMP"' EXIT
for _ in $(seq "${ROUNDS:-10}"); do
  rm -rf "$TMP/make" && mkdir "$TMP/make"
  s=$EPOCHREALTIME; (cd "$TMP/make" && make -j2 -s -f "$D/Makefile" all >/dev/null 2>&1); e=$EPOCHREALTIME
  echo "make $s $e"
  for b in "${BINS[@]}"; do
    rm -rf "$TMP/state" && mkdir "$TMP/state"
    s=$EPOCHREALTIME; "$b" run "$D/gantry.json" --max-parallel 2 --data-dir "$TMP/state" >/dev/null 2>&1; e=$EPOCHREALTIME
    echo "$b $s $e"
  done
done > "$TMP/times"
python3 - "$TMP/times" <<'PY'
import statistics, sys
by = {}
for line in open(sys.argv[1]):
    name, s, e = line.split()
    by.setdefault(name, []).append(float(e) - float(s))
make = statistics.median(by["make"])
for name, walls in by.items():
    m = statistics.median(walls)
    print(f"{name:50} median {m:.3f} s  min {min(walls):.3f} s  {m / make:.2f}x make  n={len(walls)}")
# Each round runs make and then every build: the median of per-round ratios is steadier than a
# ratio of medians while the VM's speed drifts.
names = [n for n in by if n != "make"]
for name in names:
    vs_make = statistics.median(a / b for a, b in zip(by[name], by["make"]))
    vs_first = statistics.median(a / b for a, b in zip(by[name], by[names[0]]))
    print(f"{name:50} paired: {vs_make:.3f}x make, {vs_first:.3f}x the first build")
PY

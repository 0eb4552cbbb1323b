#!/usr/bin/env bash
# The fixed costs around the 1000-job DAG, for make -j2 and `gantry run --max-parallel 2`, from
# the kernel's process events (`perf record -e sched:…`; nothing in either tool is instrumented):
# head = the tool's exec -> the first job's exec; tail = the last job's exit -> the tool's exit
# (what a finished run still costs: its last commit, closing the store, the process's exit).
# Rounds alternate the tools; extra Gantry binaries to compare can be given as arguments.
# Needs perf with tracepoint access and the DAG that bench/dag.sh makes. env: ROUNDS (default 5).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
D=${D:-/tmp/gantry-bench/dag/dag-true}
[ -f "$D/gantry.json" ] || { echo "no $D/gantry.json: run bench/dag.sh first" >&2; exit 1; }
command -v perf >/dev/null || { echo "needs perf (Debian: linux-perf)" >&2; exit 1; }
BINS=("$ROOT/target/x86_64-unknown-linux-gnu/release/gantry" "$@")
TMP=$(mktemp -d); trap 'rm -rf "$TMP"' EXIT
record() { # name, command...
  local name=$1; shift
  perf record -q -e sched:sched_process_exit,sched:sched_process_exec -o "$TMP/p.data" -- "$@" >/dev/null 2>&1
  perf script -i "$TMP/p.data" -F comm,pid,time,event 2>/dev/null | sed "s|^|$name |" >> "$TMP/events"
  echo "$name end" >> "$TMP/events"
}
for _ in $(seq "${ROUNDS:-5}"); do
  rm -rf "$TMP/make" && mkdir "$TMP/make"
  (cd "$TMP/make" && record make make -j2 -s -f "$D/Makefile" all)
  for i in "${!BINS[@]}"; do
    rm -rf "$TMP/state"
    record "${BINS[$i]}" "${BINS[$i]}" run "$D/gantry.json" --max-parallel 2 --data-dir "$TMP/state"
  done
done
python3 - "$TMP/events" <<'PY'
import statistics, sys
runs, cur = {}, {}
for line in open(sys.argv[1]):
    f = line.split()
    if f[1] == "end":
        rows = cur.pop(f[0], [])
        if not rows: continue
        t = lambda r: float(r[3].rstrip(":"))
        tool = rows[0][2]  # the tool's own exec comes first
        jobs_exec = [r for r in rows if "exec" in r[4] and r[2] != tool]
        jobs_exit = [r for r in rows if "exit" in r[4] and r[2] != tool]
        tool_exit = [r for r in rows if "exit" in r[4] and r[2] == tool]
        runs.setdefault(f[0], []).append(((t(jobs_exec[0]) - t(rows[0])) * 1e3,
                                          (t(tool_exit[-1]) - t(jobs_exit[-1])) * 1e3))
    else:
        cur.setdefault(f[0], []).append(f)
for name, v in runs.items():
    print(f"{name:50} head {statistics.median(x[0] for x in v):6.2f} ms  tail {statistics.median(x[1] for x in v):6.2f} ms  n={len(v)}")
PY

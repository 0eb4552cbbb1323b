#!/usr/bin/env bash
# Where the 1000-job DAG's wall time goes, per job, for make -j2 and `gantry run --max-parallel 2`:
# the kernel's process events (fork, exec, exit; `perf record -e sched:…`, so nothing in either
# tool is instrumented) give each job's life (exec -> exit), its start latency (the tool's fork ->
# the job's exec: the vfork wait) and the turnaround (a job's exit -> the tool's next fork, which
# is the tool's own work between two jobs while a slot stands empty). Rounds alternate the tools.
# Needs perf with tracepoint access (root, or kernel.perf_event_paranoid <= -1) and the DAG that
# bench/dag.sh makes. Extra Gantry binaries to compare can be given as arguments.
# env: ROUNDS (default 3), D (the DAG folder).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
D=${D:-/tmp/gantry-bench/dag/dag-true}
[ -f "$D/gantry.json" ] || { echo "no $D/gantry.json: run bench/dag.sh first" >&2; exit 1; }
command -v perf >/dev/null || { echo "needs perf (Debian: linux-perf)" >&2; exit 1; }
BINS=("$ROOT/target/x86_64-unknown-linux-gnu/release/gantry" "$@")
TMP=$(mktemp -d); trap 'rm -rf "$TMP"' EXIT
events=sched:sched_process_exit,sched:sched_process_exec,sched:sched_process_fork
record() { # name, command...
  local name=$1; shift
  perf record -q -e "$events" -o "$TMP/p.data" -- "$@" >/dev/null 2>&1
  perf script -i "$TMP/p.data" -F comm,pid,time,event,trace 2>/dev/null > "$TMP/$name.$round.txt"
}
for round in $(seq "${ROUNDS:-3}"); do
  rm -rf "$TMP/make" && mkdir "$TMP/make"
  (cd "$TMP/make" && record make make -j2 -s -f "$D/Makefile" all)
  for i in "${!BINS[@]}"; do
    rm -rf "$TMP/state"
    record "gantry$i" "${BINS[$i]}" run "$D/gantry.json" --max-parallel 2 --data-dir "$TMP/state"
  done
done
python3 - "$TMP" "${BINS[@]}" <<'PY'
import bisect, glob, os, re, statistics, sys
tmp, bins = sys.argv[1], sys.argv[2:]
def analyse(path):
    tool_pid, forks, execs, exits, life, start = None, [], {}, [], [], []
    fork_at = {}
    for line in open(path):
        m = re.match(r'\s*(\S+)\s+(\d+)\s+(\d+\.\d+):\s+sched:sched_process_(\w+):(.*)', line)
        if not m:
            continue
        comm, pid, t, kind, rest = m.group(1), int(m.group(2)), float(m.group(3)), m.group(4), m.group(5)
        if tool_pid is None and kind == 'exec':
            tool_pid = pid
        if kind == 'fork' and pid == tool_pid:
            child = int(re.search(r'child_pid=(\d+)', rest).group(1))
            forks.append(t)
            fork_at[child] = t
        elif kind == 'exec' and pid in fork_at:
            execs[pid] = t
            start.append(t - fork_at[pid])
        elif kind == 'exit' and pid in execs:
            exits.append(t)
            life.append(t - execs.pop(pid))
    gaps = []
    for e in exits:
        i = bisect.bisect_right(forks, e)
        if i < len(forks):
            gaps.append(forks[i] - e)
    return gaps, life, start
names = ['make'] + [f'gantry{i}' for i in range(len(bins))]
labels = ['make -j2'] + bins
print(f"{'tool':50} {'turnaround p50/mean us':>24} {'start p50/mean us':>19} {'job life mean us':>17}")
for name, label in zip(names, labels):
    g, l, s = [], [], []
    for f in sorted(glob.glob(os.path.join(tmp, name + '.*.txt'))):
        a, b, c = analyse(f)
        g += a; l += b; s += c
    if not g:
        continue
    print(f"{label:50} {statistics.median(g)*1e6:11.0f} /{statistics.mean(g)*1e6:6.0f}    "
          f"{statistics.median(s)*1e6:8.0f} /{statistics.mean(s)*1e6:6.0f}   {statistics.mean(l)*1e6:12.0f}")
PY

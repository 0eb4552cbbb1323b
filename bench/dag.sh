#!/usr/bin/env bash
# The 1000-job DAG (10 layers x 100, 2 deps each) run by Gantry and by the tools a user would
# pick instead, side by side, with parallelism 2. Prints medians and Gantry's ratio to make.
# Uses the shared harness (../shared/bench by default; set SHARED to elsewhere).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
SHARED=${SHARED:-$ROOT/../shared}
OUT=${OUT:-/tmp/gantry-bench/dag}
cargo build --release -p gantry --manifest-path "$ROOT/Cargo.toml"
rm -rf "$OUT"; mkdir -p "$OUT"
OURS_DAG_CMD="$ROOT/target/x86_64-unknown-linux-gnu/release/gantry run {dir}/gantry.json --max-parallel 2 --data-dir {state}" \
  REPS=${REPS:-5} VARIANTS=${VARIANTS:-true sleep} OUT=$OUT \
  bash "$SHARED/bench/dag/run_dag_bench.sh" ${PEERS:-forkexec make ours} > "$OUT/log.txt" 2>&1 || { cat "$OUT/log.txt"; exit 1; }
python3 - "$OUT/dag-results.jsonl" <<'PY'
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
by = {}
for r in rows:
    by.setdefault((r["variant"], r["tool"]), []).append(r)
print(f"{'variant':8} {'tool':20} {'wall s':>8} {'us/job':>8} {'first job ms':>13} {'peak RSS KiB':>13}  (medians, n)")
med = lambda xs: statistics.median(xs) if xs else float('nan')
for (v, t), rs in sorted(by.items()):
    ok = [r for r in rs if r["rc"] == 0]
    firsts = [r["first_job_ms"] for r in ok if r["first_job_ms"] is not None]
    print(f"{v:8} {t:20} {med([r['wall_s'] for r in ok]):8.3f} {med([r['us_per_job'] for r in ok]):8.0f} {med(firsts):13.2f} {med([r['tree_rss_kib'] for r in ok]):13.0f}  n={len(ok)}/{len(rs)}")
for v in sorted({v for v, _ in by}):
    ours, make = by.get((v, "ours")), by.get((v, "make-j2"))
    if ours and make:
        w = med([r["wall_s"] for r in ours]) / med([r["wall_s"] for r in make])
        line = f"{v}: gantry/make wall = {w:.2f}x"
        fo = [r["first_job_ms"] for r in ours if r["first_job_ms"] is not None]
        fm = [r["first_job_ms"] for r in make if r["first_job_ms"] is not None]
        if fo and fm:
            line += f", first job {med(fo):.2f} ms vs {med(fm):.2f} ms ({med(fo)/med(fm):.2f}x)"
        print(line)
PY

#!/usr/bin/env bash
# The 1000-job DAG (10 layers x 100, 2 deps each) run by Gantry and by the tools a user would
# pick instead, side by side, with parallelism 2. Prints medians and Gantry's ratio to each peer.
# Peers other than make need bench/setup.sh (ninja-build; doit in /tmp/perfpeers/venv).
# The harness (DAG generator, peers' inputs, timing) is bench/harness/dag.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
OUT=${OUT:-/tmp/gantry-bench/dag}
cargo build --release -p gantry --manifest-path "$ROOT/Cargo.toml"
rm -rf "$OUT"; mkdir -p "$OUT"
OURS_DAG_CMD="$ROOT/target/release/gantry run {dir}/gantry.json --max-parallel 2 --data-dir {state}" \
  REPS=${REPS:-5} VARIANTS=${VARIANTS:-true sleep} OUT=$OUT \
  bash "$ROOT/bench/harness/dag/run_dag_bench.sh" ${PEERS:-make ninja doit ours} > "$OUT/log.txt" 2>&1 || { cat "$OUT/log.txt"; exit 1; }
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
    ours = by.get((v, "ours"))
    if not ours:
        continue
    w = med([r["wall_s"] for r in ours if r["rc"] == 0])
    ratios = [f"{t}: {w / med([r['wall_s'] for r in rs if r['rc'] == 0]):.2f}x"
              for (v2, t), rs in sorted(by.items()) if v2 == v and t != "ours"]
    print(f"{v}: gantry wall / peer wall = " + ", ".join(ratios))
PY

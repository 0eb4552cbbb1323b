#!/usr/bin/env bash
# Signed GitHub `workflow_job` deliveries (13.4 KB, real payload) under wrk (2 threads, 64
# connections), Gantry beside the peers a user would pick instead (bench/harness/webhook).
# Every Gantry 2xx means the event is in SQLite with synchronous=FULL (group commit).
# env: PEERS (default "ours"; add fastapi-full fastapi-normal after
#      bench/setup.sh), DURATION (default 20s), STORE (sqlite, or postgres).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
OUT=${OUT:-/tmp/gantry-bench/webhook}
command -v wrk >/dev/null || { echo "needs wrk (apt-get install -y wrk)"; exit 1; }
cargo build --release -p gantry --manifest-path "$ROOT/Cargo.toml"
rm -rf "$OUT"; mkdir -p "$OUT"
# STORE=postgres: Gantry's store is PostgreSQL (a throwaway cluster from scripts/pg-cluster,
# fsync on; every 2xx means the event is committed there), beside the same peers.
DB_ENV=""
COUNT="sqlite3 $OUT/webhook-ours/state/gantry.db 'select count(*) from events'"
if [ "${STORE:-sqlite}" = postgres ]; then
  "$ROOT/scripts/test-deps" >/dev/null
  pgdir=$(mktemp -d)
  chmod 755 "$pgdir" # the cluster belongs to another user when run as root
  trap '"$ROOT/scripts/pg-cluster" stop "$pgdir/pg" >/dev/null 2>&1 || true; rm -rf "$pgdir"' EXIT
  pg_url=$("$ROOT/scripts/pg-cluster" start "$pgdir/pg" | tail -1)
  psql=$(ls /usr/lib/postgresql/*/bin/psql | tail -1)
  DB_ENV="GANTRY_DATABASE_URL=$pg_url"
  COUNT="$psql $pg_url -tAc 'select count(*) from events'"
fi
OURS_WEBHOOK_CMD="env GANTRY_GITHUB_WEBHOOK_SECRET=\$WEBHOOK_SECRET $DB_ENV ${CARGO_TARGET_DIR:-$ROOT/target}/release/gantry serve --listen 127.0.0.1:9110 --data-dir ./state" \
OURS_WEBHOOK_URL=http://127.0.0.1:9110/webhooks/github \
OURS_COUNT_CMD="$COUNT" \
DURATION=${DURATION:-20s} OUT=$OUT bash "$ROOT/bench/harness/webhook/run_webhook_bench.sh" ${PEERS:-ours} | grep '^{' > "$OUT/results.jsonl"
python3 - "$OUT/results.jsonl" <<'PY'
import json, sys
print(f"{'peer':16} {'req/s':>8} {'p50 ms':>7} {'p99 ms':>7} {'RSS MiB':>8} {'checks (good/bad/filtered)':>28} rows")
for line in open(sys.argv[1]):
    r = json.loads(line); w = r["wrk"]; c = r["check"]
    rows = "NA" if r["rows_after"] == "NA" else int(r["rows_after"]) - int(r["rows_before"])
    print(f"{r['peer']:16} {w['rps']:8.0f} {w['p50_ms']:7.1f} {w['p99_ms']:7.1f} {r['rss_load']['peak_kib']/1024:8.1f} {c['good']+'/'+c['bad']+'/'+c['filtered']:>28} {rows}")
PY

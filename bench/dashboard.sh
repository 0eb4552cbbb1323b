#!/usr/bin/env bash
# The dashboard with a big store, against the release binary (default features, as users run
# it), with an API token and a logged-in session:
#  1. RUNS (100,000) finished runs seeded through the store's write path
#     (crates/gantry-store/examples/seed_runs.rs: repositories, branches, tags, events,
#     succeeded/failed/cancelled), read back through the API; then the runs page `/` — the
#     first page, filtered pages, a deep `before=` page, 500 a page — REPS (200) times each:
#     client time over loopback and the server's own (`Server-Timing`), beside the JSON API's
#     `GET /api/v1/runs` for the same page where it has one.
#  2. A 1000-job run (layered fan-out and fan-in) submitted over the API and run; its page's
#     time and size, beside `GET /api/v1/runs/{id}`.
#  3. FOLLOWERS (100) browsers on live logs (each opens a job's log page, then its event
#     stream) of a run whose 10 jobs print a line every 100 ms for LIVE_SECONDS (30), while
#     another process asks /healthz every 50 ms: its p50/p99/max, and idle beside it.
# Prints a table of the issue's targets with pass or fail. env: RUNS, REPS, FOLLOWERS,
# LIVE_SECONDS.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
TARGET=${CARGO_TARGET_DIR:-$ROOT/target}
cargo build --release -p gantry --bin gantry --manifest-path "$ROOT/Cargo.toml"
cargo build --release -p gantry-store --example seed_runs --manifest-path "$ROOT/Cargo.toml"
work=$(mktemp -d)
pids=()
trap 'kill "${pids[@]}" 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$work"' EXIT

mkdir -m 700 "$work/data"
"$TARGET/release/examples/seed_runs" "$work/data" "${RUNS:-100000}" >"$work/seeded.json"
token=$(python3 -c 'import secrets; print(secrets.token_hex(24))')

GANTRY_API_TOKEN=$token "$TARGET/release/gantry" serve --listen 127.0.0.1:0 \
  --data-dir "$work/data" --max-parallel 16 >"$work/out" 2>"$work/err" &
pids+=($!)
for _ in $(seq 300); do grep -q listening "$work/out" 2>/dev/null && break; sleep 0.1; done
grep -q listening "$work/out" || { cat "$work/err" >&2; exit 1; }
addr=$(sed -n 's#gantry listening on http://##p' "$work/out")
echo "gantry serve on $addr, data dir $(du -sh "$work/data" | cut -f1)"

SERVER_PID=${pids[0]} REPS=${REPS:-200} FOLLOWERS=${FOLLOWERS:-100} LIVE_SECONDS=${LIVE_SECONDS:-30} \
  python3 "$ROOT/bench/dashboard/bench.py" "${addr%:*}" "${addr##*:}" "$token" "$work/seeded.json"

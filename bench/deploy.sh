#!/usr/bin/env bash
# POST /deploy answered (202, the session durable: its run and record committed) — N requests,
# one at a time and C at a time, against the release binary on a fresh data dir.
# env: N (1000), C (8).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
TARGET=${CARGO_TARGET_DIR:-$ROOT/target}
cargo build --release -p gantry --bin gantry --manifest-path "$ROOT/Cargo.toml"
work=$(mktemp -d)
trap 'kill $pid 2>/dev/null || true; rm -rf "$work"' EXIT
GANTRY_GIT_ALLOWED_URL_PREFIXES=http://127.0.0.1:9/git/ \
  "$TARGET/release/gantry" serve --listen 127.0.0.1:0 --data-dir "$work/data" >"$work/out" 2>/dev/null &
pid=$!
for _ in $(seq 100); do grep -q listening "$work/out" 2>/dev/null && break; sleep 0.1; done
addr=$(sed -n 's#gantry listening on http://##p' "$work/out")
host=${addr%:*}; port=${addr##*:}
python3 "$ROOT/bench/deploy/post_deploy.py" "$host" "$port" "${N:-1000}" 1
python3 "$ROOT/bench/deploy/post_deploy.py" "$host" "$port" "${N:-1000}" "${C:-8}"

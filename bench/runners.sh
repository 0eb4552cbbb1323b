#!/usr/bin/env bash
# Ephemeral runners: JOBS queued `workflow_job` deliveries at once (the fake GitHub, in the
# example's process, sends them signed to `gantry serve`), one pool of MAX_RUNNERS places.
# Per runner: delivery acted on -> runner started (its record's started_at - queued_at) and
# job added at the fake -> runner started, with p50/p90/p99/max and a histogram; for the
# local executor (the stand-in runner script as a process) and the Docker one (the stand-in
# runner image, built by scripts/test-images, present). The runners never claim their job
# unless CLAIM=1 (then each claims and completes a `sleep-0` job during the burst).
# env: JOBS (200), MAX_RUNNERS (200), EXECUTORS ("local docker"), CLAIM (0).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
TARGET=${CARGO_TARGET_DIR:-$ROOT/target}
cargo build --release -p gantry --bin gantry --example runner_burst --manifest-path "$ROOT/Cargo.toml"
EXECUTORS=${EXECUTORS:-local docker}
args=(--jobs "${JOBS:-200}" --max-runners "${MAX_RUNNERS:-200}" --gantry "$TARGET/release/gantry")
[ "${CLAIM:-0}" = 1 ] && args+=(--claim)
for executor in $EXECUTORS; do
  if [ "$executor" = docker ]; then
    "$ROOT/scripts/test-images"
  fi
  echo "== $executor"
  "$TARGET/release/examples/runner_burst" --executor "$executor" "${args[@]}"
done

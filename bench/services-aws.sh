#!/usr/bin/env bash
# Services on ECS behind an ELBv2 target group, on the AWS emulator (moto behind
# scripts/aws/emulator.py): Gantry's own time in a start (everything but waiting on AWS), and
# 100 starts at once under AWS-style throttling (calls, throttles and retries counted).
# env: BIN (default: the release build, made here), STARTS (30), AT_ONCE (100), TELL_LIMITS
# (1: Gantry is told the emulator's limits in gantry.toml; else it starts from AWS's defaults).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
if [ -z "${BIN:-}" ]; then
  cargo build --release -p gantry --manifest-path "$ROOT/Cargo.toml"
  BIN="$ROOT/target/release/gantry"
fi
venv=$("$ROOT/scripts/test-deps" | sed -n 's/^test-venv: //p')
exec "$venv/bin/python" "$ROOT/bench/services-aws/bench.py" "$ROOT" "$BIN"

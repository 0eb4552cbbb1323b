#!/usr/bin/env bash
# Installs what the side-by-side benchmarks compare against and measure with: Debian's make,
# ninja-build, wrk, sqlite3 and gcc (for the harness's small C timers), and a Python venv at
# /tmp/perfpeers/venv with doit (the DAG peer) and FastAPI + uvicorn (the webhook peer).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
need=()
for p in make ninja-build wrk sqlite3 gcc curl; do
  dpkg -s "$p" >/dev/null 2>&1 || need+=("$p")
done
if [ ${#need[@]} -gt 0 ]; then
  apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${need[@]}"
fi
VENV=${VENV:-/tmp/perfpeers/venv}
[ -x "$VENV/bin/python" ] || python3 -m venv "$VENV"
"$VENV/bin/pip" install -q doit fastapi uvicorn uvloop httptools
BIN=${BIN:-/tmp/perfpeers/bin} bash "$ROOT/bench/harness/tools/build.sh"

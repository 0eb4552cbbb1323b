#!/usr/bin/env bash
# Webhook-intake benchmark: start a server, check correctness (good sig -> 2xx, bad sig -> 401,
# filtered-out event -> not persisted), then load it with wrk on loopback and sample tree RSS.
#
# usage: run_webhook_bench.sh [PEER...]     PEER in: adnanh fastapi-normal fastapi-full
#                                            flask-normal flask-full ours
# env:   DURATION=20s THREADS=2 CONNS=64 WARMUP=3s SERVER_CPUS=0 LOAD_CPUS=1
#        TAG=suffix for result names   UVICORN_EXTRA="--loop asyncio --http h11" (extra uvicorn flags)
#        OUT=/tmp/perfpeers/results   VENV=/tmp/perfpeers/venv   BIN=/tmp/perfpeers/bin
#        FIXTURE=<workflow_job.queued.json>   SECRET=bench-secret
#  ---- Gantry (bench/webhook.sh sets it) ----
#        OURS_WEBHOOK_CMD='/path/to/orchestrator serve --listen 127.0.0.1:9110 --db ./state'
#        OURS_WEBHOOK_URL=http://127.0.0.1:9110/hooks/github
#        OURS_COUNT_CMD='sqlite3 ./state/events.db "select count(*) from events"'  (optional)
#   The command runs in a fresh work dir, with WEBHOOK_SECRET exported; it must listen on 127.0.0.1.
# Only 127.0.0.1 is ever targeted. Servers are stopped by their own PID.
set -uo pipefail
HERE=$(cd "$(dirname "$0")" && pwd); TOOLS=$HERE/../tools
OUT=${OUT:-/tmp/perfpeers/results}; VENV=${VENV:-/tmp/perfpeers/venv}; BIN=${BIN:-/tmp/perfpeers/bin}
FIXDIR=${FIXDIR:-$HERE/../../../fixtures/github}
FIXTURE=${FIXTURE:-$FIXDIR/workflow_job.queued.json}; NEG=${NEG:-$FIXDIR/workflow_job.in_progress.json}
SECRET=${SECRET:-bench-secret}; export WEBHOOK_SECRET=$SECRET
DURATION=${DURATION:-20s}; THREADS=${THREADS:-2}; CONNS=${CONNS:-64}; WARMUP=${WARMUP:-3s}
SERVER_CPUS=${SERVER_CPUS:-0}; LOAD_CPUS=${LOAD_CPUS:-1}; TAG=${TAG:-}; UVICORN_EXTRA=${UVICORN_EXTRA:-}
PEERS=("$@"); [ ${#PEERS[@]} -eq 0 ] && PEERS=(adnanh fastapi-normal fastapi-full flask-normal flask-full)
mkdir -p "$OUT"; SIG=$(python3 "$TOOLS/sign.py" "$SECRET" "$FIXTURE"); NEGSIG=$(python3 "$TOOLS/sign.py" "$SECRET" "$NEG")
secs=${DURATION%s}

post() { # url file sig event -> http status
  curl -s -o /dev/null -w '%{http_code}' -X POST "$1" -H 'Content-Type: application/json' \
    -H "X-GitHub-Event: $4" -H "X-GitHub-Delivery: check-$RANDOM$RANDOM" -H "X-Hub-Signature-256: $3" --data-binary @"$2"; }

for peer in "${PEERS[@]}"; do
  WD=$OUT/webhook-$peer$TAG; rm -rf "$WD"; mkdir -p "$WD"; COUNT_CMD=""
  case $peer in
    adnanh)
      PORT=9101; URL=http://127.0.0.1:$PORT/hooks/github
      sed -e "s#@CMD@#/bin/true#" -e "s#@ARGS@##" -e "s#@WORKDIR@#$WD#" -e "s#@SECRET@#$SECRET#" \
        "$HERE/hooks.json.tmpl" > "$WD/hooks.json"
      START="webhook -hooks $WD/hooks.json -ip 127.0.0.1 -port $PORT -urlprefix hooks" ;;
    fastapi-normal|fastapi-full)
      PORT=9102; URL=http://127.0.0.1:$PORT/hooks/github; export SQLITE_SYNC=${peer#fastapi-}; SQLITE_SYNC=${SQLITE_SYNC^^}
      export DB_PATH=$WD/events.db; COUNT_CMD="sqlite3 $WD/events.db 'select count(*) from events'"
      START="$VENV/bin/uvicorn --app-dir $HERE fastapi_app:app --host 127.0.0.1 --port $PORT --workers 1 --no-access-log --log-level warning $UVICORN_EXTRA" ;;
    flask-normal|flask-full)
      PORT=9103; URL=http://127.0.0.1:$PORT/hooks/github; export SQLITE_SYNC=${peer#flask-}; SQLITE_SYNC=${SQLITE_SYNC^^}
      export DB_PATH=$WD/events.db; COUNT_CMD="sqlite3 $WD/events.db 'select count(*) from events'"
      START="$VENV/bin/gunicorn --chdir $HERE -w ${GUNICORN_WORKERS:-1} -b 127.0.0.1:$PORT --log-level warning flask_app:app" ;;
    ours)
      : "${OURS_WEBHOOK_CMD:?set OURS_WEBHOOK_CMD to the gantry serve command (bench/webhook.sh sets it)}"
      URL=${OURS_WEBHOOK_URL:-http://127.0.0.1:9110/hooks/github}; START=$OURS_WEBHOOK_CMD; COUNT_CMD=${OURS_COUNT_CMD:-} ;;
    *) echo "unknown peer $peer"; continue ;;
  esac
  echo "=== $peer: $START"
  ( cd "$WD" && exec taskset -c "$SERVER_CPUS" bash -c "exec $START" ) > "$WD/server.log" 2>&1 &
  SPID=$!
  for _ in $(seq 150); do curl -s -o /dev/null -m 1 -X POST "$URL" -d '{}' && break; sleep 0.1; done
  ok=$(post "$URL" "$FIXTURE" "$SIG" workflow_job); bad=$(post "$URL" "$FIXTURE" sha256=deadbeef workflow_job)
  neg=$(post "$URL" "$NEG" "$NEGSIG" workflow_job)
  echo "check: good-sig=$ok bad-sig=$bad filtered-out=$neg"
  sleep 0.5; idle=$(python3 "$TOOLS/rss_tree.py" "$SPID" 0.01 | sed 's/RSS_JSON //')
  before=$( [ -n "$COUNT_CMD" ] && bash -c "$COUNT_CMD" || echo NA)
  taskset -c "$LOAD_CPUS" wrk -t"$THREADS" -c"$CONNS" -d"$WARMUP" -s "$HERE/github_webhook.lua" "$URL" -- "$FIXTURE" "$SIG" workflow_job "warm$$" > "$WD/wrk-warmup.txt" 2>&1
  python3 "$TOOLS/rss_tree.py" "$SPID" "$((secs + 1))" 0.1 > "$WD/rss.txt" &
  RPID=$!
  taskset -c "$LOAD_CPUS" wrk -t"$THREADS" -c"$CONNS" -d"$DURATION" --latency -s "$HERE/github_webhook.lua" "$URL" -- "$FIXTURE" "$SIG" workflow_job "run$$" > "$WD/wrk.txt" 2>&1
  wait "$RPID"
  after=$( [ -n "$COUNT_CMD" ] && bash -c "$COUNT_CMD" || echo NA)
  kill -TERM "$SPID" 2>/dev/null; for _ in $(seq 50); do kill -0 "$SPID" 2>/dev/null || break; sleep 0.1; done
  kill -KILL "$SPID" 2>/dev/null; wait "$SPID" 2>/dev/null
  W=$(grep WRK_JSON "$WD/wrk.txt" | sed 's/WRK_JSON //'); R=$(sed 's/RSS_JSON //' "$WD/rss.txt")
  non2xx=$(grep -o 'Non-2xx or 3xx responses: [0-9]*' "$WD/wrk.txt" | grep -o '[0-9]*$' || true)
  echo "{\"peer\":\"$peer$TAG\",\"check\":{\"good\":\"$ok\",\"bad\":\"$bad\",\"filtered\":\"$neg\"},\"wrk\":$W,\"non2xx\":${non2xx:-0},\"rss_idle\":$idle,\"rss_load\":$R,\"rows_before\":\"$before\",\"rows_after\":\"$after\"}" | tee "$OUT/webhook-$peer$TAG.json"
done

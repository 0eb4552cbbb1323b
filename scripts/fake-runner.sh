#!/bin/sh
# A stand-in for GitHub's Actions runner, for tests against the fake GitHub
# (crates/gantry-github/src/fake): started as a just-in-time runner is,
#
#   fake-runner.sh --jitconfig ENCODED
#
# it decodes the JIT config (base64 JSON), reads the runner's id (`.runner.AgentId`) and the
# URL to call back on (`.runner.ServerUrl`), claims a queued job through the fake-only
# `POST /_fake/runners/{id}/claim`, "runs" it, and completes it with
# `POST /_fake/runners/{id}/complete`. One line per step on stdout; never the JIT config or
# its credential. POSIX sh: runs under busybox (sh, base64, sed, wget) in a container, and on
# a Debian host (base64, and curl or wget).
#
# The job runs (sleeps) for N seconds when its name is `sleep-N`, else for
# FAKE_RUNNER_JOB_SECONDS (default 0).
#
# Environment:
#   FAKE_RUNNER_CLAIM_WAIT   seconds to keep trying to claim a job, once a second (default 0:
#                            one attempt)
#   FAKE_RUNNER_NEVER_CLAIM  1: never claim; wait until stopped (a runner that never boots)
#   FAKE_RUNNER_JOB_SECONDS  how long a job runs unless its name says (default 0)
#   FAKE_RUNNER_JOB_ID       claim this job only
#   FAKE_RUNNER_CONCLUSION   the conclusion reported (default success)
#   FAKE_RUNNER_SERVER_URL   call back here instead of the config's ServerUrl
#   FAKE_RUNNER_HTTP         wget: use wget even where curl is installed
#
# Exit codes: 0 the job was run and completed; 2 bad arguments or config; 3 no job could be
# claimed; 4 the fake refused the completion (the job was cancelled, or the runner removed);
# 143 stopped by SIGTERM.
set -u

say() {
  echo "fake-runner: $*"
}

config=
while [ $# -gt 0 ]; do
  case "$1" in
    --jitconfig)
      [ $# -ge 2 ] || { say "--jitconfig needs a value"; exit 2; }
      config=$2
      shift 2
      ;;
    --jitconfig=*)
      config=${1#--jitconfig=}
      shift
      ;;
    *)
      say "unknown argument (usage: fake-runner.sh --jitconfig ENCODED)"
      exit 2
      ;;
  esac
done
[ -n "$config" ] || { say "usage: fake-runner.sh --jitconfig ENCODED"; exit 2; }

# The decoded config holds the runner's credential: only ever read fields out of it.
decoded=$(printf '%s' "$config" | base64 -d 2>/dev/null) || {
  say "the JIT config is not base64"
  exit 2
}
field() {
  printf '%s' "$decoded" | sed -n "s/.*\"$1\":\"*\([^\",}]*\).*/\1/p"
}
runner_id=$(field AgentId)
server=${FAKE_RUNNER_SERVER_URL:-$(field ServerUrl)}
decoded=
case "$runner_id" in
  '' | *[!0-9]*) say "the JIT config has no AgentId"; exit 2 ;;
esac
[ -n "$server" ] || { say "the JIT config has no ServerUrl"; exit 2; }
server=${server%/}

child=
trap '[ -n "$child" ] && kill "$child" 2>/dev/null; say "stopped"; exit 143' TERM
trap '[ -n "$child" ] && kill "$child" 2>/dev/null; say "interrupted"; exit 130' INT

# Sleeps $1 seconds, interruptibly (a trap runs at once, not after a foreground sleep).
pause() {
  sleep "$1" &
  child=$!
  wait "$child"
  child=
}

# POSTs JSON $2 to $1 and prints the reply; fails on a connection error or an HTTP error.
# (Not `wget -T`: Debian's static busybox 1.35 wget crashes with it; `timeout` bounds it.)
post() {
  if [ "${FAKE_RUNNER_HTTP:-}" != wget ] && command -v curl >/dev/null 2>&1; then
    curl -fsS --max-time 10 -X POST -H 'Content-Type: application/json' --data "$2" "$1"
  else
    timeout 10 wget -q -O - --header 'Content-Type: application/json' --post-data "$2" "$1"
  fi
}

say "runner $runner_id starting; server $server"

if [ "${FAKE_RUNNER_NEVER_CLAIM:-0}" = 1 ]; then
  say "runner $runner_id never claims a job (FAKE_RUNNER_NEVER_CLAIM=1); waiting to be stopped"
  while :; do
    pause 3600
  done
fi

claim='{}'
if [ -n "${FAKE_RUNNER_JOB_ID:-}" ]; then
  claim="{\"job_id\":${FAKE_RUNNER_JOB_ID}}"
fi
wait_s=${FAKE_RUNNER_CLAIM_WAIT:-0}
case "$wait_s" in '' | *[!0-9]*) wait_s=0 ;; esac
deadline=$(($(date +%s) + wait_s))
while :; do
  if job=$(post "$server/_fake/runners/$runner_id/claim" "$claim" 2>/dev/null); then
    break
  fi
  if [ "$(date +%s)" -ge "$deadline" ]; then
    say "runner $runner_id claimed no job within ${wait_s}s"
    exit 3
  fi
  pause 1
done

job_id=$(printf '%s' "$job" | sed -n 's/.*[{,]"id":\([0-9][0-9]*\).*/\1/p')
name=$(printf '%s' "$job" | sed -n 's/.*[{,]"name":"\([^"]*\)".*/\1/p')
say "runner $runner_id claimed job $job_id ($name)"

case "$name" in
  sleep-*) seconds=${name#sleep-} ;;
  *) seconds=${FAKE_RUNNER_JOB_SECONDS:-0} ;;
esac
case "$seconds" in '' | *[!0-9]*) seconds=0 ;; esac
say "job $job_id running for ${seconds}s"
[ "$seconds" -gt 0 ] && pause "$seconds"

conclusion=${FAKE_RUNNER_CONCLUSION:-success}
if ! post "$server/_fake/runners/$runner_id/complete" "{\"conclusion\":\"$conclusion\"}" >/dev/null 2>&1; then
  say "job $job_id could not be completed (cancelled, or the runner was removed)"
  exit 4
fi
say "job $job_id completed: $conclusion"
exit 0
